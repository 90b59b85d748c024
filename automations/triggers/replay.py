"""Trigger kind `replay`: stored Stripe events sent again through the live entry (being
built: issue 10). A run's kind, never a workflow's own trigger."""

from django.utils.translation import gettext_lazy as _

from automations.problems import Problem

COLUMNS = {}
PARAM = "event_type"
label = _("Replay of stored events")


def choices():
    return []


def validate(trigger):
    return [Problem("trigger.kind", "trigger_kind_unknown", {"kind": "replay"})]


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
    return []
