"""Choices shared by workflows and runs."""

from django.db import models


class TriggerKind(models.TextChoices):
    """What starts a run. Each kind is one module in automations/triggers/ of the same name."""

    STRIPE_EVENT = "stripe_event", "Stripe event"
    MANUAL = "manual", "Run on selected objects"
    SCHEDULE = "schedule", "On a schedule"
    # Stored events sent again through the live entry (replay_events, reconcile_events);
    # never a workflow's own trigger, only a run's.
    REPLAY = "replay", "Replay of stored events"
