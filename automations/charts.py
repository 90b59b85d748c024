"""Server-rendered SVG charts for the dashboard: no JavaScript, no CDN, readable as markup.

Each chart is built from plain numbers and returned as safe SVG markup; every bar carries
a <title> with its figures, so the browser shows them on hover and screen readers read them.
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

# One colour per series, colour-blind safe (Okabe-Ito), reused in order.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]

WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 48, 28, 8


def stacked_bars(columns, series, *, label=str, title="", fmt=None):
    """Return an SVG bar chart: one bar per column, stacked by series.

    columns: the x values, in order (days, hours); label(column) is the text under a bar.
    series: [{"name", "color", "values": {column: number}}] stacked bottom to top.
    fmt(number) shows a figure (the axis, each bar's title): money in its currency, say.
    """
    fmt = fmt or _number
    totals = [sum(s["values"].get(c, 0) for s in series) for c in columns]
    top = _nice(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(columns), 1)
    bar_w = max(step * 0.7, 1)
    every = max(1, -(-len(columns) // 14))  # at most 14 labels under the bars
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kanri-chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        _axis(top, plot_h, fmt),
    ]
    for i, column in enumerate(columns):
        x = LEFT + i * step + (step - bar_w) / 2
        y = TOP + plot_h
        for s in series:
            value = s["values"].get(column, 0)
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{s["color"]}"><title>{escape(label(column))} · {escape(s["name"])}: '
                f"{escape(fmt(value))}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
                f'font-size="10">{escape(label(column))}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def legend(series):
    """Return the colour key of a chart's series as HTML."""
    items = "".join(
        f'<li><span class="kanri-swatch" style="background:{s["color"]}"></span>'
        f"{escape(s['name'])}</li>"
        for s in series
    )
    return mark_safe(f'<ul class="kanri-legend">{items}</ul>')


def _axis(top, plot_h, fmt):
    lines = []
    # A middle line only where it falls on a whole figure (no "2.5 runs").
    fractions = (0, 0.5, 1) if float(top / 2).is_integer() else (0, 1)
    for fraction in fractions:
        y = TOP + plot_h * (1 - fraction)
        lines.append(
            f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc"/>'
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" font-size="10">'
            f"{escape(fmt(top * fraction))}</text>"
        )
    return "".join(lines)


def _nice(value):
    """Return a round axis maximum at or above value (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _number(value):
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
