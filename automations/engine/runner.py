"""Execute a run: its version's steps in order, branches, retries, and the audit rows.

The runner is the only writer of RunStep rows. Each step attempt is recorded right after
it happens, so a run taken up again (a retry, a redelivered task, a worker that died)
skips the steps that already succeeded and reuses their outputs and branch decisions.

Retry policy, decided here and nowhere else: a step whose action raises a transient
ActionError is tried again after RETRY_DELAYS[attempt - 1] seconds (or the provider's
Retry-After, if longer), at most MAX_STEP_ATTEMPTS times in all; a permanent error, an
unknown reference or an unexpected exception fails the run at once. Waiting runs are
picked up by `automations.tasks.retry_due_runs` (scheduled every minute), so a delay may
run up to a minute longer than written.
"""

import logging
import time
import traceback
from collections import Counter
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from automations.engine.conditions import matches
from automations.engine.context import build_context
from automations.engine.references import RenderError, render
from automations.models import Run, RunStep, Step
from automations.triggers import RUN_TASK
from integrations.base import ActionError, StepCall
from integrations.queue import enqueue
from integrations.registry import UnknownAction, get_action

logger = logging.getLogger(__name__)

RETRY_DELAYS = (30, 120, 600, 1800)
MAX_STEP_ATTEMPTS = len(RETRY_DELAYS) + 1
# A run still "running" this long after a worker took it is presumed orphaned (the
# worker died) and is queued again; django-q2's own timeout (60 s) is well inside it.
LEASE = timedelta(minutes=5)


class Stop(Exception):
    """The run cannot go on now: it waits for a retry, or it has failed."""

    def __init__(self, message, retry_in=None):
        super().__init__(message)
        self.message = message
        self.retry_in = retry_in


def walk(steps, context, on_action, on_branch):
    """Run `steps` in order: actions through `on_action`, branches through `on_branch`.

    Shared by real runs and previews; only the two callbacks differ.
    """
    for step in steps:
        if step["kind"] == Step.BRANCH:
            arm = on_branch(step, context)
            walk(step[arm], context, on_action, on_branch)
        else:
            context["steps"][step["name"]] = on_action(step, context)


def decide_branch(step, context):
    """Return ("then" or "else", explanation) for a branch step."""
    matched, explanation = matches(step["conditions"], context)
    return ("then" if matched else "else"), explanation


def idempotency_key(run, step_name):
    # The workflow id lets the trigger recognise events caused by this workflow's writes.
    return f"kanri-{run.workflow_id}-{run.pk}-{step_name}"


def execute(run_id):
    """Take a queued run and carry it as far as it can go. Return its status, or None if
    another worker has it or it is not queued."""
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
    return RunExecution(run).execute()


class RunExecution:
    def __init__(self, run):
        self.run = run
        history = list(run.steps.all())
        self.done = {s.step_name: s for s in history if s.status == RunStep.Status.SUCCEEDED}
        self.attempts = Counter(s.step_name for s in history)
        self.first_started = {}
        for s in history:
            self.first_started.setdefault(s.step_name, s.started_at)

    def execute(self):
        run = self.run
        context = build_context(
            run.trigger_data,
            workflow={"id": run.workflow_id, "name": run.workflow.name},
            run={"id": run.pk, "attempt": run.attempt},
        )
        try:
            walk(run.version.definition["steps"], context, self.on_action, self.on_branch)
        except Stop as stop:
            return self.finish_stopped(stop)
        return self.finish(Run.Status.SUCCEEDED, "")

    def on_branch(self, step, context):
        name = step["name"]
        if name in self.done:
            return self.done[name].output["arm"]
        started = timezone.now()
        arm, explanation = decide_branch(step, context)
        self.record(
            step,
            RunStep.Status.SUCCEEDED,
            started,
            input={"conditions": step["conditions"]},
            output={"arm": arm, "conditions": explanation},
        )
        return arm

    def on_action(self, step, context):
        name = step["name"]
        if name in self.done:
            return self.done[name].output or {}
        attempt = self.attempts[name] + 1
        started, clock = timezone.now(), time.monotonic()
        call = StepCall(
            idempotency_key=idempotency_key(self.run, name),
            run_id=self.run.pk,
            workflow_id=self.run.workflow_id,
            first_attempt_at=self.first_started.get(name),
        )
        request = None
        try:
            action = get_action(step["kind"])()
            request = action.prepare(render(step["config"], context, action.escape), call)
            output = action.send(request, call)
        except (RenderError, UnknownAction) as e:
            error = ActionError(str(e), permanent=True)
        except ActionError as e:
            error = e
        except Exception as e:  # a bug, not a provider answer: never retried blindly
            logger.exception("Step %s of run %s raised", name, self.run.pk)
            error = ActionError(
                f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}", permanent=True
            )
        else:
            self.record(
                step,
                RunStep.Status.SUCCEEDED,
                started,
                clock,
                attempt,
                call,
                request,
                output=output,
            )
            return output

        retry = not error.permanent and attempt < MAX_STEP_ATTEMPTS
        status = RunStep.Status.RETRYING if retry else RunStep.Status.FAILED
        self.record(step, status, started, clock, attempt, call, request, error=error.message)
        if retry:
            delay = max(RETRY_DELAYS[attempt - 1], error.retry_after or 0)
            raise Stop(f"Step {name!r} failed (attempt {attempt}): {error.message}", delay)
        raise Stop(f"Step {name!r} failed: {error.message}")

    def record(
        self,
        step,
        status,
        started,
        clock=None,
        attempt=1,
        call=None,
        input=None,
        output=None,
        error="",
    ):
        RunStep.objects.create(
            run=self.run,
            step_name=step["name"],
            kind=step["kind"],
            attempt=attempt,
            status=status,
            input=input,
            output=output,
            error=error,
            idempotency_key=call.idempotency_key if call else "",
            started_at=started,
            finished_at=timezone.now(),
            duration_ms=int((time.monotonic() - clock) * 1000) if clock else 0,
        )

    def finish_stopped(self, stop):
        if stop.retry_in is None:
            return self.finish(Run.Status.FAILED, stop.message)
        Run.objects.filter(pk=self.run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.RETRYING,
            error=stop.message,
            next_attempt_at=timezone.now() + timedelta(seconds=stop.retry_in),
            lease_until=None,
        )
        return Run.Status.RETRYING

    def finish(self, status, error):
        # Only from RUNNING: a run cancelled meanwhile stays cancelled.
        Run.objects.filter(pk=self.run.pk, status=Run.Status.RUNNING).update(
            status=status, error=error, finished_at=timezone.now(), lease_until=None
        )
        return status


def retry_failed(run_ids):
    """Queue failed runs again (an admin's decision); return how many.

    Steps that succeeded stay done; the failed step gets one more attempt with the same
    idempotency key, so a Stripe write that did happen is not repeated.
    """
    now = timezone.now()
    count = 0
    for pk in run_ids:
        if Run.objects.filter(pk=pk, status=Run.Status.FAILED).update(
            status=Run.Status.QUEUED, error="", finished_at=None, next_attempt_at=now
        ):
            enqueue(RUN_TASK, pk)
            count += 1
    return count


def cancel(run_ids):
    """Cancel runs that are waiting (queued or waiting to retry); return how many."""
    return Run.objects.filter(
        pk__in=run_ids, status__in=[Run.Status.QUEUED, Run.Status.RETRYING]
    ).update(status=Run.Status.CANCELLED, finished_at=timezone.now(), next_attempt_at=None)
