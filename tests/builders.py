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


def random_id(prefix):
    return f"{prefix}_{secrets.token_hex(8)}"
