"""Workflows as staff edit them, and the immutable versions runs execute."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from automations.engine.conditions import OPERATORS, describe
from automations.models.kinds import TriggerKind


class Workflow(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="workflows",
        verbose_name=_("owner"),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.DRAFT)
    trigger_kind = models.CharField(
        _("trigger kind"), max_length=20, choices=TriggerKind, default=TriggerKind.STRIPE_EVENT
    )
    event_type = models.CharField(
        _("event type"),
        max_length=100,
        blank=True,
        help_text=_("The Stripe event that starts a run."),
    )
    object_type = models.CharField(
        _("object type"),
        max_length=40,
        blank=True,
        help_text=_("The Stripe objects staff may run a manual workflow on (e.g. charge)."),
    )
    # The trigger's other settings (a schedule's cron, time zone, saved filter, mode): the
    # keys a trigger kind lists in OPTIONS, kept as the definition has them.
    trigger_options = models.JSONField(default=dict, blank=True)
    limits = models.JSONField(
        _("limits"),
        default=dict,
        blank=True,
        help_text=_(
            "Money caps per currency, in minor units: "
            '{"per_run": {"usd": 50000}, "per_day": {"usd": 200000}}.'
        ),
    )
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("edited by"),
        help_text=_("Who last saved the draft; they may not approve its held runs."),
    )
    active_version = models.ForeignKey(
        "WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("active version"),
        help_text=_("The version new runs use while the workflow is active."),
    )
    # Where its failures are told (automations/alerts.py): the owner by email, or a Slack
    # channel, with a link to each failed run.
    failure_alerts = models.CharField(
        _("failure alerts"),
        max_length=10,
        choices=[("email", _("Email the owner")), ("slack", _("Post to Slack")), ("off", _("Off"))],
        default="email",
    )
    alert_channel = models.CharField(
        _("alert Slack channel"),
        max_length=80,
        blank=True,
        help_text=_("For alerts to Slack: the channel (#ops or C…)."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")
        indexes = [models.Index(fields=["status", "event_type"])]
        permissions = [
            ("activate_workflow", _("Can activate and pause workflows")),
            ("approve_money_workflow", _("Can activate workflows that move money")),
            ("run_workflow", _("Can run manual workflows on selected objects")),
        ]

    def __str__(self):
        return self.name


class WorkflowVersion(models.Model):
    """A snapshot of a workflow's trigger, conditions and steps; never changed once made.

    `definition` is the plain dict the engine runs (see automations/definitions.py).
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "-number"]
        verbose_name = _("workflow version")
        verbose_name_plural = _("workflow versions")
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="one_version_number")
        ]

    def __str__(self):
        return f"{self.workflow} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Workflow versions are immutable; create a new one.")
        super().save(*args, **kwargs)


class Step(models.Model):
    """One step of a workflow being edited: an action, or a branch with two arms.

    Steps inside a branch point at it with `parent` and say which arm they are in.
    """

    BRANCH = "branch"

    class Arm(models.TextChoices):
        THEN = "then", _("If")
        ELSE = "else", _("All other cases")

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="children",
        limit_choices_to={"kind": BRANCH},
    )
    arm = models.CharField(max_length=4, choices=Arm, blank=True)
    position = models.PositiveIntegerField(default=0)
    name = models.SlugField(
        _("name"),
        max_length=50,
        help_text=_(
            "Lower-case letters, digits and _; later steps refer to its output as "
            "{{steps.NAME.FIELD}}."
        ),
    )
    kind = models.CharField(max_length=60)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["workflow", "position", "pk"]
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        constraints = [models.UniqueConstraint(fields=["workflow", "name"], name="one_step_name")]

    def __str__(self):
        return self.name


class Condition(models.Model):
    """A test on the run's data. Trigger conditions have no `step`; a branch's point at it.

    Conditions with the same `group` must all hold; any one group holding is enough.
    Money conditions carry a currency and a value in minor units.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="conditions")
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.CASCADE, related_name="conditions"
    )
    group = models.PositiveSmallIntegerField(default=1)
    position = models.PositiveIntegerField(default=0)
    field = models.CharField(
        _("field"), max_length=200, help_text=_("e.g. trigger.data.object.amount")
    )
    operator = models.CharField(max_length=10, choices=list(OPERATORS.items()))
    value = models.JSONField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)

    class Meta:
        # Trigger conditions (no step) first, on every database.
        ordering = ["workflow", models.F("step").asc(nulls_first=True), "group", "position", "pk"]
        verbose_name = _("condition")
        verbose_name_plural = _("conditions")

    def __str__(self):
        condition = {"op": self.operator, "value": self.value, "currency": self.currency}
        return f"{self.field} {describe(condition)}"
