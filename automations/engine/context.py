"""The data a run's conditions and references see: plain dicts, no models, no secrets."""


def build_context(trigger, *, workflow=None, run=None, steps=None):
    """Return the context dict for a run.

    `trigger` is the Stripe event exactly as received (the run's snapshot: values are what
    the event said, not a fresh fetch; a step such as stripe.retrieve_charge fetches fresh
    data when a workflow needs it). `steps` maps step names to their outputs so far.
    """
    return {
        "trigger": trigger,
        "steps": dict(steps or {}),
        "workflow": dict(workflow or {}),
        "run": dict(run or {}),
    }
