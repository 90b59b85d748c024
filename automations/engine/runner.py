"""One engine for every mode: walk a version's steps and branches, sending through a sender.

`walk` is the only walker of a definition at run time. What happens at each action is
the sender's business (automations/engine/senders.py):

- LiveSender sends for real and writes the audit (a live run, `execute`);
- PreviewSender sends nothing, though read-only steps really fetch (the editor's preview);
- RecordingSender sends nothing at all and records every request it would send
  (dry-runs, backtests, replays with --dry-run).

So a preview, a backtest and a real run cannot disagree about what a workflow does.

Retry policy, decided here and nowhere else (`retry_delay`): a step whose action raises
a transient ActionError is tried again after the provider's Retry-After when it gives
one (Slack's 429s do), otherwise after RETRY_DELAYS[attempt - 1] seconds
(settings.KANRI_RETRY_DELAYS: 30, 120, 600, 1800 s), at most MAX_STEP_ATTEMPTS times in
all; a permanent error, an unknown reference or an unexpected exception fails the run at
once. Waiting runs are queued again by `automations.tasks.retry_due_runs`, which every
worker calls every KANRI_SWEEP_SECONDS (5 s), so a retry starts within a few seconds of
being due.

A worker holds a run for LEASE (KANRI_RUN_LEASE_SECONDS, 30 s) and a heartbeat thread
renews the lease every HEARTBEAT (10 s) for as long as the worker lives, however long a
step takes. A run whose lease ran out had a dead worker: the sweeper queues it again
(about LEASE + SWEEP after the death), and it resumes from its audit (senders.py). The
lease outlasts the longest provider timeout (Stripe's 20 s), so a resumed run never
races a request its dead worker left on the wire. A database connection dropped under a
worker is replaced before the writes that matter (`reconnect_if_lost`). A run
whose worker dies MAX_INTERRUPTIONS times fails visibly instead of being queued forever;
retries after provider errors do not count towards that (they are bounded per step).
"""

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, connections
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from automations.engine.conditions import matches
from automations.engine.context import build_context
from automations.engine.references import render
from automations.models import Run, RunStep, Step
from integrations.registry import get_action

logger = logging.getLogger(__name__)

RETRY_DELAYS = tuple(settings.KANRI_RETRY_DELAYS)
MAX_STEP_ATTEMPTS = len(RETRY_DELAYS) + 1
MAX_INTERRUPTIONS = 5
# A run still "running" after its lease is presumed orphaned (the worker died) and is
# queued again. The heartbeat renews the lease of a live worker, so the lease can be
# short; it must only outlast a few missed beats (a stalled database, a long GC).
LEASE = timedelta(seconds=settings.KANRI_RUN_LEASE_SECONDS)
HEARTBEAT = settings.KANRI_HEARTBEAT_SECONDS


def retry_delay(attempt, retry_after=None):
    """Return the seconds to wait before retrying a step whose `attempt` failed.

    The provider's Retry-After wins when given, shorter or longer than our backoff:
    Slack's rate limit says exactly when the next call is allowed.
    https://api.slack.com/apis/rate-limits
    """
    if retry_after is not None:
        return max(retry_after, 0)
    return RETRY_DELAYS[attempt - 1]


def reconnect_if_lost():
    """Close this thread's database connection if the server dropped it (a restart, a
    failover, pg_terminate_backend), so the next query opens a new one instead of failing.

    Used where a worker starts on its own (the sweeper, a heartbeat). At the start of a
    task django-q2 has already asked Django to check the connection on its first query
    (CONN_HEALTH_CHECKS), so a second SELECT 1 would only add a round trip.
    """
    if connection.health_check_enabled and not connection.health_check_done:
        return  # Django checks it on the next query
    live = connection.connection is not None and not connection.in_atomic_block
    if live and not connection.is_usable():
        connection.close()


def write_after_send(write):
    """Do `write` (an idempotent autocommitted write), on a new connection if the server
    dropped this one while a provider call was outstanding.

    What a provider answered must be recorded even then: otherwise a Slack post that went
    out would read "outcome unknown" on resume. Trying first and reconnecting on failure
    costs nothing when the connection is fine, which a SELECT 1 before every write would.
    """
    try:
        return write()
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise  # the transaction is lost with the connection: the caller decides
        connection.close()
        return write()


class Heartbeat:
    """Renew a run's lease every HEARTBEAT seconds while this worker carries it.

    A daemon thread, so it dies with the worker: that is what lets the lease run out
    when, and only when, the worker is gone. It renews only the attempt it was started
    for and only while the run is RUNNING, so it never revives a run that moved on.
    """

    def __init__(self, run_id, attempt):
        self.run_id, self.attempt = run_id, attempt
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._beat, name=f"kanri-heartbeat-{run_id}", daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()

    def renew(self):
        """Extend the lease by LEASE from now; return False if the run has moved on."""
        reconnect_if_lost()
        return bool(
            Run.objects.filter(
                pk=self.run_id, status=Run.Status.RUNNING, attempt=self.attempt
            ).update(lease_until=timezone.now() + LEASE)
        )

    def _beat(self):
        try:
            while not self.stopped.wait(HEARTBEAT):
                try:
                    self.renew()
                except Exception:
                    # The next beat tries again on a new connection; the lease outlasts
                    # a few missed beats.
                    logger.warning(
                        "Could not renew the lease of run %s", self.run_id, exc_info=True
                    )
                    connection.close()
        finally:
            connections.close_all()  # this thread's connections only


class Stop(Exception):
    """The run cannot go on now: it waits for a retry, or it has failed."""

    def __init__(self, message, retry_in=None):
        super().__init__(message)
        self.message = message
        self.retry_in = retry_in


class Hold(Exception):
    """The run waits for a person: a step's outcome is unknown, or it is above a money cap."""

    def __init__(self, reason, step_name):
        super().__init__(reason)
        self.reason = reason
        self.step_name = step_name


def walk(steps, context, sender):
    """Run `steps` in order: actions and branches through the sender."""
    for step in steps:
        if step["kind"] == Step.BRANCH:
            arm = sender.branch(step, context)
            walk(step[arm], context, sender)
        else:
            context["steps"][step["name"]] = sender.action(step, context)


def decide_branch(step, context):
    """Return ("then" or "else", explanation) for a branch step."""
    matched, explanation = matches(step["conditions"], context)
    return ("then" if matched else "else"), explanation


def prepare(step, context, call):
    """Return (action, request): the step's references rendered and its request built.

    Raises RenderError, UnknownAction or ActionError; nothing has been sent then.
    """
    action = get_action(step["kind"])()
    return action, action.prepare(render(step["config"], context, action.escape), call)


def rehearse(definition, trigger_data, sender, workflow=None):
    """Walk a definition on a trigger's data without a run; return the sender's report.

    Used by previews, dry-runs and backtests: conditions and branches are decided as a
    run would decide them, and the sender says what each action would send.
    """
    context = build_context(
        trigger_data,
        workflow={"id": (workflow or {}).get("id"), "name": definition.get("name", "")},
        run={"id": None, "attempt": 0},
    )
    matched, explanation = matches(definition.get("conditions") or [], context)
    sender.start(trigger_data, definition, matched, explanation)
    if matched:
        try:
            walk(definition.get("steps") or [], context, sender)
        except Stop:
            sender.report["halted"] = True
    return sender.report


def execute(run_id):
    """Take a queued run and carry it as far as it can go. Return its status, or None if
    another worker has it or it is not queued."""
    reconnect_if_lost()
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING,
        attempt=F("attempt") + 1,
        lease_until=now + LEASE,
        next_attempt_at=None,
        started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
    )
    if not claimed:
        return None
    run = Run.objects.select_related("version", "workflow", "event").get(pk=run_id)
    with Heartbeat(run.pk, run.attempt):
        return _carry(run)


def _carry(run):
    from automations.engine.senders import LiveSender

    sender = LiveSender(run)
    context = build_context(
        run.snapshot,
        workflow={"id": run.workflow_id, "name": run.workflow.name},
        run={"id": run.pk, "attempt": run.attempt},
    )
    try:
        walk(run.version.definition["steps"], context, sender)
    except Stop as stop:
        return _stopped(run, stop)
    except Hold as hold:
        # The run page says what the person must decide (from the hold reason, the step's
        # row or its Approval), in the reader's language.
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.HELD, hold_reason=hold.reason, error="", lease_until=None
        )
        return Run.Status.HELD
    return _finish(run, Run.Status.SUCCEEDED, "")


def _stopped(run, stop):
    if stop.retry_in is None:
        return _finish(run, Run.Status.FAILED, stop.message)
    Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=Run.Status.RETRYING,
        error=stop.message,
        next_attempt_at=timezone.now() + timedelta(seconds=stop.retry_in),
        lease_until=None,
    )
    return Run.Status.RETRYING


def _finish(run, status, error):
    # Only from RUNNING: a run cancelled meanwhile stays cancelled.
    Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=status, error=error, finished_at=timezone.now(), lease_until=None
    )
    return status


def fail_at_cap(run_id, status):
    """Fail a run whose worker died MAX_INTERRUPTIONS times (from `status`); return FAILED
    or None if the run had moved on.

    A step left open by a dead worker may or may not have been sent: it is closed as
    "outcome unknown", so nobody reads it as not done.
    """
    now = timezone.now()
    failed = Run.objects.filter(pk=run_id, status=status).update(
        status=Run.Status.FAILED,
        error=f"Stopped: the worker running it stopped {MAX_INTERRUPTIONS} times.",
        interruptions=MAX_INTERRUPTIONS,
        finished_at=now,
        lease_until=None,
        next_attempt_at=None,
    )
    if not failed:
        return None
    RunStep.objects.filter(run_id=run_id, status=RunStep.Status.STARTED).update(
        status=RunStep.Status.UNKNOWN, finished_at=now
    )
    return Run.Status.FAILED
