"""Choices shared by workflows and runs."""

from django.db import models


class TriggerKind(models.TextChoices):
    """What starts a run. Each kind is one module in automations/triggers/ of the same name."""

    STRIPE_EVENT = "stripe_event", "Stripe event"
    MANUAL = "manual", "Run on selected objects"
    SCHEDULE = "schedule", "On a schedule"
    # Stored events sent again through the live entry by replay_events (events found by
    # reconcile_events go through the webhook path itself, as stripe_event); never a
    # workflow's own trigger, only a run's.
    REPLAY = "replay", "Replay of stored events"
