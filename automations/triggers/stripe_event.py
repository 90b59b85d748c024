"""Trigger kind `stripe_event`: a verified Stripe webhook event starts the workflows for its type.

The webhook receiver sends `stripe_event_received` inside the transaction that records
a verified event. Matching uses an in-memory index of active versions by event type and
the event's own payload, so an event no workflow wants costs no query, and a run never
waits for dj-stripe's object sync (which calls the Stripe API). The key is the event id.
"""

import threading
import time

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from djstripe.models import Event

from automations import catalog
from automations.engine import keys
from automations.models import TriggerKind, Workflow, WorkflowVersion
from automations.problems import Problem
from automations.triggers import Trigger, start_runs
from integrations.signals import stripe_event_received

COLUMNS = {"event_type": "event_type"}
PARAM = "event_type"
label = _("Stripe event")
# How stale another process's view of active workflows may be after one is activated
# or paused; within the process that changed it, the change applies at once.
INDEX_TTL = 1.0


def choices():
    return [(f"{label}: {group}", options) for group, options in catalog.event_type_choices()]


def title(trigger):
    event_type = trigger.get("event_type") or ""
    return str(catalog.EVENT_TYPES.get(event_type, {}).get("label", event_type))


def starts_on(trigger, data):
    return data.get("type") == trigger.get("event_type")


def samples(trigger, limit):
    return list(
        Event.objects.filter(type=trigger.get("event_type"))
        .order_by("-created")
        .values_list("id", "created")[:limit]
    )


def sample(trigger, subject_id):
    stored = Event.objects.filter(id=subject_id).first()
    return stored.stripe_data if stored else None


def validate(trigger):
    event_type = trigger.get("event_type")
    if not event_type:
        return [Problem("trigger.event_type", "event_type_required")]
    if not isinstance(event_type, str) or event_type not in catalog.EVENT_TYPES:
        return [Problem("trigger.event_type", "event_type_unknown", {"event_type": event_type})]
    return []


def fields(trigger):
    return catalog.trigger_fields(trigger.get("event_type") or "")


def describe(trigger):
    return f"{trigger.get('event_type')} events"


class Index:
    """Active stripe_event workflow versions by event type, rebuilt when the set changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.token = None
        self.by_type = {}
        self.checked_at = float("-inf")

    def invalidate(self):
        """Rebuild on next use (this process changed a workflow)."""
        self.checked_at = float("-inf")
        self.token = None

    def versions_for(self, event_type):
        if time.monotonic() - self.checked_at > INDEX_TTL:
            with self.lock:
                self.refresh()
        return self.by_type.get(event_type, ())

    def refresh(self):
        token = tuple(
            Workflow.objects.filter(
                status=Workflow.Status.ACTIVE,
                active_version__isnull=False,
                trigger_kind=TriggerKind.STRIPE_EVENT,
            )
            .order_by("pk")
            .values_list("pk", "active_version_id")
        )
        if token != self.token:
            definitions = dict(
                WorkflowVersion.objects.filter(pk__in=[v for _, v in token]).values_list(
                    "pk", "definition"
                )
            )
            by_type = {}
            for workflow_id, version_id in token:
                definition = definitions[version_id]
                by_type.setdefault(definition["trigger"].get("event_type"), []).append(
                    (workflow_id, version_id, definition["conditions"])
                )
            self.by_type, self.token = by_type, token
        self.checked_at = time.monotonic()


index = Index()


def origin_workflow(event):
    """Return the id of the workflow whose Stripe write caused this event, if any.

    Stripe echoes the idempotency key of the request behind an event, so a workflow
    never re-triggers itself, while other workflows still react to what it did.
    """
    request = event.get("request")
    # API versions before 2017-05-25 send the request id as a plain string, and `request`
    # is null for events no API request caused (a payment from the dashboard).
    key = request.get("idempotency_key") if isinstance(request, dict) else None
    return keys.workflow_of(key) if isinstance(key, str) else None


def candidates(trigger):
    origin = origin_workflow(trigger.data)
    return [c for c in index.versions_for(trigger.data.get("type")) if c[0] != origin]


def from_event(event):
    """Return the Trigger of a verified Stripe event dict."""
    return Trigger(kind=TriggerKind.STRIPE_EVENT, key=event["id"], data=event, label=event["type"])


@receiver(stripe_event_received)
def on_stripe_event(sender, event, **kwargs):
    start_runs(from_event(event))


@receiver(post_save, sender=Workflow)
def on_workflow_saved(sender, **kwargs):
    # Activating or pausing applies at once in this process, and within INDEX_TTL elsewhere.
    index.invalidate()
