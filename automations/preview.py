"""Preview a workflow on a stored event: what it would do, with no side effect.

Conditions and branches are evaluated as a run would. Steps that only read (such as
retrieving a charge) really call Stripe, so later steps see real data; steps that would
write, send or post are prepared, shown exactly as they would be sent, and not sent.
"""

from automations.engine.conditions import describe, matches
from automations.engine.context import build_context
from automations.engine.references import RenderError, render
from automations.engine.runner import decide_branch, walk
from integrations.base import ActionError, StepCall
from integrations.registry import UnknownAction, get_action


class _Halt(Exception):
    pass


def event_payload(event):
    """Return the event dict of a stored dj-stripe Event, as Stripe sent it."""
    return event.stripe_data


def preview(definition, event, workflow=None):
    """Return a plain dict: did the trigger match, and what each step would do."""
    context = build_context(
        event,
        workflow={"id": getattr(workflow, "pk", None), "name": definition.get("name", "")},
        run={"id": None, "attempt": 0},
    )
    matched, explanation = matches(definition.get("conditions") or [], context)
    result = {
        "event": {
            "id": event.get("id"),
            "type": event.get("type"),
            "created": event.get("created"),
        },
        "event_type_matches": event.get("type") == definition["trigger"].get("event_type"),
        "matched": matched,
        "conditions": [{**c, "test": describe(c)} for c in explanation],
        "steps": [],
    }
    if not matched:
        return result

    def on_action(step, ctx):
        entry = {
            "name": step["name"],
            "kind": step["kind"],
            "request": None,
            "output": None,
            "sent": False,
            "error": "",
        }
        result["steps"].append(entry)
        call = StepCall(idempotency_key=f"kanri-preview-{step['name']}")
        try:
            action = get_action(step["kind"])()
            entry["label"] = action.label
            entry["request"] = action.prepare(render(step["config"], ctx, action.escape), call)
            if action.reads_only:
                entry["output"], entry["sent"] = action.send(entry["request"], call), True
            else:
                entry["output"] = action.dry_output(entry["request"])
        except (RenderError, ActionError, UnknownAction) as e:
            entry["error"] = str(e)
            raise _Halt from e
        return entry["output"]

    def on_branch(step, ctx):
        arm, detail = decide_branch(step, ctx)
        result["steps"].append(
            {"name": step["name"], "kind": "branch", "arm": arm, "conditions": detail}
        )
        return arm

    try:
        walk(definition.get("steps") or [], context, on_action, on_branch)
    except _Halt:
        result["halted"] = True
    return result
