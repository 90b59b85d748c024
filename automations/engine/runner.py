"""One engine for every mode: walk a version's steps and branches, sending through a sender.

`walk` is the only walker of a definition at run time. What happens at each action is
the sender's business (automations/engine/senders.py):

- LiveSender sends for real and writes the audit (a live run, `execute`);
- PreviewSender sends nothing, though read-only steps really fetch (the editor's preview);
- RecordingSender sends nothing at all and records every request it would send
  (dry-runs, backtests, replays with --dry-run).

So a preview, a backtest and a real run cannot disagree about what a workflow does.

Retry policy, decided here and nowhere else: a step whose action raises a transient
ActionError is tried again after RETRY_DELAYS[attempt - 1] seconds (or the provider's
Retry-After, if longer), at most MAX_STEP_ATTEMPTS times in all; a permanent error, an
unknown reference or an unexpected exception fails the run at once. A run whose worker
dies MAX_INTERRUPTIONS times fails visibly instead of being queued forever; retries
after provider errors do not count towards that (they are bounded per step). Waiting
runs are picked up by `automations.tasks.retry_due_runs` (scheduled every minute).
"""

from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from automations.engine.conditions import matches
from automations.engine.context import build_context
from automations.engine.references import render
from automations.models import Run, RunStep, Step
from integrations.registry import get_action

RETRY_DELAYS = (30, 120, 600, 1800)
MAX_STEP_ATTEMPTS = len(RETRY_DELAYS) + 1
MAX_INTERRUPTIONS = 5
# A run still "running" this long after a worker took it is presumed orphaned (the
# worker died) and is queued again; django-q2's own timeout (60 s) is well inside it.
LEASE = timedelta(minutes=5)


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
    from automations.engine.senders import LiveSender

    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING,
        attempt=F("attempt") + 1,
        lease_until=now + LEASE,
        next_attempt_at=None,
    )
    if not claimed:
        return None
    run = Run.objects.select_related("version", "workflow").get(pk=run_id)
    if run.started_at is None:
        Run.objects.filter(pk=run_id).update(started_at=now)
    sender = LiveSender(run)
    context = build_context(
        run.trigger_data,
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
