"""Trigger kind `replay`: stored Stripe events sent again through the live entry.

A run's kind, never a workflow's own trigger (`validate` refuses it and the editor
offers no choice of it). `manage.py replay_events` builds one Trigger per stored event
with the event id as its key, the key the live entry used: a (workflow, event) pair that
already ran, live or replayed, starts nothing (the unique (workflow, trigger key)
constraint), so a replay after an outage never acts twice. It starts the workflows the
live event would start: the stripe_event kind's candidates (active versions for the event
type, never the workflow whose own Stripe write caused the event), then conditions.
"""

from django.utils.translation import gettext_lazy as _

from automations.models import TriggerKind
from automations.problems import Problem
from automations.triggers import Trigger, stripe_event

COLUMNS = {}
PARAM = "event_type"
label = _("Replay of stored events")


def choices():
    return []


def validate(trigger):
    return [Problem("trigger.kind", "trigger_kind_unknown", {"kind": TriggerKind.REPLAY})]


def fields(trigger):
    return {}


def describe(trigger):
    return "replayed events"


def title(trigger):
    return str(label)


def starts_on(trigger, data):
    return False


def samples(trigger, limit):
    return []


def sample(trigger, subject_id):
    return None


def candidates(trigger):
    """Return what the live event would start; only `trigger.workflow_id` if it names one."""
    found = stripe_event.candidates(trigger)
    if trigger.workflow_id is not None:
        found = [c for c in found if c[0] == trigger.workflow_id]
    return found


def from_event(event, workflow_id=None):
    """Return the replay Trigger of a stored event dict (dj-stripe's `Event.stripe_data`)."""
    return Trigger(
        kind=TriggerKind.REPLAY,
        key=event["id"],
        data=event,
        label=event.get("type") or "",
        workflow_id=workflow_id,
    )
