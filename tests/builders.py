"""Builders for Stripe objects and events: real objects in the fake Stripe API when the
sync needs them, plain dicts shaped like Stripe's otherwise."""

import secrets

from integrations.stripe_client import get_client
from integrations.stripe_events import as_dict, build_event


def create_customer(email="taro@example.test", name="Taro Yamada", **params):
    return as_dict(
        get_client().v1.customers.create(params={"email": email, "name": name, **params})
    )


def create_payment_intent(amount=150000, currency="usd", customer=None, **params):
    customer = customer or create_customer()["id"]
    intent = as_dict(
        get_client().v1.payment_intents.create(
            params={
                "amount": amount,
                "currency": currency,
                "customer": customer,
                "payment_method": "pm_card_visa",
                "confirm": True,
                **params,
            }
        )
    )
    if isinstance(intent.get("latest_charge"), dict):  # Stripe sends an id here
        intent["latest_charge"] = intent["latest_charge"]["id"]
    return intent


def event(event_type, obj, **kwargs):
    return build_event(event_type, obj, **kwargs)


def stored_event(payload):
    """A dj-stripe Event row as the sync leaves it (what previews read)."""
    from djstripe.models import Event

    return Event.objects.create(
        id=payload["id"],
        type=payload["type"],
        livemode=False,
        data=payload["data"],
        stripe_data=payload,
    )


def random_id(prefix):
    return f"{prefix}_{secrets.token_hex(8)}"


def early_fraud_warning(charge_id, payment_intent_id=None):
    """A Radar early fraud warning (localstripe has none; seed it into the fake)."""
    return {
        "id": random_id("issfr"),
        "object": "radar.early_fraud_warning",
        "actionable": True,
        "charge": charge_id,
        "created": 1700000000,
        "fraud_type": "made_with_stolen_card",
        "livemode": False,
        "payment_intent": payment_intent_id,
    }


def payment_intent_dict(amount, currency, customer="cus_test", **fields):
    """A payment intent as an event carries it, for tests that need no Stripe object."""
    return {
        "id": random_id("pi"),
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": currency,
        "customer": customer,
        "description": None,
        "latest_charge": random_id("ch"),
        "metadata": {},
        "status": "succeeded",
        **fields,
    }


def create_workflow(definition, owner=None, status="draft"):
    """Create a workflow through the service, as the admin, commands and API do; activate
    it too when `status` is "active"."""
    from automations import workflows

    workflow = workflows.create(definition, owner=owner)
    if status == "active":
        workflows.activate(workflow)
        workflow.refresh_from_db()
    return workflow


def mail_ops_workflow(
    event_type,
    subject="Stripe object {{trigger.data.object.id}}",
    body="Object: {{trigger.data.object.id}}\n",
):
    """An active workflow that emails ops once per `event_type` event: one side effect per
    run, easy to count in the SMTP sink."""
    return create_workflow(
        {
            "name": f"Mail ops on {event_type}",
            "description": "",
            "trigger": {"kind": "stripe_event", "event_type": event_type},
            "conditions": [],
            "steps": [
                {
                    "name": "tell_ops",
                    "kind": "email.send",
                    "config": {
                        "recipient": "team",
                        "to": "ops@example.test",
                        "subject": subject,
                        "body": body,
                    },
                }
            ],
        },
        status="active",
    )
