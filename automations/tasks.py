"""django-q2 tasks: thin; the decisions live in the engine."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from automations.engine import runner
from automations.models import Run
from integrations.queue import enqueue

RUN_TASK = "automations.tasks.run_workflow"
# A queued run whose task has not started this long after it was due is presumed lost
# (the Redis broker drops a task whose worker dies) and is queued again. Taking a run is
# a conditional update, so a task that was only slow and then arrives does nothing.
LOST_AFTER = timedelta(minutes=2)


def queue_run(run_id):
    """Queue a run once the current transaction commits."""
    enqueue(RUN_TASK, run_id)


def run_workflow(run_id):
    """Execute one run (queued by a trigger, the sweeper, or a person's retry)."""
    return runner.execute(run_id)


def retry_due_runs(limit=1000):
    """Queue runs whose retry is due, whose worker died, or whose task was lost.

    Scheduled every minute. Each run is claimed with a conditional update, so two
    sweepers running at once never queue the same run twice. A run whose worker died
    MAX_INTERRUPTIONS times fails instead, visibly. Returns how many it queued.
    """
    now = timezone.now()
    due = (
        Run.objects.filter(
            Q(status=Run.Status.RETRYING, next_attempt_at__lte=now)
            | Q(status=Run.Status.RUNNING, lease_until__lt=now)
            | Q(status=Run.Status.QUEUED, next_attempt_at__lt=now - LOST_AFTER)
        )
        .order_by("next_attempt_at")
        .values_list("pk", "status", "next_attempt_at", "lease_until", "interruptions")[:limit]
    )
    queued = 0
    for pk, status, next_attempt_at, lease_until, interruptions in due:
        died = status == Run.Status.RUNNING
        if died and interruptions + 1 >= runner.MAX_INTERRUPTIONS:
            runner.fail_at_cap(pk, status)
            continue
        claimed = Run.objects.filter(
            pk=pk, status=status, next_attempt_at=next_attempt_at, lease_until=lease_until
        ).update(
            status=Run.Status.QUEUED,
            next_attempt_at=now,
            lease_until=None,
            interruptions=interruptions + died,
        )
        if claimed:
            queue_run(pk)
            queued += 1
    return queued


def run_schedule(workflow_id, since=None, zone=None):
    """Start the runs of a scheduled workflow's latest due tick (its django-q2 Schedule
    calls this; `zone` is what the Schedule was armed for, see automations/schedules.py)."""
    from automations.triggers import schedule

    return schedule.tick(workflow_id, since=since)


def prune_runs():
    """Delete finished runs older than settings.KANRI_RUN_RETENTION_DAYS (scheduled daily)."""
    from automations import maintenance

    return maintenance.prune_runs()


def reconcile_events():
    """Find Stripe events of the last day Kanri never received, and run them (hourly)."""
    from automations import maintenance

    return maintenance.reconcile_events()
