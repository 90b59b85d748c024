"""Money caps: how much a workflow may move per run and per day, per currency.

A workflow that moves money declares its caps in its definition, in minor units:

    "limits": {"per_run": {"usd": 50000}, "per_day": {"usd": 200000, "jpy": 300000}}

Before a money-moving step is sent, the live sender asks `check`: the step's amount,
plus what this run and (for the day cap) every run of the workflow today already
moved in that currency, must stay within the caps. Otherwise the run is held "waiting
for approval" with an Approval row saying which caps it passes; an approver other than
the person who started the run or last edited the workflow decides. An approved step
is sent without asking again; its amount still counts towards later totals.

A currency with no cap, or a step whose amount cannot be read, is held too: safer to
ask a person than to move money nobody set a limit for.

"Today" is the calendar day in settings.TIME_ZONE, the business's own day. Steps count
once they are STARTED (in flight), SUCCEEDED, or of unknown outcome; failed attempts
moved nothing. The check runs under a lock on the workflow row, so two runs cannot both
slip under a cap at once.
"""

from datetime import datetime, time

from django.db.models import Sum
from django.utils import timezone

from automations.models import Approval, RunStep, Workflow

CAPS = ("per_run", "per_day")
COUNTED = (RunStep.Status.STARTED, RunStep.Status.SUCCEEDED, RunStep.Status.UNKNOWN)


def day_start(now=None):
    """Return the start of the business day (settings.TIME_ZONE) containing `now`."""
    local = timezone.localtime(now or timezone.now(), timezone.get_default_timezone())
    return datetime.combine(local.date(), time.min, tzinfo=local.tzinfo)


def moved(workflow_id, currency, *, run_id=None, since=None):
    """Return the minor units a workflow's money steps moved (or have in flight)."""
    rows = RunStep.objects.filter(
        run__workflow_id=workflow_id, currency=currency, status__in=COUNTED, amount__isnull=False
    )
    if run_id is not None:
        rows = rows.filter(run_id=run_id)
    if since is not None:
        rows = rows.filter(started_at__gte=since)
    return rows.aggregate(total=Sum("amount"))["total"] or 0


def exceeded(limits, workflow_id, run_id, money):
    """Return the caps a step moving `money` would pass: [{cap, limit, total}] ([] = fine)."""
    amount = money.get("amount") if isinstance(money, dict) else None
    currency = str((money or {}).get("currency") or "").lower() if isinstance(money, dict) else ""
    if not isinstance(amount, int) or isinstance(amount, bool) or not currency:
        return [{"cap": "amount_unknown", "limit": None, "total": None}]
    passed = []
    totals = {
        "per_run": lambda: moved(workflow_id, currency, run_id=run_id),
        "per_day": lambda: moved(workflow_id, currency, since=day_start()),
    }
    for cap in CAPS:
        limit = ((limits or {}).get(cap) or {}).get(currency)
        if limit is None:
            passed.append({"cap": cap, "limit": None, "total": abs(amount)})
            continue
        total = totals[cap]() + abs(amount)
        if total > limit:
            passed.append({"cap": cap, "limit": limit, "total": total})
    return passed


def check(run, step_name, money, limits):
    """Return the caps a money-moving step would pass ([] = it may go on).

    Call inside a transaction: the workflow row is locked until it commits, and the
    caller writes the step's STARTED row (with its amount) before it does, so the next
    run's check counts it. A step a person approved is never asked again.
    """
    if Approval.objects.filter(
        run=run, step_name=step_name, decision=Approval.Decision.APPROVED
    ).exists():
        return []
    Workflow.objects.select_for_update().filter(pk=run.workflow_id).first()
    return exceeded(limits, run.workflow_id, run.pk, money)


def request_approval(run, step_name, money, over):
    """Record that a step waits for an approver (once per step), and return it."""
    amount = money.get("amount") if isinstance(money, dict) else None
    currency = money.get("currency") if isinstance(money, dict) else ""
    approval, _ = Approval.objects.get_or_create(
        run=run,
        step_name=step_name,
        defaults={
            "amount": abs(amount) if isinstance(amount, int) else 0,
            "currency": str(currency or "")[:3].lower(),
            "exceeded": over,
        },
    )
    return approval
