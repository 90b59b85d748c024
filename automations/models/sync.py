"""Bookkeeping of the terminal's bulk work: backfill cursors and reconciliation reports."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SyncCursor(models.Model):
    """Where `sync_stripe` got to for one kind of Stripe object, so a rerun resumes there."""

    object_type = models.CharField(max_length=40, unique=True)
    since = models.DateTimeField(
        null=True, blank=True, help_text=_("Objects created from then on.")
    )
    last_id = models.CharField(
        max_length=255, blank=True, help_text=_("The last object listed (Stripe's starting_after).")
    )
    complete = models.BooleanField(default=False)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("Stripe sync cursor")
        verbose_name_plural = _("Stripe sync cursors")

    def __str__(self):
        return f"{self.object_type} after {self.last_id or '(start)'}"


class Reconciliation(models.Model):
    """One comparison of Stripe's event list with the deliveries Kanri received."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    since = models.DateTimeField()
    until = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status, default=Status.RUNNING)
    listed = models.PositiveIntegerField(default=0, help_text=_("Events Stripe listed."))
    missing = models.JSONField(
        default=list, help_text=_("Ids of events Stripe listed that Kanri never received.")
    )
    replayed = models.PositiveIntegerField(
        default=0, help_text=_("Runs the missing events started.")
    )
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("event reconciliation")
        verbose_name_plural = _("event reconciliations")

    def __str__(self):
        return f"Reconciliation {self.pk}: {len(self.missing)} missing"
