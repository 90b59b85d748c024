"""Helpers for driving the admin as staff do: users in Kanri's roles, and the POST data
of the workflow change form with its two inlines."""

from django.contrib.auth.models import Group, User

from automations.admin.editor import config_field_name
from automations.roles import APPROVER, EDITOR, VIEWER

ROLES = {"viewer": VIEWER, "editor": EDITOR, "approver": APPROVER}


def staff_user(role=None, username=None):
    """Return a staff user in one of Kanri's roles (or in none)."""
    user = User.objects.create_user(username or (role or "nobody"), password="pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=ROLES[role]))
    return user


def workflow_form(
    name="A workflow",
    event_type="payment_intent.succeeded",
    conditions=(),
    steps=(),
    description="",
    initial_conditions=0,
    initial_steps=0,
    per_run="",
    per_day="",
):
    """Return POST data for the workflow add/change page.

    conditions: dicts with scope, group, field, operator, value_text, currency (and id).
    steps: dicts with name, kind, placement, position, config {field: value} (and id).
    """
    trigger = event_type if ":" in event_type else f"stripe_event:{event_type}"
    data = {
        "name": name,
        "description": description,
        "owner": "",
        "trigger": trigger,
        "per_run": per_run,
        "per_day": per_day,
    }
    for prefix, rows, initial in (
        ("conditions", conditions, initial_conditions),
        ("steps", steps, initial_steps),
    ):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": str(len(rows)),
                f"{prefix}-INITIAL_FORMS": str(initial),
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    for i, condition in enumerate(conditions):
        for key in ("id", "scope", "group", "field", "operator", "value_text", "currency"):
            default = "1" if key == "group" else ""
            data[f"conditions-{i}-{key}"] = str(condition.get(key, default))
    for i, step in enumerate(steps):
        for key in ("id", "name", "kind", "placement"):
            data[f"steps-{i}-{key}"] = str(step.get(key, ""))
        data[f"steps-{i}-position"] = str(step.get("position", (i + 1) * 10))
        for field, value in (step.get("config") or {}).items():
            data[f"steps-{i}-{config_field_name(step['kind'], field)}"] = value
        if step.get("DELETE"):
            data[f"steps-{i}-DELETE"] = "on"
    return data


def form_errors(response, prefix):
    """Return [{field: [messages]}, ...] for the inline formset with this prefix."""
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.prefix == prefix:
            return [dict(form.errors) for form in inline.formset.forms]
    raise AssertionError(f"no inline {prefix!r} on the page")


A2_CONDITIONS = [
    {
        "field": "trigger.data.object.amount",
        "operator": "gt",
        "value_text": "1,000",
        "currency": "usd",
    },
    {
        "scope": "is_vip",
        "field": "trigger.data.object.amount",
        "operator": "gt",
        "value_text": "2,000",
        "currency": "usd",
    },
]
A2_STEPS = [
    {
        "name": "notify_team",
        "kind": "email.send",
        "config": {
            "recipient": "team",
            "to": "ops@example.com",
            "subject": "Large order {{trigger.data.object.id}}: add a hand-written note",
            "body": "A customer just paid {{trigger.data.object.amount | money}}.\n\n"
            "Customer ID: {{trigger.data.object.customer}}\n"
            "Amount: {{trigger.data.object.amount | money}}\n"
            "Payment: {{trigger.data.object.id}}\n\n"
            "Please add a hand-written thank-you note before shipping.\n",
        },
    },
    {"name": "is_vip", "kind": "branch"},
    {
        "name": "tag_vip",
        "kind": "stripe.update_customer_metadata",
        "placement": "is_vip:then",
        "config": {"customer": "{{trigger.data.object.customer}}", "metadata": '{"Tier": "VIP"}'},
    },
]
