"""Dynamic references: `{{trigger.data.object.amount}}`, `{{steps.charge.id}}`.

Rendered in one pass: a value inserted into the text is never scanned again, so a
customer whose name is "{{steps.refund.id}}" stays just that. A field that holds exactly
one reference keeps the referenced value's type (an amount stays an integer).

    >>> render("Paid {{trigger.data.object.amount | money}}", ctx)
    'Paid 1,500.00 USD'

A loop (`{{#each … limit=N}}…{{/each}}`, see integrations/references.py) renders its body
once per item, at most N items, then a line "…and M more" for the rest; the values it
inserts are escaped like any other.
"""

import json

from django.utils.translation import ngettext

from automations.money import format_money
from integrations.references import (
    ITEM,
    LOOP_MAX,
    REFERENCE,
    ROOTS,
    Loop,
    parse,
    path_problem,
    split,
)

__all__ = ["REFERENCE", "ROOTS", "RenderError", "lookup", "parse", "render", "strings_in"]
MISSING = object()


class RenderError(ValueError):
    pass


def lookup(path, context):
    """Return the value at a dotted path, or raise RenderError naming what is missing.

    The context is plain dicts and lists, and the grammar refuses names starting with
    `_`, so no attribute of any object is ever reached.
    """
    parts = path.split(".")
    roots = (*ROOTS, ITEM) if ITEM in context else ROOTS
    broken = path_problem(path, roots)
    if broken and broken[0] == "reference_root":
        raise RenderError(
            f"Unknown reference {{{{{path}}}}}: it must start with {', '.join(roots)}."
        )
    if broken:
        raise RenderError(f"{{{{{path}}}}} is not a valid reference.")
    if parts[0] == "steps" and (len(parts) < 2 or parts[1] not in context.get("steps", {})):
        name = parts[1] if len(parts) > 1 else ""
        raise RenderError(
            f"Unknown reference {{{{{path}}}}}: no step named {name!r} has run before this one."
        )
    value = context
    for i, part in enumerate(parts):
        value = _child(value, part)
        if value is MISSING:
            where = ".".join(parts[:i]) or "the context"
            raise RenderError(f"Unknown reference {{{{{path}}}}}: {where} has no {part!r}.")
    return value


def _child(value, part):
    if isinstance(value, dict):
        return value.get(part, MISSING)
    if isinstance(value, list) and part.isdigit():
        return value[int(part)] if int(part) < len(value) else MISSING
    return MISSING


def apply_filter(name, value, path, context):
    if name is None:
        return value
    if name == "money":
        # Stripe puts `currency` beside every amount; the filter reads that sibling.
        parent = path.rsplit(".", 1)[0]
        currency = lookup(parent, context).get("currency") if "." in path else None
        if not isinstance(value, int) or not currency:
            raise RenderError(f"{{{{{path} | money}}}} is not an amount with a currency.")
        return format_money(value, currency)
    if name == "upper":
        return as_text(value).upper()
    if name == "lower":
        return as_text(value).lower()
    raise RenderError(f"Unknown filter {name!r} in {{{{{path} | {name}}}}}.")


def as_text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def render_text(text, context, escape=None):
    """Render every reference in a string; `escape` is applied to inserted values only."""
    whole = REFERENCE.fullmatch(text.strip())
    if whole and escape is None:
        path, filter_name = whole.group(1), whole.group(2) or None
        return apply_filter(filter_name, lookup(path, context), path, context)
    pieces, broken = split(text)
    if broken:
        raise RenderError(f"{text[:200]!r} has a loop that is not valid ({broken[0]}).")
    # Each piece is rendered once and joined: what a value inserts is never scanned again.
    return "".join(
        _render_loop(piece, context, escape)
        if isinstance(piece, Loop)
        else _substitute(piece, context, escape)
        for piece in pieces
    )


def _substitute(text, context, escape):
    def replace(match):
        path, filter_name = match.group(1), match.group(2) or None
        value = as_text(apply_filter(filter_name, lookup(path, context), path, context))
        return escape(value) if escape else value

    return REFERENCE.sub(replace, text)


def _render_loop(loop, context, escape):
    items = lookup(loop.path, context)
    if items is None:
        items = []  # Stripe sends null for an empty optional list
    if not isinstance(items, list):
        raise RenderError(f"{{{{#each {loop.path}}}}} is not a list.")
    shown = items[: min(loop.limit, LOOP_MAX)]
    out = "".join(_substitute(loop.body, {**context, ITEM: item}, escape) for item in shown)
    more = _total(loop.path, items, context) - len(shown)
    if more > 0:
        line = ngettext("…and %(count)d more", "…and %(count)d more", more) % {"count": more}
        if out and not out.endswith("\n"):
            out += "\n"
        out += line + ("\n" if loop.body.endswith("\n") else "")
    return out


def _total(path, items, context):
    """Return how many items a list stands for: its length, except a digest's `rows`,
    which it keeps a bounded number of while its `count` says how many there are."""
    parent_path, _, name = path.rpartition(".")
    if name == "rows" and parent_path:
        parent = lookup(parent_path, context)
        parent = parent if isinstance(parent, dict) else {}
        count = parent.get("count")
        if (
            parent.get("object") == "digest"
            and isinstance(count, int)
            and not isinstance(count, bool)
            and count > len(items)
        ):
            return count
    return len(items)


def render(value, context, escape=None):
    """Render references in a config value: strings, and strings inside lists and dicts."""
    if isinstance(value, str):
        return render_text(value, context, escape)
    if isinstance(value, list):
        return [render(item, context, escape) for item in value]
    if isinstance(value, dict):
        return {key: render(item, context, escape) for key, item in value.items()}
    return value


def strings_in(value):
    """Return every string in a config value (strings inside lists and dicts too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    return []


def references_in(value):
    """Return every reference path used anywhere in a config value: a loop counts as its
    list's path (its body's `item.…` paths mean nothing outside it)."""
    paths = []
    for text in strings_in(value):
        pieces, broken = split(text)
        for piece in pieces if not broken else [text]:
            if isinstance(piece, Loop):
                paths.append(piece.path)
                paths += [p for p, _ in parse(piece.body) if p.split(".")[0] != ITEM]
            else:
                paths += [p for p, _ in parse(piece)]
    return paths
