"""The audit log: one Run per trigger and workflow, one RunStep per step attempt."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from automations.models.kinds import TriggerKind
from automations.models.workflows import Workflow, WorkflowVersion


class TriggerEvent(models.Model):
    """What started runs, stored once: a Stripe event matching three workflows is one row.

    `key` is the Stripe event id for Stripe events and replays (Stripe never changes an
    event), else the trigger key with a digest of the data (a schedule tick's digest differs
    per workflow), so two rows never share a key with different data.
    """

    key = models.CharField(_("key"), max_length=300, unique=True)
    data = models.JSONField(_("data"), help_text=_("The trigger's data as received."))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("trigger event")
        verbose_name_plural = _("trigger events")

    def __str__(self):
        return self.key


class Run(models.Model):
    """One execution of a workflow version for one trigger."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        RETRYING = "retrying", _("Waiting to retry")
        HELD = "held", _("Waiting for a person")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class HoldReason(models.TextChoices):
        OUTCOME_UNKNOWN = "outcome_unknown", _("A step's outcome is unknown")
        APPROVAL = "approval", _("Waiting for approval: above a money cap")

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    WAITING = (Status.QUEUED, Status.RETRYING, Status.HELD)

    workflow = models.ForeignKey(
        Workflow, on_delete=models.CASCADE, related_name="runs", verbose_name=_("workflow")
    )
    version = models.ForeignKey(
        WorkflowVersion, on_delete=models.PROTECT, related_name="runs", verbose_name=_("version")
    )
    trigger_kind = models.CharField(
        _("trigger kind"), max_length=20, choices=TriggerKind, default=TriggerKind.STRIPE_EVENT
    )
    trigger_key = models.CharField(
        _("trigger key"),
        max_length=255,
        help_text=_(
            "What started the run, unique per workflow: the Stripe event id, or the "
            "object and request of a manual run."
        ),
    )
    event_type = models.CharField(_("event type"), max_length=100, blank=True)
    # The run's snapshot is `event` (shared by every run of one trigger); runs from before
    # migration 0011 keep theirs inline here. Read either through `snapshot`.
    event = models.ForeignKey(
        TriggerEvent,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        verbose_name=_("event"),
    )
    # Out of line on PostgreSQL (migration 0010: toast_tuple_target), so the run's status
    # updates do not copy the event into each new row version.
    trigger_data = models.JSONField(
        _("trigger data"),
        null=True,
        blank=True,
        help_text=_("The trigger's data as received, for runs from before trigger events."),
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("started by"),
        help_text=_("The person who started the run, for manual runs."),
    )
    batch = models.ForeignKey(
        "Batch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        verbose_name=_("batch"),
        help_text=_("The bulk request (run on selected, a CSV of ids) that started it."),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.QUEUED)
    hold_reason = models.CharField(_("hold reason"), max_length=30, choices=HoldReason, blank=True)
    attempt = models.PositiveIntegerField(
        _("attempt"), default=0, help_text=_("Times a worker took the run.")
    )
    interruptions = models.PositiveIntegerField(
        _("interruptions"),
        default=0,
        help_text=_("Times the worker running it stopped mid-run (it died)."),
    )
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        permissions = [("retry_run", _("Can retry and cancel runs"))]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "trigger_key"], name="one_run_per_trigger")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["workflow", "-created_at"]),
            # The run list at a million rows: its ordering, and each filter with that
            # ordering, so a page is an index range, never a sort of the whole table.
            models.Index(fields=["-created_at", "-id"], name="run_list_order"),
            models.Index(fields=["status", "-created_at", "-id"], name="run_list_status"),
            models.Index(fields=["event_type", "-created_at", "-id"], name="run_list_event"),
            # Rare values: partial, so the common run (a Stripe event, not held) skips them.
            models.Index(
                fields=["hold_reason", "-created_at", "-id"],
                name="run_list_held",
                condition=~models.Q(hold_reason=""),
            ),
            models.Index(
                fields=["trigger_kind", "-created_at", "-id"],
                name="run_list_kind",
                condition=~models.Q(trigger_kind="stripe_event"),
            ),
            # The inventory's counts per workflow over 30 days: an index-only range per status.
            models.Index(fields=["workflow", "status", "created_at"], name="run_inventory"),
        ]

    # What the run list shows; the trigger's data (the whole event) stays out of list pages.
    LIST_FIELDS = (
        "id",
        "workflow_id",
        "trigger_kind",
        "event_type",
        "trigger_key",
        "status",
        "hold_reason",
        "attempt",
        "created_at",
        "started_at",
        "finished_at",
    )

    def __str__(self):
        return f"Run {self.pk} of {self.workflow_id} for {self.trigger_key}"

    @property
    def snapshot(self):
        """The trigger's data the run works on: its event's, or its own inline (older runs)."""
        if self.event_id is not None:
            return self.event.data
        return self.trigger_data if self.trigger_data is not None else {}


class RunStep(models.Model):
    """One attempt at one step of a run: what was sent, what came back, how long it took.

    The row is written STARTED before the request is sent and closed after it, so a
    worker that dies mid-send leaves evidence that the send may have happened.
    """

    class Status(models.TextChoices):
        STARTED = "started", _("Started")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        RETRYING = "retrying", _("Failed, will retry")
        # The worker stopped mid-send; the provider deduplicates, so it is simply tried again.
        INTERRUPTED = "interrupted", _("Interrupted, tried again")
        # The worker stopped mid-send and the provider cannot deduplicate (Slack, email).
        UNKNOWN = "unknown", _("Outcome unknown")

    class Decision(models.TextChoices):
        SEND_AGAIN = "send_again", _("Send again")
        SKIP = "skip", _("Skip")

    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="steps", verbose_name=_("run")
    )
    step_name = models.CharField(_("step name"), max_length=50)
    kind = models.CharField(_("kind"), max_length=60)
    attempt = models.PositiveIntegerField(_("attempt"), default=1)
    status = models.CharField(_("status"), max_length=12, choices=Status)
    input = models.JSONField(
        _("input"), null=True, blank=True, help_text=_("The rendered request.")
    )
    output = models.JSONField(
        _("output"), null=True, blank=True, help_text=_("An excerpt of the answer.")
    )
    error = models.TextField(_("error"), blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    # What a money-moving step moves (minor units), counted against the workflow's caps.
    amount = models.BigIntegerField(_("amount"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    decision = models.CharField(_("decision"), max_length=12, choices=Decision, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        ordering = ["run", "started_at", "pk"]
        verbose_name = _("run step")
        verbose_name_plural = _("run steps")
        indexes = [
            models.Index(fields=["run", "step_name"]),
            models.Index(fields=["currency", "started_at"]),
            # The dashboard's money moved per day: only money-moving steps carry an amount.
            models.Index(
                fields=["started_at"],
                condition=models.Q(amount__isnull=False),
                name="runstep_money_moved",
            ),
        ]

    def __str__(self):
        return f"{self.step_name} #{self.attempt}: {self.status}"


class Batch(models.Model):
    """One bulk request: a workflow run on many selected objects (the admin, a CSV of ids).

    `items` keeps, per object asked for, what happened when it was submitted: the run it
    started, or why none started (a code and its parameters). Its report joins the runs.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="batches")
    token = models.CharField(max_length=64, unique=True)
    object_type = models.CharField(max_length=40)
    items = models.JSONField(default=list)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("batch")
        verbose_name_plural = _("batches")

    def __str__(self):
        return f"Batch {self.pk} of {self.workflow_id}"


class Approval(models.Model):
    """A run held above a money cap, and the approver's decision on it (the audit)."""

    class Decision(models.TextChoices):
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="approvals")
    step_name = models.CharField(max_length=50)
    # What the step would move and which caps it passes: codes and amounts, not sentences.
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    exceeded = models.JSONField(
        default=list, help_text='[{"cap": "per_day", "limit": 200000, "total": 250000}]'
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decision = models.CharField(max_length=10, choices=Decision, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = _("approval")
        verbose_name_plural = _("approvals")
        permissions = [("approve_run", _("Can approve runs held above a money cap"))]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_name"], name="one_approval_per_step")
        ]

    def __str__(self):
        return f"Approval of {self.step_name} in run {self.run_id}"
