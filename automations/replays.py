"""Stored and missed Stripe events sent through the live entry again: replays, backtests,
reconciliation.

- `backtest` rehearses one definition on the stored events of its type with the
  RecordingSender: nothing is sent and no run row is written. `replay_events --dry-run`
  and the admin's Backtest page both call it (through automations.workflows), so they
  cannot disagree.
- `replay` starts runs from stored events through `start_runs`, as the replay kind with
  the event id as the key: pairs that already ran are skipped.
- `reconcile` compares Stripe's event list with the deliveries Kanri received and
  records and runs the missing ones once.

Reports are plain dicts holding codes, counts and minor units; `money_lines` turns one
into words for a screen.
"""

import re
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

from automations import definition as definitions
from automations.engine import runner
from automations.engine.senders import RecordingSender
from automations.models import Reconciliation, Run, TriggerKind, Workflow
from automations.money import format_money
from automations.triggers import replay as replay_kind
from automations.triggers import start_runs, stripe_event
from integrations import stripe_client
from integrations.base import ActionError
from integrations.registry import UnknownAction, get_action

# Stripe lists events of the last 30 days; a page holds at most 100.
# https://docs.stripe.com/api/events/list
PAGE_SIZE = 100
# Events younger than this are left to the next reconciliation: their delivery may be
# on its way (a second copy would start nothing new, but it would be recorded twice).
GRACE = timedelta(minutes=5)
RECONCILE_PERIOD = timedelta(hours=24)
DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Text of the money a workflow's steps would move, by action kind.
MONEY_WORDS = {
    "stripe.create_refund": lambda count: ngettext(
        "Would have refunded %(count)d charge, %(amount)s",
        "Would have refunded %(count)d charges, %(amount)s",
        count,
    ),
    "stripe.store_credit": lambda count: ngettext(
        "Would have given store credit %(count)d time, %(amount)s",
        "Would have given store credit %(count)d times, %(amount)s",
        count,
    ),
}


class CannotBacktest(ValueError):
    """A definition that stored events cannot start (its trigger is not a Stripe event)."""

    code = "backtest_kind"


def parse_moment(text, now=None):
    """Return an aware datetime for "7d", "24h", "30m", "2w" (ago) or an ISO date/time.

    A date means its midnight and a time without a zone is in the current time zone.
    Raises ValueError.
    """
    now = now or timezone.now()
    found = DURATION.match(str(text))
    if found:
        return now - timedelta(**{UNITS[found.group(2)]: int(found.group(1))})
    value = parse_datetime(str(text).strip())
    if value is None:
        day = parse_date(str(text).strip())
        if day is None:
            raise ValueError(f"{text!r} is neither a period (7d, 24h, 30m) nor an ISO date.")
        value = datetime.combine(day, time())
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


# ------------------------------------------------------------------ stored events


def retention_start(now=None):
    """Return when the oldest run Kanri still keeps may have started (older ones are pruned)."""
    return (now or timezone.now()) - timedelta(days=settings.KANRI_RUN_RETENTION_DAYS)


def stored_events(since=None, until=None, types=None, ids=None):
    """Return dj-stripe's stored events by the filters, oldest first, as (id, payload)."""
    found = Event.objects.all()
    if since is not None:
        found = found.filter(created__gte=since)
    if until is not None:
        found = found.filter(created__lte=until)
    if types:
        found = found.filter(type__in=list(types))
    if ids:
        found = found.filter(id__in=list(ids))
    return found.order_by("created", "id").values_list("id", "type", "data", "stripe_data")


def payload(event_id, event_type, data, stripe_data):
    """Return the verified payload dj-stripe kept (a row without one: its parts)."""
    if stripe_data and stripe_data.get("data"):
        return stripe_data
    return {"id": event_id, "object": "event", "type": event_type, "data": data or {}}


# ------------------------------------------------------------------ backtest


def _branch_names(steps):
    return [step["name"] for step in definitions.iter_steps(steps) if step["kind"] == "branch"]


def backtest(data, since=None, until=None, workflow_id=None, *, types=None, ids=None, tick=None):
    """Return what a definition would have done on the stored events of its type.

    Each event is rehearsed as a run would go (the trigger's origin guard, conditions,
    branches) with the RecordingSender: no request is sent and no row is written. Raises
    InvalidDefinition or CannotBacktest. `tick` is called once per event considered.

    The report: {workflow: {id, name}, event_type, considered, matched, own, halted,
    branches: {name: {then, else}}, money: {currency: minor units},
    money_steps: {kind: {count, money}}, events: [matched events with their steps],
    requests: [{workflow_id, workflow, event, event_type, step, kind, request}]}.
    """
    cleaned = definitions.clean(data)
    trigger = cleaned["trigger"]
    if trigger.get("kind") != TriggerKind.STRIPE_EVENT:
        raise CannotBacktest(trigger.get("kind"))
    event_type = trigger["event_type"]
    report = {
        "workflow": {"id": workflow_id, "name": cleaned.get("name", "")},
        "event_type": event_type,
        "considered": 0,
        "matched": 0,
        "own": 0,
        "halted": 0,
        "branches": {name: {"then": 0, "else": 0} for name in _branch_names(cleaned["steps"])},
        "money": {},
        "money_steps": {},
        "events": [],
        "requests": [],
    }
    if types and event_type not in types:
        return report
    for row in stored_events(since, until, [event_type], ids).iterator(chunk_size=500):
        event = payload(*row)
        report["considered"] += 1
        if tick:
            tick()
        # The live entry never starts a workflow on an event its own Stripe write caused.
        if workflow_id is not None and stripe_event.origin_workflow(event) == workflow_id:
            report["own"] += 1
            continue
        rehearsal = runner.rehearse(cleaned, event, RecordingSender(), {"id": workflow_id})
        if rehearsal["matched"]:
            _count(report, rehearsal)
    return report


def _count(report, rehearsal):
    report["matched"] += 1
    report["halted"] += bool(rehearsal.get("halted"))
    event = rehearsal["event"]
    steps = []
    for step in rehearsal["steps"]:
        if step["kind"] == "branch":
            report["branches"].setdefault(step["name"], {"then": 0, "else": 0})[step["arm"]] += 1
            steps.append({"name": step["name"], "kind": "branch", "arm": step["arm"]})
            continue
        steps.append(
            {
                "name": step["name"],
                "kind": step["kind"],
                "label": step["label"],
                "request": step["request"],
                "error": step["error"],
            }
        )
        if step["request"] is None:
            continue
        report["requests"].append(
            {
                "workflow_id": report["workflow"]["id"],
                "workflow": report["workflow"]["name"],
                "event": event["id"],
                "event_type": event["type"],
                "step": step["name"],
                "kind": step["kind"],
                "request": step["request"],
            }
        )
        if step["moves_money"] and not step["error"]:
            _add_money(report, step)
    report["events"].append({**event, "halted": bool(rehearsal.get("halted")), "steps": steps})


def _add_money(report, step):
    try:
        moved = get_action(step["kind"])().money(step["request"])
    except (UnknownAction, KeyError, TypeError):
        return
    if not isinstance(moved, dict) or not isinstance(moved.get("amount"), int):
        return
    currency = str(moved.get("currency") or "").lower()
    amount = abs(moved["amount"])
    per_kind = report["money_steps"].setdefault(step["kind"], {"count": 0, "money": {}})
    per_kind["count"] += 1
    per_kind["money"][currency] = per_kind["money"].get(currency, 0) + amount
    report["money"][currency] = report["money"].get(currency, 0) + amount


def format_amounts(money):
    """Return "86.00 USD, 1,500 JPY" for {"usd": 8600, "jpy": 1500} (currencies sorted)."""
    return ", ".join(format_money(money[c], c) for c in sorted(money)) or format_money(0, "")


def money_lines(report):
    """Return the sentences of what a backtest's money-moving steps would have moved."""
    lines = []
    for kind in sorted(report["money_steps"]):
        moved = report["money_steps"][kind]
        words = MONEY_WORDS.get(kind)
        if words is None:
            text = _("%(label)s: %(count)d time(s), %(amount)s")
        else:
            text = words(moved["count"])
        lines.append(
            text
            % {
                "label": get_action(kind).label,
                "count": moved["count"],
                "amount": format_amounts(moved["money"]),
            }
        )
    return lines


# ------------------------------------------------------------------ replay


def replay(since=None, until=None, types=None, ids=None, workflow_ids=None, tick=None):
    """Start runs from stored events through the live entry, as the replay kind.

    `workflow_ids` limits it to those (active, Stripe event) workflows. Returns
    {events, started: [run ids], already, failed: [(event id, error)], by_workflow}.
    """
    chosen = None
    if workflow_ids:
        # By the event type of the version that runs (the draft may have changed it).
        chosen = {
            pk: (version or {}).get("trigger", {}).get("event_type")
            for pk, version in Workflow.objects.filter(pk__in=workflow_ids).values_list(
                "pk", "active_version__definition"
            )
        }
    result = {"events": 0, "started": [], "already": 0, "failed": [], "by_workflow": {}}
    # Runs older than the retention period may have been pruned (prune_runs), so whether
    # such an event already ran can no longer be told: never act on it again.
    oldest = retention_start()
    if since is None or since < oldest:
        result["too_old"] = (
            stored_events(since, min(until or oldest, oldest), types, ids)
            .filter(created__lt=oldest)
            .count()
        )
        since = oldest
    else:
        result["too_old"] = 0
    batch = []
    for row in stored_events(since, until, types, ids).iterator(chunk_size=500):
        batch.append(payload(*row))
        if len(batch) == 500:
            _replay_batch(batch, chosen, result, tick)
            batch = []
    if batch:
        _replay_batch(batch, chosen, result, tick)
    return result


def _replay_batch(events, chosen, result, tick):
    already = Run.objects.filter(trigger_key__in=[e["id"] for e in events])
    if chosen is not None:
        already = already.filter(workflow_id__in=list(chosen))
    result["already"] += already.count()
    for event in events:
        result["events"] += 1
        if chosen is None:
            found = [replay_kind.from_event(event)]
        else:
            found = [
                replay_kind.from_event(event, workflow_id)
                for workflow_id, event_type in chosen.items()
                if event_type == event.get("type")
            ]
        for trigger in found:
            try:
                started = start_runs(trigger)
            except Exception as e:  # one bad event must not stop the replay of the rest
                result["failed"].append((event["id"], f"{type(e).__name__}: {e}"))
                continue
            result["started"] += started
            if started:
                for workflow_id in Run.objects.filter(pk__in=started).values_list(
                    "workflow_id", flat=True
                ):
                    result["by_workflow"][workflow_id] = (
                        result["by_workflow"].get(workflow_id, 0) + 1
                    )
        if tick:
            tick()


# ------------------------------------------------------------------ reconcile


def list_events(since, until):
    """Yield the events Stripe lists as created in [since, until], newest first.

    Raises ActionError (integrations.stripe_client classifies Stripe's errors).
    """
    params = {
        "created": {"gte": int(since.timestamp()), "lte": int(until.timestamp())},
        "limit": PAGE_SIZE,
    }
    seen_last = None
    while True:
        page = stripe_client.request("get", "/v1/events", params)
        data = page.get("data") or []
        yield from data
        if not page.get("has_more") or not data or data[-1]["id"] == seen_last:
            return
        seen_last = params["starting_after"] = data[-1]["id"]


def _subscribed(events):
    """Keep the events Kanri's webhook endpoints subscribe to (all, without endpoints)."""
    wanted = set()
    for enabled in WebhookEndpoint.objects.values_list("enabled_events", flat=True):
        wanted.update(enabled or [])
    if not wanted or "*" in wanted:
        return events
    return [e for e in events if e.get("type") in wanted]


def received(event_ids, since):
    """Return which of these event ids Kanri has: a stored Event, or a verified delivery
    (the receiver records the delivery first; dj-stripe's Event follows its sync)."""
    event_ids = list(event_ids)
    have = set()
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        have.update(Event.objects.filter(id__in=chunk).values_list("id", flat=True))
    rest = [i for i in event_ids if i not in have]
    # Deliveries keep the body as received; the id is quoted in it.
    for start in range(0, len(rest), 50):
        chunk = rest[start : start + 50]
        query = Q()
        for event_id in chunk:
            query |= Q(body__contains=f'"{event_id}"')
        bodies = WebhookEventTrigger.objects.filter(
            query, valid=True, created__gte=since - timedelta(days=1)
        ).values_list("body", flat=True)
        for body in bodies:
            have.update(i for i in chunk if f'"{i}"' in body)
    return have


def reconcile(since=None, until=None, dry_run=False, tick=None):
    """Compare Stripe's event list with the deliveries received; record and run the missing.

    A webhook that answered 200 is no proof that the work ran: a delivery can be lost on
    the way (a proxy, a deploy, an endpoint disabled for a while, an event Stripe gave up
    on after three days of retries), and then no run ever starts. Stripe's event list is
    the other witness. Each missing event is recorded as the webhook receiver records a
    verified delivery and goes through the same entry once; running this again finds
    nothing missing, and run keys are event ids, so nothing runs twice.

    With `dry_run`, nothing is recorded (no report row either). Returns {id (the
    Reconciliation row, None on a dry run), since, until, listed, missing, replayed,
    failed: [(event id, error)], error}.
    """
    from integrations.stripe_webhooks import record_listed

    now = timezone.now()
    until = until or now - GRACE
    since = since or now - RECONCILE_PERIOD
    report = None
    if not dry_run:
        report = Reconciliation.objects.create(since=since, until=until, started_at=now)
    result = {
        "id": report.pk if report else None,
        "since": since,
        "until": until,
        "listed": 0,
        "missing": [],
        "replayed": 0,
        "failed": [],
        "error": "",
    }
    try:
        listed = _subscribed(list(list_events(since, until)))
    except ActionError as e:
        result["error"] = e.message
        if report is not None:
            _close(report, result, Reconciliation.Status.FAILED)
        return result
    result["listed"] = len(listed)
    have = received([e["id"] for e in listed], since)
    missing = [e for e in reversed(listed) if e["id"] not in have]  # oldest first
    result["missing"] = [e["id"] for e in missing]
    if report is not None:
        report.listed, report.missing = result["listed"], result["missing"]
        report.save(update_fields=["listed", "missing"])
    if dry_run:
        return result
    before = Run.objects.filter(trigger_key__in=result["missing"]).count()
    for event in missing:
        try:
            record_listed(event)
        except Exception as e:  # the others still go through
            result["failed"].append((event["id"], f"{type(e).__name__}: {e}"))
        if tick:
            tick()
    result["replayed"] = Run.objects.filter(trigger_key__in=result["missing"]).count() - before
    if result["failed"]:
        result["error"] = "; ".join(f"{i}: {error}" for i, error in result["failed"])
    status = Reconciliation.Status.FAILED if result["failed"] else Reconciliation.Status.DONE
    _close(report, result, status)
    return result


def _close(report, result, status):
    report.status = status
    report.replayed = result["replayed"]
    report.error = result["error"]
    report.finished_at = timezone.now()
    report.save(update_fields=["status", "replayed", "error", "finished_at"])
