"""The audit log: one Run per trigger and workflow, one RunStep per step attempt."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from automations.models.kinds import TriggerKind
from automations.models.workflows import Workflow, WorkflowVersion


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

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    trigger_kind = models.CharField(
        max_length=20, choices=TriggerKind, default=TriggerKind.STRIPE_EVENT
    )
    trigger_key = models.CharField(
        max_length=255,
        help_text="What started the run, unique per workflow: the Stripe event id, or the "
        "object and request of a manual run.",
    )
    event_type = models.CharField(max_length=100, blank=True)
    trigger_data = models.JSONField(help_text="The trigger's data as received: the run's snapshot.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person who started the run, for manual runs.",
    )
    batch = models.ForeignKey(
        "Batch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The bulk request (run on selected, a CSV of ids) that started it.",
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    hold_reason = models.CharField(max_length=30, choices=HoldReason, blank=True)
    attempt = models.PositiveIntegerField(default=0, help_text="Times a worker took the run.")
    interruptions = models.PositiveIntegerField(
        default=0, help_text="Times the worker running it stopped mid-run (it died)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("retry_run", "Can retry and cancel runs")]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "trigger_key"], name="one_run_per_trigger")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["workflow", "-created_at"]),
        ]

    def __str__(self):
        return f"Run {self.pk} of {self.workflow_id} for {self.trigger_key}"


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

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    step_name = models.CharField(max_length=50)
    kind = models.CharField(max_length=60)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status)
    input = models.JSONField(null=True, blank=True, help_text="The rendered request.")
    output = models.JSONField(null=True, blank=True, help_text="An excerpt of the answer.")
    error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    # What a money-moving step moves (minor units), counted against the workflow's caps.
    amount = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    decision = models.CharField(max_length=12, choices=Decision, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "started_at", "pk"]
        indexes = [
            models.Index(fields=["run", "step_name"]),
            models.Index(fields=["currency", "started_at"]),
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
        verbose_name_plural = "batches"

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
        permissions = [("approve_run", "Can approve runs held above a money cap")]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_name"], name="one_approval_per_step")
        ]

    def __str__(self):
        return f"Approval of {self.step_name} in run {self.run_id}"
