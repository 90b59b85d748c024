"""The django-q2 Schedule of each scheduled workflow, kept in step with the workflow.

Exactly one Schedule named `kanri-workflow-<pk>` exists while the workflow is active and
its active version's trigger is a schedule; pausing, deleting or activating another kind
of trigger removes it. The workflow's post_save and post_delete receivers
(automations/triggers/schedule.py) call `sync` and `remove`, inside the transaction that
changed the workflow, so the two cannot disagree after a commit.

django-q2 evaluates CRON schedules in settings.TIME_ZONE (django_q/models.py
Schedule.calculate_next_run), not in the workflow's zone, so `next_run` is computed
here with croniter in the workflow's zone, and the task re-arms it after each tick. The
Schedule's own cron stays the workflow's: if django-q2's next run ever wins, the task
still fires at least once a period, and only starts what is due in the workflow's zone.
"""

import ast

from django.utils import timezone
from django_q.models import Schedule

from automations.triggers import schedule

TASK = "automations.tasks.run_schedule"


def name(workflow_id):
    return f"kanri-workflow-{workflow_id}"


def sync(workflow):
    """Create, update or remove a workflow's Schedule to match it; return it or None.

    An unchanged cron and zone keep the Schedule's next run: saving the workflow again
    must not skip a tick that is due but not yet picked up.
    """
    trigger = schedule.active_trigger(workflow)
    found = schedule.timing(trigger) if trigger else None
    if found is None:
        remove(workflow.pk)
        return None
    cron, zone = found
    rows = list(Schedule.objects.filter(name=name(workflow.pk)).order_by("pk"))
    kept, extra = (rows[0], rows[1:]) if rows else (None, [])
    if extra:
        Schedule.objects.filter(pk__in=[s.pk for s in extra]).delete()
    if kept is not None and kept.cron == cron and _kwargs(kept).get("zone") == zone.key:
        return kept
    now = timezone.now()
    values = {
        "func": TASK,
        "args": repr(workflow.pk),
        # `since`: ticks before the schedule was armed are not run when it first fires.
        "kwargs": repr({"since": now.isoformat(), "zone": zone.key}),
        "schedule_type": Schedule.CRON,
        "cron": cron,
        "repeats": -1,
        "next_run": schedule.next_times(trigger, 1, now)[0],
    }
    if kept is None:
        kept = Schedule.objects.create(name=name(workflow.pk), **values)
        # Schedule.save() replaces a new CRON schedule's next run with django-q2's own, in
        # the server's zone; put the workflow's back.
        Schedule.objects.filter(pk=kept.pk).update(next_run=values["next_run"])
        kept.next_run = values["next_run"]
        return kept
    for field, value in values.items():
        setattr(kept, field, value)
    kept.save()
    return kept


def remove(workflow_id):
    """Delete a workflow's Schedule, if it has one."""
    Schedule.objects.filter(name=name(workflow_id)).delete()


def arm(workflow_id, trigger, now=None):
    """Set the Schedule's next run to the trigger's next tick, in the workflow's zone."""
    ticks = schedule.next_times(trigger, 1, now)
    if ticks:
        Schedule.objects.filter(name=name(workflow_id)).update(next_run=ticks[0])


def _kwargs(row):
    try:
        value = ast.literal_eval(row.kwargs or "{}")
    except (SyntaxError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
