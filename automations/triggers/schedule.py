"""Trigger kind `schedule`: being built (issue 9). Placeholder so the kind resolves."""

from django.utils.translation import gettext_lazy as _

from automations.problems import Problem

COLUMNS = {}
OPTIONS = ("filter", "cron", "timezone", "mode")
PARAM = "filter"
label = _("On a schedule")


def choices():
    return []


def validate(trigger):
    return [Problem("trigger.kind", "trigger_kind_unknown", {"kind": "schedule"})]


def fields(trigger):
    return {}


def describe(trigger):
    return "scheduled runs"


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
