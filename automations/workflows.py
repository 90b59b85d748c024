"""The workflow service: every screen (admin, commands, API) calls this, never the other.

It holds the business rules: validation on every entry (the one validator), the money
policy on activation and manual runs, versions, previews and dry-runs through the one
engine, retries, cancels and decisions on held runs, manual runs, and the inventory.
Functions take and return plain values and rows; they never render words, except the
change messages kept in Django's LogEntry.

A `user` of None means a trusted caller (a management command, a migration): no
permission is checked and nothing is logged.
"""

from datetime import timedelta

from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from automations import audit, definition, triggers
from automations.engine import keys, runner
from automations.engine.conditions import matches
from automations.engine.context import build_context
from automations.engine.senders import PreviewSender, RecordingSender
from automations.models import Approval, Batch, Run, RunStep, TriggerKind, Workflow, WorkflowVersion
from automations.problems import InvalidDefinition
from automations.tasks import queue_run
from automations.triggers import manual

__all__ = ["InvalidDefinition", "NotAllowed"]


class NotAllowed(PermissionDenied):
    """The user may not do this; `reason` is a code, `message` the words for it."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


REASONS = {
    "activate_permission": _("You may not activate or pause workflows."),
    "money_approver": _(
        "This workflow moves money (it refunds or credits): an approver must activate it."
    ),
    "run_permission": _("You may not run workflows on selected objects."),
    "money_run_approver": _(
        "This workflow moves money (it refunds or credits): only an approver may run it."
    ),
    "not_manual": _("Only an active workflow run on selected objects can be started here."),
    "retry_permission": _("You may not decide held runs."),
    "delete_permission": _("You may not delete workflows."),
    "delete_activated": _("This workflow has been activated; pause it instead of deleting it."),
    "delete_money_approver": _("This workflow moves money: an approver must delete it."),
    "pause_money_approver": _("This workflow moves money: an approver must pause it."),
    "approve_permission": _("Only an approver may approve or reject runs above a money cap."),
    "approve_own_run": _("You started this run: another approver must decide it."),
    "approve_own_edit": _("You last edited this workflow: another approver must decide its runs."),
    "approve_not_waiting": _("This run is not waiting for approval."),
}


def _deny(reason):
    raise NotAllowed(reason, str(REASONS[reason]))


_log = audit.log


# ------------------------------------------------------------------ drafts


def draft(workflow):
    """Return the definition of a workflow's draft (its editable rows)."""
    return definition.snapshot(workflow)


@transaction.atomic
def create(data, owner=None, user=None):
    """Create a draft workflow from a definition dict; raise InvalidDefinition."""
    cleaned = definition.clean(data)
    workflow = Workflow(owner=owner, edited_by=user)
    definition.write_rows(workflow, cleaned)
    _log(user, workflow, "Created.")
    return workflow


@transaction.atomic
def save_draft(workflow, data, user=None):
    """Replace a workflow's draft with a definition dict; raise InvalidDefinition."""
    cleaned = definition.clean(data)
    if user is not None:
        workflow.edited_by = user  # they may not approve this workflow's held runs
    definition.write_rows(workflow, cleaned)
    return workflow


def can_activate(user, data):
    """Return (allowed, reason code) for activating a workflow with this definition."""
    if user is None:
        return True, ""
    if not user.has_perm("automations.activate_workflow"):
        return False, "activate_permission"
    if definition.moves_money(data) and not user.has_perm("automations.approve_money_workflow"):
        return False, "money_approver"
    return True, ""


def _moves_money(workflow):
    """Return whether a workflow moves money: what runs (its active version), or for one
    never activated, its draft. Pausing or deleting it is then an approver's decision, as
    activating it is, in the admin and the API alike."""
    if workflow.active_version_id:
        return definition.moves_money(workflow.active_version.definition)
    return definition.moves_money(draft(workflow))


def can_pause(user, workflow):
    """Return (allowed, reason code) for pausing a workflow."""
    if user is None:
        return True, ""
    if not user.has_perm("automations.activate_workflow"):
        return False, "activate_permission"
    if _moves_money(workflow) and not user.has_perm("automations.approve_money_workflow"):
        return False, "pause_money_approver"
    return True, ""


def can_delete(user, workflow):
    """Return (allowed, reason code) for deleting a workflow: only a draft never activated."""
    if user is not None and not user.has_perm("automations.delete_workflow"):
        return False, "delete_permission"
    if workflow.versions.exists() or workflow.runs.exists():
        return False, "delete_activated"
    approver = user is None or user.has_perm("automations.approve_money_workflow")
    if not approver and _moves_money(workflow):
        return False, "delete_money_approver"
    return True, ""


def reason_text(reason):
    return str(REASONS[reason]) if reason else ""


def status(workflow, user=None):
    """Return the state of a workflow's draft against its active version, as a plain dict."""
    current = draft(workflow)
    active = workflow.active_version.definition if workflow.active_version_id else None
    cleaned, problems = definition.check(current)
    allowed, reason = can_activate(user, current)
    return {
        "status": workflow.status,
        "can_pause": can_pause(user, workflow)[0],
        "status_label": str(workflow.get_status_display()),
        "active_version": workflow.active_version.number if active else None,
        "unactivated_changes": active is not None and active != cleaned,
        "problems": problems,
        "moves_money": definition.moves_money(current),
        "can_activate": allowed,
        "activate_reason": reason,
        "providers": definition.providers(current),
    }


# ------------------------------------------------------------------ versions


@transaction.atomic
def activate(workflow, user=None):
    """Snapshot the draft into a new version (unless unchanged) and make it active.

    Raises NotAllowed (the money policy) or InvalidDefinition.
    """
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    current = draft(workflow)
    allowed, reason = can_activate(user, current)
    if not allowed:
        _deny(reason)
    cleaned = definition.clean(current)
    latest = workflow.versions.order_by("-number").first()
    if latest is None or latest.definition != cleaned:
        latest = WorkflowVersion.objects.create(
            workflow=workflow,
            number=(latest.number + 1) if latest else 1,
            definition=cleaned,
            created_by=user,
        )
    workflow.active_version = latest
    workflow.status = Workflow.Status.ACTIVE
    workflow.save(update_fields=["active_version", "status", "updated_at"])
    _log(user, workflow, f"Activated version {latest.number}.")
    return latest


def delete(workflow, user=None, *, log=True):
    """Delete a draft that was never activated; raise NotAllowed otherwise.

    Versions are the record of what ran (runs point at them): a workflow that was ever
    activated stays, paused, so its history and audit keep their meaning. Deleting one
    that moves money is an approver's decision, as activating it is. `log=False` is for
    the admin, whose delete page writes its own LogEntry.
    """
    allowed, reason = can_delete(user, workflow)
    if not allowed:
        _deny(reason)
    if log:
        _log(user, workflow, "Deleted.", DELETION)
    workflow.delete()


def pause(workflow, user=None):
    """Stop new runs of a workflow; runs already started finish. Raise NotAllowed if the
    user may not (a workflow that moves money: an approver)."""
    allowed, reason = can_pause(user, workflow)
    if not allowed:
        _deny(reason)
    if workflow.status != Workflow.Status.ACTIVE:
        return False
    workflow.status = Workflow.Status.PAUSED
    workflow.save(update_fields=["status", "updated_at"])
    _log(user, workflow, "Paused.")
    return True


@transaction.atomic
def restore(workflow, number, user=None):
    """Make a version's definition the draft again; raise InvalidDefinition if it no
    longer passes (a field or action Kanri has since dropped)."""
    version = workflow.versions.get(number=number)
    save_draft(workflow, {**version.definition, "name": workflow.name}, user)
    _log(user, workflow, f"Draft restored from version {number}.")
    return version


def diff(old, new):
    return definition.diff(old, new)


def history(workflow, shown=None):
    """Return each version, newest first, with what changed, and the draft's changes.

    `shown` turns a definition into what the diff compares (the admin shows amounts as
    money); by default definitions are compared as stored."""
    shown = shown or (lambda data: data)
    versions = list(workflow.versions.order_by("number").select_related("created_by"))
    rows, previous = [], None
    for version in versions:
        rows.append(
            {
                "number": version.number,
                "created_at": version.created_at,
                "created_by": version.created_by.get_username() if version.created_by else "",
                "active": version.pk == workflow.active_version_id,
                "diff": diff(shown(previous), shown(version.definition)),
            }
        )
        previous = version.definition
    log = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Workflow), object_id=str(workflow.pk)
        )
        .select_related("user")
        .order_by("-action_time")[:50]
    )
    return {
        "versions": list(reversed(rows)),
        "unactivated": diff(shown(previous), shown(draft(workflow))) if versions else [],
        "log": [
            {
                "when": e.action_time,
                "who": e.user.get_username(),
                "what": e.get_change_message() or str(e.get_action_flag_display()),
            }
            for e in log
        ],
    }


# ------------------------------------------------------------------ previews and dry-runs


def _kind(trigger):
    return triggers.kind(trigger.get("kind"))


def sample_subjects(workflow, limit=20):
    """Return [(id, created)] of stored events or objects a draft can be previewed on."""
    trigger = definition.trigger_of(workflow)
    return _kind(trigger).samples(trigger, limit)


def subject_data(workflow, subject_id):
    """Return the trigger data for previewing on a stored event or object, or None."""
    trigger = definition.trigger_of(workflow)
    return _kind(trigger).sample(trigger, subject_id)


def _rehearse(cleaned, trigger_data, sender, workflow_id):
    report = runner.rehearse(cleaned, trigger_data, sender, {"id": workflow_id})
    report["trigger_matches"] = _kind(cleaned["trigger"]).starts_on(
        cleaned["trigger"], trigger_data
    )
    return report


def preview(data, trigger_data, workflow_id=None):
    """Return what a definition would do on a trigger's data: nothing sent, reads fetch."""
    return _rehearse(definition.clean(data), trigger_data, PreviewSender(), workflow_id)


def dry_run(data, trigger_data, workflow_id=None):
    """Return every request a definition would send on a trigger's data; nothing is sent."""
    return _rehearse(definition.clean(data), trigger_data, RecordingSender(), workflow_id)


# ------------------------------------------------------------------ runs


def retry(run_ids, user=None):
    """Queue failed runs again (a person's decision); return how many.

    Steps that succeeded stay done; the failed step gets one more attempt with the same
    idempotency key, so a Stripe write that did happen is not repeated.
    """
    now = timezone.now()
    count = 0
    for run in Run.objects.filter(pk__in=run_ids, status=Run.Status.FAILED):
        if Run.objects.filter(pk=run.pk, status=Run.Status.FAILED).update(
            status=Run.Status.QUEUED,
            error="",
            finished_at=None,
            next_attempt_at=now,
            interruptions=0,
        ):
            queue_run(run.pk)
            _log(user, run, "Retried.")
            count += 1
    return count


def cancel(run_ids, user=None):
    """Cancel runs that are waiting (queued, waiting to retry, or held); return how many."""
    count = 0
    for run in Run.objects.filter(pk__in=run_ids, status__in=Run.WAITING):
        if Run.objects.filter(pk=run.pk, status__in=Run.WAITING).update(
            status=Run.Status.CANCELLED,
            finished_at=timezone.now(),
            next_attempt_at=None,
            hold_reason="",
        ):
            _log(user, run, "Cancelled.")
            count += 1
    return count


def decide(run, step_name, decision, user=None):
    """Settle a step whose outcome is unknown: send it again, or skip it; queue the run.

    Returns whether the decision was taken (False if the run no longer waits on it).
    """
    if decision not in RunStep.Decision.values:
        raise ValueError(f"Unknown decision {decision!r}.")
    if user is not None and not user.has_perm("automations.retry_run"):
        _deny("retry_permission")
    with transaction.atomic():
        locked = Run.objects.select_for_update().filter(pk=run.pk, status=Run.Status.HELD).first()
        row = (
            RunStep.objects.filter(
                run=run, step_name=step_name, status=RunStep.Status.UNKNOWN, decision=""
            )
            .order_by("-pk")
            .first()
        )
        if locked is None or row is None:
            return False
        row.decision, row.decided_by, row.decided_at = decision, user, timezone.now()
        row.save(update_fields=["decision", "decided_by", "decided_at"])
        Run.objects.filter(pk=run.pk).update(
            status=Run.Status.QUEUED,
            hold_reason="",
            error="",
            next_attempt_at=timezone.now(),
        )
        queue_run(run.pk)
    label = RunStep.Decision(decision).label
    _log(user, run, f"Step {step_name}: {label}.")
    return True


def can_approve(user, run):
    """Return (allowed, reason code) for approving or rejecting a run held above a cap."""
    if run.status != Run.Status.HELD or run.hold_reason != Run.HoldReason.APPROVAL:
        return False, "approve_not_waiting"
    if user is None:
        return True, ""
    if not user.has_perm("automations.approve_run"):
        return False, "approve_permission"
    if run.started_by_id == user.pk:
        return False, "approve_own_run"
    if run.workflow.edited_by_id == user.pk:
        return False, "approve_own_edit"
    return True, ""


def pending_approval(run):
    """Return what a held run waits for: the step, its amount and the caps it passes."""
    approval = run.approvals.filter(decision="").order_by("-pk").first()
    if approval is None:
        return None
    return {
        "step": approval.step_name,
        "amount": approval.amount,
        "currency": approval.currency,
        "exceeded": approval.exceeded,
        "requested_at": approval.requested_at,
    }


def approve(run, user=None):
    """Let a run held above a money cap go on: its waiting step is sent as it stands."""
    return _settle_approval(run, user, Approval.Decision.APPROVED)


def reject(run, user=None):
    """Refuse a run held above a money cap: it is cancelled and nothing is sent."""
    return _settle_approval(run, user, Approval.Decision.REJECTED)


def _settle_approval(run, user, decision):
    with transaction.atomic():
        run = Run.objects.select_for_update().select_related("workflow").get(pk=run.pk)
        allowed, reason = can_approve(user, run)
        if not allowed:
            _deny(reason)
        approval = run.approvals.filter(decision="").order_by("-pk").first()
        if approval is None:
            _deny("approve_not_waiting")
        approval.decision, approval.decided_by = decision, user
        approval.decided_at = timezone.now()
        approval.save(update_fields=["decision", "decided_by", "decided_at"])
        if decision == Approval.Decision.APPROVED:
            Run.objects.filter(pk=run.pk).update(
                status=Run.Status.QUEUED, hold_reason="", error="", next_attempt_at=timezone.now()
            )
            queue_run(run.pk)
        else:
            Run.objects.filter(pk=run.pk).update(
                status=Run.Status.CANCELLED,
                finished_at=timezone.now(),
                next_attempt_at=None,
            )
    amount = f"{approval.amount} {approval.currency}"
    _log(user, run, f"{decision.capitalize()} step {approval.step_name} ({amount} minor units).")
    return True


def manual_workflows(object_name):
    """Return the active workflows staff may run on this kind of Stripe object."""
    return manual.workflows_for(object_name)


def can_run(user, workflow):
    """Return (allowed, reason code) for running a manual workflow on selected objects."""
    if workflow.trigger_kind != TriggerKind.MANUAL or workflow.status != Workflow.Status.ACTIVE:
        return False, "not_manual"
    if user is None:
        return True, ""
    if not user.has_perm("automations.run_workflow"):
        return False, "run_permission"
    moves = definition.moves_money(workflow.active_version.definition)
    if moves and not user.has_perm("automations.approve_money_workflow"):
        return False, "money_run_approver"
    return True, ""


def rehearse_on(workflow, objects, limit=3):
    """Return the dry-run of the active version on the first `limit` objects."""
    version = workflow.active_version
    return [
        {
            "object_id": obj["id"],
            **_rehearse(
                version.definition,
                manual.data_for(obj, workflow.object_type),
                RecordingSender(),
                workflow.pk,
            ),
        }
        for obj in objects[:limit]
    ]


def run_on(workflow, object_ids, user=None, token=None):
    """Start one run of a manual workflow per object, as one Batch; return
    {started, not_started, missing, token, batch}.

    `token` names the confirmed request: the same token again starts nothing new and
    returns the same batch, so a resubmitted confirmation page is harmless. A workflow
    that moves money runs at most once per object, whatever the request. Each object's
    outcome is kept in the batch: its run, or why none started (a code and parameters).
    Raises NotAllowed.
    """
    workflow = Workflow.objects.select_related("active_version").get(pk=workflow.pk)
    allowed, reason = can_run(user, workflow)
    if not allowed:
        _deny(reason)
    token = token or keys.new_request_token()
    once = definition.moves_money(workflow.active_version.definition)
    conditions = workflow.active_version.definition.get("conditions") or []
    with transaction.atomic():
        # A request token names one confirmation of one workflow: the same token sent
        # for another workflow is another request.
        batch, created = Batch.objects.get_or_create(
            token=f"{workflow.pk}:{token}"[:64],
            defaults={
                "workflow": workflow,
                "object_type": workflow.object_type,
                "started_by": user,
            },
        )
        if not created:  # the same confirmation again: nothing new starts
            result = _batch_result(batch, token)
            return {
                **result,
                "started": [],
                "not_started": result["not_started"] + len(result["started"]),
            }
        objects = {obj["id"]: obj for obj in manual.load(workflow.object_type, object_ids)}
        items = []
        for object_id in dict.fromkeys(str(i) for i in object_ids):
            obj = objects.get(object_id)
            if obj is None:
                items.append({"id": object_id, "reason": "missing"})
                continue
            trigger = manual.trigger_for(
                workflow.pk,
                obj,
                workflow.object_type,
                token,
                user.pk if user else None,
                once=once,
                batch_id=batch.pk,
            )
            earlier = Run.objects.filter(workflow=workflow, trigger_key=trigger.key).first()
            if earlier is not None:
                items.append(
                    {"id": object_id, "reason": "already_run", "params": {"run": earlier.pk}}
                )
                continue
            started = triggers.start_runs(trigger)
            if started:
                items.append({"id": object_id, "run": started[0]})
                continue
            _, explanation = matches(conditions, build_context(trigger.data))
            failed = [
                # The test's code and values, not its words: they are read in the reader's
                # language (conditions.describe) when the report is shown.
                {key: c.get(key) for key in ("field", "op", "value", "currency", "actual")}
                for c in explanation
                if not c["matched"]
            ]
            items.append({"id": object_id, "reason": "conditions", "params": {"failed": failed}})
        batch.items = items
        batch.save(update_fields=["items"])
    started = [i["run"] for i in items if "run" in i]
    if started:
        _log(user, workflow, f"Started {len(started)} run(s) on selected {workflow.object_type}s.")
    return _batch_result(batch, token)


def _batch_result(batch, token):
    items = batch.items
    return {
        "started": [i["run"] for i in items if "run" in i],
        "not_started": sum(1 for i in items if "run" not in i and i["reason"] != "missing"),
        "missing": [i["id"] for i in items if i.get("reason") == "missing"],
        "token": token,
        "batch": batch.pk,
    }


def batch_report(batch):
    """Return one plain row per object of a batch: its run's status and steps, or why none ran.

    Each row: {"id", "run", "status", "reason", "params", "error", "steps": {name: output}}.
    """
    runs = {
        run.pk: run
        for run in Run.objects.filter(batch=batch).prefetch_related("steps").order_by("pk")
    }
    rows = []
    for item in batch.items:
        run = runs.get(item.get("run"))
        if run is None:
            rows.append(
                {
                    "id": item["id"],
                    "run": item.get("run") or item.get("params", {}).get("run"),
                    "status": "skipped",
                    # A run this request did start may have been pruned since (prune_runs).
                    "reason": item.get("reason") or ("pruned" if "run" in item else ""),
                    "params": item.get("params", {}),
                    "error": "",
                    "steps": {},
                }
            )
            continue
        outputs = {}
        for step in run.steps.all():
            if step.status == RunStep.Status.SUCCEEDED:
                outputs[step.step_name] = step.output or {}
        rows.append(
            {
                "id": item["id"],
                "run": run.pk,
                "status": run.status,
                "reason": run.hold_reason,
                "params": {},
                "error": run.error,
                "steps": outputs,
            }
        )
    return rows


# ------------------------------------------------------------------ inventory


def inventory():
    """Return one plain row per workflow: trigger, actions, systems, money, owner, health.

    At a million runs it reads no run it does not need: per workflow, the last run from
    the (workflow, created_at) index and the 30-day counts from an index-only range of
    (workflow, status, created_at), instead of a join over every run."""
    since = timezone.now() - timedelta(days=30)
    runs = Run.objects.filter(workflow=OuterRef("pk")).order_by()
    latest = runs.order_by("-created_at", "-pk")
    finished = runs.filter(created_at__gte=since, status__in=Run.FINISHED)

    def count(queryset):
        counted = queryset.values("workflow").annotate(n=Count("*")).values("n")
        return Coalesce(Subquery(counted), 0)

    workflows = list(
        Workflow.objects.select_related("owner", "active_version")
        .annotate(
            last_run_at=Subquery(latest.values("created_at")[:1]),
            last_run_status=Subquery(latest.values("status")[:1]),
            finished_runs=count(finished),
            failed_runs=count(finished.filter(status=Run.Status.FAILED)),
        )
        .order_by("name")
    )
    drafts = definition.snapshots(workflows)
    rows = []
    for workflow in workflows:
        data = (
            workflow.active_version.definition
            if workflow.active_version_id
            else drafts[workflow.pk]
        )
        finished_count = workflow.finished_runs
        rows.append(
            {
                "id": workflow.pk,
                "name": workflow.name,
                "trigger": trigger_label(data["trigger"]),
                "event_type": workflow.event_type,
                "actions": definition.action_labels(data),
                "providers": definition.providers(data),
                "moves_money": definition.moves_money(data),
                "owner": workflow.owner.get_username() if workflow.owner_id else "",
                "status": str(workflow.get_status_display()),
                "status_key": workflow.status,
                "version": workflow.active_version.number if workflow.active_version_id else None,
                "last_run_at": workflow.last_run_at,
                "last_run_status": workflow.last_run_status or "",
                "runs_30d": finished_count,
                "failure_rate": (workflow.failed_runs / finished_count) if finished_count else None,
            }
        )
    return rows


def trigger_label(trigger):
    """Return what staff call a trigger: "Payment intent succeeded", "Run on selected: Charges"."""
    kind = _kind(trigger)
    return kind.title(trigger) if kind else str(trigger.get("kind"))


# ------------------------------------------------------------------ workflows as code


class AmbiguousName(ValueError):
    """An import matches workflows by name, and several carry this one."""

    def __init__(self, name, count):
        super().__init__(f"{count} workflows are named {name!r}.")
        self.name, self.count = name, count


def import_definition(data, owner=None, user=None, *, dry_run=False):
    """Create or update the draft of the workflow named like the definition; never
    activate it (an active workflow keeps running its active version).

    The workflow is matched by its exact name; AmbiguousName if several share it. The
    change is made through `create` / `save_draft` (the one validator: InvalidDefinition)
    and undone again when `dry_run` or when it changes nothing. Returns
    {"outcome": "created" | "updated" | "unchanged", "workflow": id or None, "diff": lines},
    where the diff is over the draft and its owner's username.
    """
    name = data.get("name") if isinstance(data, dict) else None
    found = list(Workflow.objects.filter(name=name)[:2]) if isinstance(name, str) else []
    if len(found) > 1:
        raise AmbiguousName(name, Workflow.objects.filter(name=name).count())
    workflow = found[0] if found else None

    def state(row):
        return {**draft(row), "owner": row.owner.get_username() if row.owner_id else None}

    with transaction.atomic():
        before = state(workflow) if workflow else None
        if workflow is None:
            workflow = create(data, owner=owner, user=user)
        else:
            workflow.owner = owner
            save_draft(workflow, data, user=user)
            _log(user, workflow, "Draft imported.")
        after = state(Workflow.objects.select_related("owner").get(pk=workflow.pk))
        outcome = "created" if before is None else "updated" if before != after else "unchanged"
        if dry_run or outcome == "unchanged":
            transaction.set_rollback(True)
    return {
        "outcome": outcome,
        "workflow": workflow.pk if outcome != "created" or not dry_run else None,
        "diff": diff(before, after) if outcome == "updated" else [],
    }


# ------------------------------------------------------------------ backtests and replays


def backtest(data, since=None, until=None, workflow_id=None, **filters):
    """Return what a definition would have done on the stored events of its type between
    `since` and `until`: matched events, per-arm counts, money per currency and every
    request, sent nowhere and written nowhere (automations.replays.backtest).

    The admin's Backtest page and `replay_events --dry-run` both call this. Raises
    InvalidDefinition, or CannotBacktest for a trigger that is not a Stripe event.
    """
    from automations import replays

    return replays.backtest(data, since, until, workflow_id, **filters)


def replay(since=None, until=None, types=None, ids=None, workflow_ids=None, tick=None):
    """Start runs from stored events through the live entry, skipping (workflow, event)
    pairs that already ran (automations.replays.replay)."""
    from automations import replays

    return replays.replay(since, until, types, ids, workflow_ids, tick)
