"""Choices shared by workflows and runs."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TriggerKind(models.TextChoices):
    """What starts a run. Each kind is one module in automations/triggers/ of the same name."""

    STRIPE_EVENT = "stripe_event", _("Stripe event")
    MANUAL = "manual", _("Run on selected objects")
    SCHEDULE = "schedule", _("On a schedule")
    # Stored events sent again through the live entry by replay_events (events found by
    # reconcile_events go through the webhook path itself, as stripe_event); never a
    # workflow's own trigger, only a run's.
    REPLAY = "replay", _("Replay of stored events")
