"""The home page's figures: runs, money moved, failing workflows, the queue and webhooks.

Plain dicts for the template (templates/admin/index.html). Every query is one aggregate
over a bounded window (the last DAYS days, the last HOURS hours), grouped in the reader's
time zone, so the page costs a handful of indexed queries however many runs there are.
"""

from datetime import timedelta

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone
from django.utils.translation import gettext as _

from automations import charts
from automations.models import Run, RunStep, Workflow
from automations.money import format_money
from automations.timefmt import format_time

DAYS = 14
HOURS = 24
TOP_FAILING = 5

# The order statuses stack in, and their colours: failures stand out in red.
STATUS_COLORS = {
    Run.Status.SUCCEEDED: "#009E73",
    Run.Status.FAILED: "#D55E00",
    Run.Status.HELD: "#E69F00",
    Run.Status.RETRYING: "#F0E442",
    Run.Status.RUNNING: "#56B4E9",
    Run.Status.QUEUED: "#0072B2",
    Run.Status.CANCELLED: "#999999",
}


def build(now=None):
    """Return every section of the dashboard."""
    now = now or timezone.now()
    return {
        "days": DAYS,
        "hours": HOURS,
        "runs": runs_per_day(now),
        "money": money_per_day(now),
        "failing": top_failing(now),
        "queue": queue_health(now),
        "webhooks": webhook_health(now),
    }


def _days(now):
    today = timezone.localdate(now)
    return [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]


def _since(now):
    """Return the start of the first day shown, in the reader's zone."""
    first = _days(now)[0]
    return timezone.make_aware(
        timezone.datetime(first.year, first.month, first.day), timezone.get_current_timezone()
    )


def _day_label(day):
    return day.strftime("%m-%d")


def runs_per_day(now):
    """Return runs created per day by status: a chart, and {"rows": [{day, status: n}]}."""
    days = _days(now)
    zone = timezone.get_current_timezone()
    counts = (
        Run.objects.filter(created_at__gte=_since(now))
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_status = {}
    for row in counts:
        by_status.setdefault(row["status"], {})[row["day"]] = row["n"]
    series = [
        {"name": str(status.label), "color": color, "values": by_status[status.value]}
        for status, color in STATUS_COLORS.items()
        if status.value in by_status
    ]
    totals = {status: sum(values.values()) for status, values in by_status.items()}
    return {
        "total": sum(totals.values()),
        "totals": [
            {"status": str(s["name"]), "count": sum(s["values"].values()), "color": s["color"]}
            for s in series
        ],
        "by_day": {
            day: {status: values.get(day, 0) for status, values in by_status.items()}
            for day in days
        },
        "chart": charts.stacked_bars(
            days, series, label=_day_label, title=_("Runs per day by status")
        ),
        "legend": charts.legend(series),
    }


def money_per_day(now):
    """Return what succeeded money-moving steps moved, per currency, per workflow and day."""
    days = _days(now)
    zone = timezone.get_current_timezone()
    rows = (
        RunStep.objects.filter(
            started_at__gte=_since(now),
            status=RunStep.Status.SUCCEEDED,
            amount__isnull=False,
        )
        .exclude(currency="")
        .annotate(day=TruncDate("started_at", tzinfo=zone))
        .values("currency", "run__workflow_id", "day")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    per_currency = {}
    for row in rows:
        workflows = per_currency.setdefault(row["currency"].lower(), {})
        workflows.setdefault(row["run__workflow_id"], {})[row["day"]] = row["total"]
    names = dict(
        Workflow.objects.filter(
            pk__in={pk for ws in per_currency.values() for pk in ws}
        ).values_list("pk", "name")
    )
    sections = []
    for currency in sorted(per_currency):
        workflows = per_currency[currency]
        series = []
        table = []
        for i, (pk, values) in enumerate(
            sorted(workflows.items(), key=lambda p: names.get(p[0], ""))
        ):
            name = names.get(pk, str(pk))
            series.append(
                {"name": name, "color": charts.PALETTE[i % len(charts.PALETTE)], "values": values}
            )
            total = sum(values.values())
            table.append(
                {
                    "workflow": name,
                    "workflow_id": pk,
                    "total": total,
                    "display": format_money(total, currency),
                }
            )
        total = sum(r["total"] for r in table)
        sections.append(
            {
                "currency": currency,
                "code": currency.upper(),
                "total": total,
                "display": format_money(total, currency),
                "workflows": table,
                "chart": charts.stacked_bars(
                    days,
                    series,
                    label=_day_label,
                    title=_("Money moved per day in %(currency)s") % {"currency": currency.upper()},
                    fmt=lambda v, c=currency: format_money(int(v), c),
                ),
                "legend": charts.legend(series),
            }
        )
    return sections


def top_failing(now):
    """Return the workflows with the most failed runs in the window, with their last error."""
    failed = (
        Run.objects.filter(created_at__gte=_since(now), status=Run.Status.FAILED)
        .values("workflow_id", "workflow__name")
        .annotate(failures=Count("id"), last=Max("created_at"))
        .order_by("-failures", "-last")[:TOP_FAILING]
    )
    rows = []
    for row in failed:
        last = (
            Run.objects.filter(workflow_id=row["workflow_id"], status=Run.Status.FAILED)
            .order_by("-created_at", "-pk")
            .only("pk", "error", "created_at")
            .first()
        )
        rows.append(
            {
                "workflow": row["workflow__name"],
                "workflow_id": row["workflow_id"],
                "failures": row["failures"],
                "last_run": last.pk if last else None,
                "last_error": last.error if last else "",
                "last_at": format_time(last.created_at) if last else "",
            }
        )
    return rows


def queue_health(now):
    """Return django-q2's pending tasks, the oldest one's age and the clusters seen."""
    from django_q.status import Stat

    from integrations.queue import broker

    try:
        current = broker()
        pending = current.queue_size()
        started = _oldest_started(current)
        clusters = Stat.get_all(broker=current)
    except Exception as error:  # a broker that is down is what this section is for
        return {"available": False, "error": str(error)}
    age = int((now - started).total_seconds()) if started else None
    return {
        "available": True,
        "broker": current.info(),
        "pending": pending,
        "oldest_age_seconds": age,
        "oldest_age": _duration(age) if age is not None else "",
        "clusters": [
            {
                "id": str(c.cluster_id),
                "host": c.host,
                "status": str(c.status),
                "workers": len(c.workers),
            }
            for c in clusters
        ],
        "queued_runs": Run.objects.filter(status=Run.Status.QUEUED).count(),
        # The ORM broker keeps cluster stats in Django's cache: a per-process one hides them.
        "clusters_unseen": not clusters and _local_cache(current),
    }


def _local_cache(current):
    from django.core.cache.backends.locmem import LocMemCache

    return isinstance(getattr(current, "cache", None), LocMemCache)


def _oldest_started(current):
    """Return when the oldest waiting task was queued (the task's own "started"), or None."""
    from django_q.brokers.orm import ORM
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    if isinstance(current, ORM):
        row = (
            OrmQ.objects.using(current.get_connection().db)
            .filter(key=current.list_key, lock__lte=timezone.now())
            .order_by("pk")
            .first()
        )
        task = row.task if row is not None else None
    else:
        package = current.connection.lindex(current.list_key, 0)  # Redis: rpush, blpop
        task = SignedPackage.loads(package) if package else None
    started = task.get("started") if isinstance(task, dict) else None
    return started


def _duration(seconds):
    if seconds < 60:
        return _("%(n)d s") % {"n": seconds}
    if seconds < 3600:
        return _("%(n)d min") % {"n": seconds // 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


def webhook_health(now):
    """Return Stripe deliveries per hour, signature failures and sync problems."""
    from djstripe.models import WebhookEventTrigger

    zone = timezone.get_current_timezone()
    start = (
        (now - timedelta(hours=HOURS - 1))
        .astimezone(zone)
        .replace(minute=0, second=0, microsecond=0)
    )
    hours = [start + timedelta(hours=n) for n in range(HOURS)]
    rows = (
        WebhookEventTrigger.objects.filter(created__gte=start)
        .annotate(hour=TruncHour("created", tzinfo=zone))
        .values("hour")
        .annotate(n=Count("id"), invalid=Count("id", filter=Q(valid=False)))
        .order_by()
    )
    valid, invalid = {}, {}
    for row in rows:
        hour = row["hour"].astimezone(zone)
        valid[hour] = row["n"] - row["invalid"]
        invalid[hour] = row["invalid"]
    series = [
        {"name": _("Verified"), "color": "#0072B2", "values": valid},
        {"name": _("Signature failures"), "color": "#D55E00", "values": invalid},
    ]
    return {
        "events": sum(valid.values()) + sum(invalid.values()),
        "signature_failures": sum(invalid.values()),
        "sync_problems": sync_problems(start),
        "chart": charts.stacked_bars(
            hours, series, label=lambda h: h.strftime("%H:00"), title=_("Deliveries per hour")
        ),
        "legend": charts.legend(series),
    }


def sync_problems(since):
    """Return the mirror's open sync problems (integrations.SyncProblem), else failed deliveries."""
    from djstripe.models import WebhookEventTrigger

    try:
        from integrations.models import SyncProblem
    except ImportError:
        return (
            WebhookEventTrigger.objects.filter(created__gte=since, valid=True)
            .exclude(exception="")
            .count()
        )
    return SyncProblem.objects.count()
