"""Trigger kind `schedule`: at each tick of a cron, in the workflow's time zone, run on a
saved filter's rows: one run per row (`each`), or one run with a digest of them (`digest`).

    {"kind": "schedule", "mode": "digest", "filter": "<saved filter slug>",
     "every": "daily", "at": "09:00", "timezone": "Asia/Tokyo", "cron": "0 9 * * *"}

`every` keeps what staff chose in the editor: "daily" (at HH:MM), "weekly" (on `weekday`
at HH:MM) or "cron"; for the first two the cron is derived from it (and a cron given
with them must say the same). Without `every`, `cron` is the schedule.

The run's data is shaped like an event, so steps read the same as in other workflows: in
each mode `trigger.data.object` is the row (Stripe's object), keyed by tick and row; in
digest mode it is {"object": "digest", "rows", "count", "totals", "filter",
"scheduled_for"}, keyed by tick. The unique (workflow, key) constraint makes a tick that
already ran start nothing.

django-q2 calls `automations.tasks.run_schedule` from one Schedule per workflow (see
automations/schedules.py); the task runs the latest tick due now, once, whatever was
missed while the cluster was down.
"""

import logging
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from croniter import croniter
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from automations import catalog
from automations.models import SavedFilter, TriggerKind, Workflow
from automations.problems import Problem
from automations.triggers import Trigger, start_runs

logger = logging.getLogger(__name__)

COLUMNS = {}
OPTIONS = ("mode", "filter", "every", "at", "weekday", "cron", "timezone")
PARAM = "mode"
label = _("On a schedule")
MODES = {
    "digest": _("one digest of a saved filter's rows"),
    "each": _("one run per row of a saved filter"),
}
EVERY = ("daily", "weekly", "cron")
# Cron's day-of-week numbers (0 is Sunday), and the days' names.
WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
WEEKDAY_NAMES = {
    "mon": _("Monday"),
    "tue": _("Tuesday"),
    "wed": _("Wednesday"),
    "thu": _("Thursday"),
    "fri": _("Friday"),
    "sat": _("Saturday"),
    "sun": _("Sunday"),
}
# The admin lists whose rows are Stripe objects the catalog knows.
LISTS = {
    "djstripe.charge": "charge",
    "djstripe.paymentintent": "payment_intent",
    "djstripe.customer": "customer",
    "djstripe.subscription": "subscription",
    "djstripe.invoice": "invoice",
    "djstripe.refund": "refund",
}
# The amount a digest totals per currency, by object (Stripe's names).
TOTALS = {"invoice": "total", "customer": "balance"}
OBJECT = "kanri.schedule"


# ------------------------------------------------------------------ timing


@cache
def zones():
    """Return the IANA time zone names (not the machine's own alias)."""
    return frozenset(available_timezones() - {"localtime", "Factory", "posixrules"})


def _clock(at):
    """Return (hour, minute) of "HH:MM", or None."""
    hour, sep, minute = str(at or "").strip().partition(":")
    if not sep or not (hour.isdigit() and minute.isdigit()) or len(minute) != 2:
        return None
    hour, minute = int(hour), int(minute)
    return (hour, minute) if hour < 24 and minute < 60 else None


def derived_cron(trigger):
    """Return the cron that "daily at HH:MM" or "weekly on DAY at HH:MM" stands for, or
    None (a custom cron, or a choice that is not valid)."""
    every, clock = trigger.get("every"), _clock(trigger.get("at"))
    if every not in ("daily", "weekly") or clock is None:
        return None
    if every == "daily":
        return f"{clock[1]} {clock[0]} * * *"
    weekday = WEEKDAYS.get(trigger.get("weekday"))
    return None if weekday is None else f"{clock[1]} {clock[0]} * * {weekday}"


def cron_of(trigger):
    """Return the trigger's cron expression (derived from `every` when it says so)."""
    if trigger.get("every") in ("daily", "weekly"):
        return derived_cron(trigger)
    return str(trigger.get("cron") or "").strip() or None


def _valid_cron(cron):
    return bool(cron) and len(cron.split()) == 5 and croniter.is_valid(cron)


def _strings(trigger):
    """Return the trigger's settings as text: an imported or API-posted value of another
    type (a list, a number) is then just an invalid value, never a crash."""
    return {
        key: value if isinstance(value, str) or value is None else str(value)[:100]
        for key, value in trigger.items()
    }


def timing(trigger):
    """Return (cron, ZoneInfo) of a valid trigger, or None."""
    trigger = _strings(trigger)
    cron, zone = cron_of(trigger), trigger.get("timezone")
    if not _valid_cron(cron) or zone not in zones():
        return None
    return cron, ZoneInfo(zone)


def next_times(trigger, count=3, now=None):
    """Return the next `count` ticks after `now`, in the trigger's zone ([] if invalid)."""
    found = timing(trigger)
    if found is None:
        return []
    cron, zone = found
    ticks = croniter(cron, (now or timezone.now()).astimezone(zone))
    return [ticks.get_next(datetime) for _ in range(count)]


def latest_tick(trigger, now=None):
    """Return the latest tick at or before `now`, in the trigger's zone, or None."""
    found = timing(trigger)
    if found is None:
        return None
    cron, zone = found
    # croniter's get_prev is strictly before its start; a tick exactly at `now` is due.
    start = (now or timezone.now()).astimezone(zone) + timedelta(microseconds=1)
    return croniter(cron, start).get_prev(datetime)


# ------------------------------------------------------------------ the kind's contract


def choices():
    return [(str(label), [(mode, capfirst(str(text))) for mode, text in MODES.items()])]


def _timing_problems(trigger):
    trigger = _strings(trigger)
    problems = []
    every = trigger.get("every")
    if every not in (None, "", *EVERY):
        return [Problem("trigger.every", "schedule_every_unknown", {"every": every})]
    if every in ("daily", "weekly"):
        if _clock(trigger.get("at")) is None:
            problems.append(
                Problem("trigger.at", "schedule_time_invalid", {"at": trigger.get("at")})
            )
        if every == "weekly" and trigger.get("weekday") not in WEEKDAYS:
            problems.append(Problem("trigger.weekday", "schedule_weekday_unknown"))
        expected, given = derived_cron(trigger), str(trigger.get("cron") or "").strip()
        if expected and given and given != expected:
            problems.append(
                Problem(
                    "trigger.cron", "schedule_cron_mismatch", {"cron": given, "expected": expected}
                )
            )
    else:
        cron = cron_of(trigger)
        if not cron:
            problems.append(Problem("trigger.cron", "schedule_cron_required"))
        elif not _valid_cron(cron):
            problems.append(Problem("trigger.cron", "schedule_cron_invalid", {"cron": cron}))
    zone = trigger.get("timezone")
    if not zone:
        problems.append(Problem("trigger.timezone", "schedule_timezone_required"))
    elif zone not in zones():
        problems.append(
            Problem("trigger.timezone", "schedule_timezone_unknown", {"timezone": zone})
        )
    return problems


def validate_timing(trigger):
    """Return the Problems with when a schedule runs (the editor's live "next runs")."""
    return _timing_problems(trigger)


def validate(trigger):
    trigger = _strings(trigger)
    problems = []
    mode = trigger.get("mode")
    if mode not in MODES:
        problems.append(Problem("trigger.mode", "schedule_mode_unknown", {"mode": mode}))
    slug = trigger.get("filter")
    if not slug:
        problems.append(Problem("trigger.filter", "schedule_filter_required"))
    else:
        saved = SavedFilter.objects.filter(slug=slug).values("name", "shared").first()
        if saved is None:
            problems.append(Problem("trigger.filter", "schedule_filter_unknown", {"filter": slug}))
        elif not saved["shared"]:
            # A scheduled run reads the rows for the whole team (into Slack, email…); a
            # private filter, perhaps someone else's, must not leak that way.
            problems.append(
                Problem("trigger.filter", "schedule_filter_private", {"name": saved["name"]})
            )
    return problems + _timing_problems(trigger)


def object_of(trigger):
    """Return the catalog's name of the objects the trigger's saved filter lists, or ""."""
    slug = trigger.get("filter")
    if not isinstance(slug, str) or not slug:
        return ""
    listed = SavedFilter.objects.filter(slug=slug).values_list("list", flat=True).first()
    return LISTS.get(listed or "", "")


def fields(trigger):
    if trigger.get("mode") == "each":
        return catalog.row_fields(object_of(trigger))
    return catalog.digest_fields(object_of(trigger))


def describe(trigger):
    return "a digest of saved filter rows" if trigger.get("mode") != "each" else "saved filter rows"


def when(trigger):
    """Return what staff chose, in words: "daily at 09:00 (Asia/Tokyo)"."""
    trigger = _strings(trigger)
    params = {
        "at": trigger.get("at") or "",
        "cron": cron_of(trigger) or "",
        "zone": trigger.get("timezone") or "",
        "weekday": WEEKDAY_NAMES.get(trigger.get("weekday"), trigger.get("weekday") or ""),
    }
    every = trigger.get("every")
    if every == "daily":
        return _("daily at %(at)s (%(zone)s)") % params
    if every == "weekly":
        return _("weekly on %(weekday)s at %(at)s (%(zone)s)") % params
    return _("cron %(cron)s (%(zone)s)") % params


def title(trigger):
    trigger = _strings(trigger)
    mode = MODES.get(trigger.get("mode"), trigger.get("mode"))
    return f"{label}: {mode}, {when(trigger)}"


def starts_on(trigger, data):
    kind = "schedule.digest" if trigger.get("mode") != "each" else "schedule.row"
    return data.get("object") == OBJECT and data.get("type") == kind


def samples(trigger, limit):
    """The next tick (digest), or the rows of the saved filter now (each row)."""
    if trigger.get("mode") != "each":
        ticks = next_times(trigger, 1)
        return [("next", ticks[0])] if ticks else []
    found = _previewable(trigger, limit=limit)
    if found is None:
        return []
    return [(str(row.get("id")), _created(row)) for row in found[1]["rows"]]


def sample(trigger, subject_id):
    ticks = next_times(trigger, 1)
    found = _previewable(trigger)
    if not ticks or found is None:
        return None
    saved, result = found
    if trigger.get("mode") != "each":
        return digest_data(saved, result, ticks[0])
    row = next((r for r in result["rows"] if str(r.get("id")) == str(subject_id)), None)
    return row_data(row, ticks[0]) if row is not None else None


def _previewable(trigger, limit=None):
    """The rows to preview on, or None when the filter is gone or no longer applies."""
    from automations import bookmarks

    try:
        return _rows(trigger, limit=limit)
    except bookmarks.FilterError:
        return None


def _created(row):
    created = row.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, tz=timezone.get_current_timezone())
    return created


def candidates(trigger):
    workflow = (
        Workflow.objects.filter(pk=trigger.workflow_id).select_related("active_version").first()
    )
    if active_trigger(workflow) is None:
        return []
    return [
        (workflow.pk, workflow.active_version_id, workflow.active_version.definition["conditions"])
    ]


# ------------------------------------------------------------------ a tick's runs


def active_trigger(workflow):
    """Return the schedule trigger of a workflow's active version, or None if the workflow
    is not an active scheduled one."""
    if (
        workflow is None
        or workflow.status != Workflow.Status.ACTIVE
        or workflow.active_version_id is None
    ):
        return None
    trigger = workflow.active_version.definition.get("trigger") or {}
    return trigger if trigger.get("kind") == TriggerKind.SCHEDULE else None


def _rows(trigger, limit=None):
    """Return (saved filter, bookmarks.rows result) in the trigger's zone, or None if the
    filter is gone. Raises bookmarks.FilterError for a query that no longer applies."""
    from automations import bookmarks

    saved = SavedFilter.objects.select_related("owner").filter(slug=trigger.get("filter")).first()
    found = timing(trigger)
    if saved is None or found is None:
        return None
    if not saved.shared:  # made private since the workflow was activated
        raise bookmarks.FilterError("list_forbidden", list=saved.list, user=_("the team"))
    # "created yesterday" means the workflow's yesterday, not the server's.
    with timezone.override(found[1]):
        return saved, bookmarks.rows(saved, limit=limit)


def key(tick, row_id=None):
    return f"schedule:{tick.isoformat()}" + (f":{row_id}" if row_id is not None else "")


def digest_data(saved, result, tick):
    """Return the event-shaped data of a digest run: its rows are bounded, its count and
    totals cover every row."""
    from automations import bookmarks

    rows = result["rows"]
    amount_field = TOTALS.get(LISTS.get(saved.list, ""), "amount")
    totals = {}
    for row in rows:
        amount, currency = row.get(amount_field), row.get("currency")
        if isinstance(amount, int) and not isinstance(amount, bool) and isinstance(currency, str):
            totals[currency] = totals.get(currency, 0) + amount
    return {
        "id": key(tick),
        "object": OBJECT,
        "type": "schedule.digest",
        "created": int(tick.timestamp()),
        "data": {
            "object": {
                "object": "digest",
                "rows": rows[: catalog.DIGEST_ROWS],
                "count": result["count"],
                "totals": [{"currency": c, "amount": totals[c]} for c in sorted(totals)],
                "filter": {"name": saved.name, "url": bookmarks.url(saved)},
                "scheduled_for": tick.isoformat(),
            }
        },
    }


def row_data(row, tick):
    """Return the event-shaped data of a run on one row."""
    return {
        "id": key(tick, row.get("id")),
        "object": OBJECT,
        "type": "schedule.row",
        "created": int(tick.timestamp()),
        "data": {"object": row},
    }


def tick(workflow_id, since=None, now=None):
    """Start the runs of a scheduled workflow's latest due tick; return their ids.

    Only that tick: a cluster that was down for three ticks runs the latest once, and a
    tick that already ran starts nothing (the run keys). Ticks at or before `since` (when
    the schedule was armed) happened while the workflow was not scheduled this way.
    """
    from automations import schedules

    now = now or timezone.now()
    workflow = Workflow.objects.select_related("active_version").filter(pk=workflow_id).first()
    trigger = active_trigger(workflow)
    if trigger is None or timing(trigger) is None:
        schedules.remove(workflow_id)  # paused or changed without the signals (a bulk update)
        return []
    # After the caller's transaction: django-q2's scheduler saves its own next run (in the
    # server's zone) after it queued this task; ours, in the workflow's zone, must win.
    transaction.on_commit(lambda: schedules.arm(workflow_id, trigger))
    due = latest_tick(trigger, now)
    if due is None or (since and due <= datetime.fromisoformat(since)):
        return []
    found = _rows(trigger)
    if found is None:
        logger.error("Workflow %s: saved filter %r is gone.", workflow_id, trigger.get("filter"))
        return []
    saved, result = found
    label_ = due.isoformat()
    if trigger.get("mode") == "each":
        started = []
        for row in result["rows"]:
            data = row_data(row, due)
            started += start_runs(
                Trigger(TriggerKind.SCHEDULE, data["id"], data, label_, workflow_id=workflow_id)
            )
        return started
    data = digest_data(saved, result, due)
    return start_runs(
        Trigger(TriggerKind.SCHEDULE, data["id"], data, label_, workflow_id=workflow_id)
    )


# ------------------------------------------------------------------ keeping the Schedule


@receiver(post_save, sender=Workflow)
def on_workflow_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return  # loaddata: the rows are not a workflow's life yet
    from automations import schedules

    schedules.sync(instance)


@receiver(post_delete, sender=Workflow)
def on_workflow_deleted(sender, instance, **kwargs):
    from automations import schedules

    schedules.remove(instance.pk)
