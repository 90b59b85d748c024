"""Failure alerts: what Kanri told a workflow's owner about its failed runs, and when."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from automations.models.runs import Run
from automations.models.workflows import Workflow


class FailureAlert(models.Model):
    """One alert sent (or tried) about one or more failed runs of a workflow.

    The row is written SENDING, with its runs, before the message goes out (as RunStep
    rows are): a run is in at most one alert (AlertedRun), so an alert whose outcome is
    unknown is never sent again by itself.
    """

    class Status(models.TextChoices):
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Not sent")
        UNKNOWN = "unknown", _("Outcome unknown")
        NO_RECIPIENT = "no_recipient", _("Nobody to tell")

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="alerts")
    digest = models.BooleanField(default=False)
    channel = models.CharField(max_length=10)
    recipient = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=12, choices=Status, default=Status.SENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workflow", "-created_at"])]

    def __str__(self):
        return f"Alert {self.pk} for {self.workflow_id}"


class AlertedRun(models.Model):
    """A failed run and the one alert that told of it."""

    alert = models.ForeignKey(FailureAlert, on_delete=models.CASCADE, related_name="runs")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="alerted")

    def __str__(self):
        return f"Run {self.run_id} in alert {self.alert_id}"
