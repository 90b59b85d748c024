"""Idempotency keys and trigger keys: made and parsed here and nowhere else.

A Stripe write carries `kanri-<workflow>-<run>-<step>`. Stripe echoes the key of the
request behind an event, so the stripe_event trigger can tell which workflow caused it
and never re-trigger that workflow (others still react).
"""

import secrets

PREFIX = "kanri"


def step_key(workflow_id, run_id, step_name):
    """Return the idempotency key of one step of one run."""
    return f"{PREFIX}-{workflow_id}-{run_id}-{step_name}"


def preview_key(step_name):
    """Return the stand-in key shown in previews and dry-runs (never sent to Stripe)."""
    return f"{PREFIX}-preview-{step_name}"


def workflow_of(key):
    """Return the workflow id a step key was made for, or None if it is not Kanri's."""
    parts = (key or "").split("-", 3)
    if len(parts) == 4 and parts[0] == PREFIX and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1])
    return None


def manual_key(object_id, token=None):
    """Return the trigger key of a manual run: one per object per confirmed request, or,
    without a token, one per object ever (a workflow that moves money credits a charge once)."""
    return f"manual:{object_id}:{token}" if token else f"manual:{object_id}"


def new_request_token():
    """Return a token naming one "run on selected" request, so resubmitting it starts nothing."""
    return secrets.token_urlsafe(12)
