"""What happens at each step, per mode: live, preview, recording (see engine/runner.py).

The runner is the only writer of RunStep rows, through LiveSender. Each attempt is
written STARTED before its request is sent and closed after it (healthchecks'
Channel.notify does the same): a worker that dies mid-send leaves that evidence. A run
taken up again (a retry, a redelivered task, a worker that died) skips steps that
succeeded and reuses their outputs and branch decisions; a step left STARTED is sent
again only where the provider deduplicates (Stripe's idempotency keys, reads), and is
otherwise "outcome unknown": the run is held for a person to choose.
"""

import logging
import time
import traceback

from django.db import transaction
from django.utils import timezone

from automations.engine import caps, keys
from automations.engine.commits import durable
from automations.engine.conditions import readable
from automations.engine.references import RenderError
from automations.engine.runner import (
    MAX_STEP_ATTEMPTS,
    Hold,
    Stop,
    decide_branch,
    prepare,
    retry_delay,
    write_after_send,
)
from automations.models import Run, RunStep
from integrations.base import ActionError, StepCall
from integrations.registry import UnknownAction, get_action

logger = logging.getLogger(__name__)


def _as_action_error(error, step_name, run_id=None):
    if isinstance(error, ActionError):
        return error
    if isinstance(error, RenderError | UnknownAction):
        return ActionError(str(error), permanent=True)
    # A bug, not a provider answer: never retried blindly.
    logger.error("Step %s of run %s raised", step_name, run_id, exc_info=error)
    return ActionError(
        f"{type(error).__name__}: {error}\n{''.join(traceback.format_exception(error, limit=5))}",
        permanent=True,
    )


class LiveSender:
    """Send for real and keep the audit: one RunStep row per attempt."""

    def __init__(self, run):
        self.run = run
        self.history = {}
        # A run's first attempt has no steps yet: attempts count the times a worker took
        # it, and only a worker that took it writes steps.
        for row in run.steps.order_by("pk") if run.attempt > 1 else ():
            self.history.setdefault(row.step_name, []).append(row)

    def _done(self, name):
        for row in self.history.get(name, []):
            if row.status == RunStep.Status.SUCCEEDED:
                return row.output or {}
            if row.status == RunStep.Status.UNKNOWN and row.decision == RunStep.Decision.SKIP:
                return {}
        return None

    def branch(self, step, context):
        done = self._done(step["name"])
        if done is not None:
            return done["arm"]
        started = timezone.now()
        arm, explanation = decide_branch(step, context)
        RunStep.objects.create(
            run=self.run,
            step_name=step["name"],
            kind=step["kind"],
            status=RunStep.Status.SUCCEEDED,
            input={"conditions": step["conditions"]},
            output={"arm": arm, "conditions": explanation},
            started_at=started,
            finished_at=timezone.now(),
        )
        return arm

    def _settle_open(self, step, rows):
        """Deal with an attempt a dead worker left open; raise Hold if a person must decide."""
        last = rows[-1] if rows else None
        if last is None:
            return
        now = timezone.now()
        if last.status == RunStep.Status.STARTED:
            if get_action(step["kind"]).repeatable():
                RunStep.objects.filter(pk=last.pk).update(
                    status=RunStep.Status.INTERRUPTED, finished_at=now
                )
                return
            RunStep.objects.filter(pk=last.pk).update(
                status=RunStep.Status.UNKNOWN, finished_at=now
            )
            raise Hold(Run.HoldReason.OUTCOME_UNKNOWN, step["name"])
        if last.status == RunStep.Status.UNKNOWN and not last.decision:
            raise Hold(Run.HoldReason.OUTCOME_UNKNOWN, step["name"])

    def action(self, step, context):
        name = step["name"]
        done = self._done(name)
        if done is not None:
            return done
        rows = self.history.get(name, [])
        try:
            self._settle_open(step, rows)
        except UnknownAction as e:
            raise Stop(f"Step {name!r} failed: {e}") from e
        attempt = len(rows) + 1
        call = StepCall(
            idempotency_key=keys.step_key(self.run.workflow_id, self.run.pk, name),
            run_id=self.run.pk,
            workflow_id=self.run.workflow_id,
            first_attempt_at=rows[0].started_at if rows else None,
        )
        started, clock = timezone.now(), time.monotonic()
        row = RunStep(
            run=self.run,
            step_name=name,
            kind=step["kind"],
            attempt=attempt,
            idempotency_key=call.idempotency_key,
            started_at=started,
        )
        try:
            action, request = prepare(step, context, call)
        except Exception as e:  # nothing was sent
            error = _as_action_error(e, name, self.run.pk)
            return self._failed(row, error, attempt, clock, create=True)
        row.status, row.input = RunStep.Status.STARTED, request
        if action.moves_money:
            self._within_caps(row, action.money(request))
        else:
            # The evidence first, on disk: if this worker dies during send (or the
            # database server crashes), the row says so.
            with durable():
                row.save()
        try:
            output = action.send(request, call)
        except Exception as e:
            error = _as_action_error(e, name, self.run.pk)
            if error.unknown and not action.deduplicates:
                # It may have been delivered: sending again could post it twice. A person
                # decides ("send again" or "skip"), as after a worker died mid-send.
                self._close(row, RunStep.Status.UNKNOWN, clock, error=error.message)
                raise Hold(Run.HoldReason.OUTCOME_UNKNOWN, name) from e
            return self._failed(row, error, attempt, clock)
        self._close(row, RunStep.Status.SUCCEEDED, clock, output=output)
        return output

    def _within_caps(self, row, money):
        """Save the STARTED row of a money-moving step if the workflow's caps allow it;
        otherwise hold the run for an approver (nothing is written or sent)."""
        if isinstance(money, dict):
            row.amount = money.get("amount") if isinstance(money.get("amount"), int) else None
            if row.amount is not None:
                row.amount = abs(row.amount)
            row.currency = str(money.get("currency") or "")[:3].lower()
        with transaction.atomic(), durable():  # the evidence first, as in action()
            over = caps.check(
                self.run, row.step_name, money, self.run.version.definition.get("limits")
            )
            if not over:
                row.save()
        if over:
            caps.request_approval(self.run, row.step_name, money, over)
            raise Hold(Run.HoldReason.APPROVAL, row.step_name)

    def _close(self, row, status, clock, output=None, error=""):
        # After a send: recorded even if the database dropped the connection meanwhile.
        finished, duration = timezone.now(), int((time.monotonic() - clock) * 1000)
        write_after_send(
            lambda: RunStep.objects.filter(pk=row.pk).update(
                status=status,
                output=output,
                error=error,
                finished_at=finished,
                duration_ms=duration,
            )
        )

    def _failed(self, row, error, attempt, clock, create=False):
        retry = not error.permanent and attempt < MAX_STEP_ATTEMPTS
        status = RunStep.Status.RETRYING if retry else RunStep.Status.FAILED
        if create:
            row.status, row.error = status, error.message
            row.finished_at = timezone.now()
            row.save()
        else:
            self._close(row, status, clock, error=error.message)
        name = row.step_name
        if retry:
            delay = retry_delay(attempt, error.retry_after)
            raise Stop(f"Step {name!r} failed (attempt {attempt}): {error.message}", delay)
        raise Stop(f"Step {name!r} failed: {error.message}")


class DrySender:
    """Send nothing; report what each step would send. Read-only steps fetch if `fetch_reads`."""

    fetch_reads = True

    def __init__(self):
        self.report = None

    def start(self, trigger_data, definition, matched, explanation):
        self.report = {
            "event": {
                "id": trigger_data.get("id"),
                "type": trigger_data.get("type"),
                "created": trigger_data.get("created"),
            },
            "matched": matched,
            "conditions": readable(explanation),
            "steps": [],
        }

    def branch(self, step, context):
        arm, detail = decide_branch(step, context)
        self.report["steps"].append(
            {"name": step["name"], "kind": "branch", "arm": arm, "conditions": readable(detail)}
        )
        return arm

    def action(self, step, context):
        entry = {
            "name": step["name"],
            "kind": step["kind"],
            "label": "",
            "request": None,
            "output": None,
            "sent": False,
            "moves_money": False,
            "error": "",
        }
        self.report["steps"].append(entry)
        call = StepCall(
            idempotency_key=keys.preview_key(step["name"]), offline=not self.fetch_reads
        )
        try:
            action, entry["request"] = prepare(step, context, call)
            entry["label"] = str(action.label)
            entry["moves_money"] = action.moves_money
            if action.reads_only and self.fetch_reads:
                entry["output"], entry["sent"] = action.send(entry["request"], call), True
            else:
                entry["output"] = action.dry_output(entry["request"])
        except (RenderError, ActionError, UnknownAction) as e:
            entry["error"] = str(e)
            raise Stop(str(e)) from e
        return entry["output"]


class PreviewSender(DrySender):
    """The editor's preview: nothing is written or sent, but reads really fetch."""

    fetch_reads = True


class RecordingSender(DrySender):
    """Dry-runs and backtests: no request of any step is sent; each is recorded."""

    fetch_reads = False
