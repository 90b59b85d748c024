"""django-q2 tasks: thin; the decisions live in the engine."""

import logging
import os
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from automations.engine import runner
from automations.models import Run
from integrations import stripe_webhooks
from integrations.queue import enqueue, in_worker_process

RUN_TASK = "automations.tasks.run_workflow"
# A queued run whose task has not started this long after it was due is presumed lost
# (the Redis broker drops a task whose worker dies) and is queued again. Taking a run is
# a conditional update, so a task that was only slow and then arrives does nothing.
LOST_AFTER = timedelta(seconds=settings.KANRI_LOST_AFTER_SECONDS)
# How often each worker process sweeps (see `start_sweeping`).
SWEEP = settings.KANRI_SWEEP_SECONDS

logger = logging.getLogger(__name__)
_sweeping_in = None  # the pid whose sweeper thread runs


def queue_run(run_id):
    """Queue a run once the current transaction commits."""
    enqueue(RUN_TASK, run_id)


def run_workflow(run_id):
    """Execute one run (queued by a trigger, the sweeper, or a person's retry)."""
    return runner.execute(run_id)


def retry_due_runs(limit=1000):
    """Queue runs whose retry is due, whose worker died, or whose task was lost.

    Every worker calls it every SWEEP seconds (`start_sweeping`), and django-q2's
    scheduler once a minute as a backstop. Each run is claimed with a conditional update,
    so sweepers running at once never queue the same run twice. A run whose worker died
    MAX_INTERRUPTIONS times fails instead, visibly. Returns how many it queued.
    """
    runner.reconnect_if_lost()
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


def lower_priority(**kwargs):
    """In a django-q2 worker process (post_spawn), yield the CPU to the web processes.

    On a host running both, a webhook's acknowledgement is what cannot wait (Stripe
    retries and, after days of failures, disables an endpoint), while a queued run is
    kept in the database and waits its turn. Only the worker processes are lowered: the
    cluster's pusher and monitor stay as they are, so work keeps being handed out.
    """
    if not in_worker_process():
        return
    wanted = settings.KANRI_WORKER_NICE
    current = os.nice(0)
    if wanted > current:
        os.nice(wanted - current)


def start_sweeping(**kwargs):
    """In a django-q2 worker process (its post_spawn signal), sweep every SWEEP seconds.

    django-q2's scheduler only looks at its schedules every 30 s, and schedules repeat at
    most once a minute, so a Retry-After of 1 s would wait up to a minute and a dead
    worker's run up to its lease plus a minute. One indexed query per worker every few
    seconds is the price of retries that start when due. A daemon thread: it dies with
    its worker, and the sentinel's new worker starts its own.
    """
    global _sweeping_in
    if not in_worker_process() or _sweeping_in == os.getpid():
        return
    if SWEEP <= 0:  # switched off: django-q2's once-a-minute schedule still sweeps
        return
    _sweeping_in = os.getpid()
    threading.Thread(target=_sweep_forever, name="kanri-sweeper", daemon=True).start()


def _sweep_forever():
    stop = threading.Event()  # never set: the thread lives as long as its worker
    while not stop.wait(SWEEP):
        try:
            retry_due_runs()
            # The webhook receiver's word that a sync batch is queued may be a moment
            # stale (integrations.stripe_webhooks.request_sync); this catches what waits.
            stripe_webhooks.kick_sync_if_due()
        except Exception:
            # Redis or the database away for a moment: the next sweep tries again.
            logger.warning("Sweeping for due runs failed", exc_info=True)
            connections.close_all()


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
