"""Realistic Stripe events of every type Kanri handles, with their objects made in the fake
Stripe API first, so that the mirror's sync of the event finds them (for
`manage.py trigger_stripe_event` and the tests).

The customer is created through the API (localstripe keeps it); the other objects are
shaped as Stripe's API version of stripe-python 15.6 sends them and seeded into the fake
(POST /_config/kanri/objects), which serves them at GET /v1/…/<id> with `expand[]`.
An event type is `<object>.<action>` (`customer.subscription.*` carries a subscription);
`sample_event(type, options)` builds one for any type whose object is in OBJECTS, with the
state its action implies (a deleted subscription is canceled and ended; a failed payment
carries its error).
"""

import json
import secrets
import time
import urllib.request

from django.conf import settings

from integrations.stripe_client import get_client
from integrations.stripe_events import as_dict, build_event

DEFAULT_PRODUCT = "prod_kanri_demo"
DAY = 24 * 3600


class NeedsFakeStripe(Exception):
    """Seeding objects needs the local fake Stripe API (STRIPE_API_HOST)."""


def _id(prefix):
    return f"{prefix}_{secrets.token_hex(8)}"


def object_of(event_type):
    """Return the object an event type carries: `charge.refunded` → charge,
    `customer.subscription.deleted` → subscription."""
    kind = event_type.rsplit(".", 1)[0]
    return "subscription" if kind == "customer.subscription" else kind


class World:
    """The objects one event needs, kept until they are seeded at once."""

    def __init__(self, options):
        self.options = options
        self.now = int(time.time())
        self.seeded = []

    def seed(self, obj):
        self.seeded.append(obj)
        return obj

    def flush(self):
        if not self.seeded:
            return
        base = getattr(settings, "STRIPE_API_HOST", "")
        request = urllib.request.Request(
            f"{base}/_config/kanri/objects",
            data=json.dumps(self.seeded).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except (ValueError, OSError) as e:
            raise NeedsFakeStripe(str(e)) from None

    # ------------------------------------------------------------ the objects

    def customer(self):
        made = get_client().v1.customers.create(
            params={
                "email": self.options["email"],
                "name": self.options["name"],
                "preferred_locales": ["ja"],
            }
        )
        return as_dict(made)

    def product(self):
        return self.seed(
            {
                "id": self.options.get("product") or DEFAULT_PRODUCT,
                "object": "product",
                "active": True,
                "created": self.now - 90 * DAY,
                "default_price": None,
                "description": None,
                "images": [],
                "livemode": False,
                "marketing_features": [],
                "metadata": {},
                "name": self.options.get("product_name") or "Kanri Pro",
                "package_dimensions": None,
                "shippable": None,
                "statement_descriptor": None,
                "tax_code": None,
                "type": "service",
                "unit_label": None,
                "updated": self.now - 90 * DAY,
                "url": None,
            }
        )

    def price(self, product):
        return self.seed(
            {
                "id": _id("price"),
                "object": "price",
                "active": True,
                "billing_scheme": "per_unit",
                "created": self.now - 90 * DAY,
                "currency": self.options["currency"],
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": None,
                "metadata": {},
                "nickname": None,
                "product": product["id"],
                "recurring": {
                    "interval": self.options.get("interval") or "month",
                    "interval_count": 1,
                    "meter": None,
                    "usage_type": "licensed",
                },
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "recurring",
                "unit_amount": self.options["amount"],
                "unit_amount_decimal": str(self.options["amount"]),
            }
        )

    def subscription(self, event_type):
        customer = self.customer()
        price = self.price(self.product())
        action = event_type.rsplit(".", 1)[1]
        subscription_id = _id("sub")
        start = self.now - 30 * DAY
        status = {
            "deleted": "canceled",
            "trial_will_end": "trialing",
            "paused": "paused",
        }.get(action, "active")
        ended = status == "canceled"
        return self.seed(
            {
                "id": subscription_id,
                "object": "subscription",
                "application": None,
                "automatic_tax": {"enabled": False, "liability": None},
                "billing_cycle_anchor": start,
                "cancel_at": None,
                "cancel_at_period_end": False,
                "canceled_at": self.now if ended else None,
                "cancellation_details": {
                    "comment": None,
                    "feedback": "too_expensive" if ended else None,
                    "reason": "cancellation_requested" if ended else None,
                },
                "collection_method": "charge_automatically",
                "created": start,
                "currency": self.options["currency"],
                "customer": customer["id"],
                "days_until_due": None,
                "default_payment_method": None,
                "default_source": None,
                "description": None,
                "discounts": [],
                "ended_at": self.now if ended else None,
                "items": {
                    "object": "list",
                    "data": [
                        {
                            "id": _id("si"),
                            "object": "subscription_item",
                            "created": start,
                            "current_period_end": start + 30 * DAY + 30 * DAY,
                            "current_period_start": start + 30 * DAY,
                            "discounts": [],
                            "metadata": {},
                            "price": price,
                            "quantity": 1,
                            "subscription": subscription_id,
                            "tax_rates": [],
                        }
                    ],
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription={subscription_id}",
                },
                "latest_invoice": None,
                "livemode": False,
                "metadata": {},
                "pause_collection": {"behavior": "void", "resumes_at": None}
                if status == "paused"
                else None,
                "start_date": start,
                "status": status,
                "trial_end": self.now + 3 * DAY if status == "trialing" else None,
                "trial_start": start if status == "trialing" else None,
            }
        )

    def payment_method(self, customer):
        return self.seed(
            {
                "id": _id("pm"),
                "object": "payment_method",
                "billing_details": {
                    "address": {"country": "JP", "postal_code": "150-0001"},
                    "email": customer["email"],
                    "name": customer["name"],
                    "phone": None,
                },
                "card": {
                    "brand": "visa",
                    "country": "US",
                    "exp_month": 12,
                    "exp_year": 2030,
                    "funding": "credit",
                    "last4": "4242",
                },
                "created": self.now,
                "customer": customer["id"],
                "livemode": False,
                "metadata": {},
                "type": "card",
            }
        )

    def charge(self, customer, *, failed=False, refunded=False, payment_intent=None):
        amount = self.options["amount"]
        method = self.payment_method(customer)
        return self.seed(
            {
                "id": _id("ch"),
                "object": "charge",
                "amount": amount,
                "amount_captured": 0 if failed else amount,
                "amount_refunded": amount if refunded else 0,
                "application_fee": None,
                "balance_transaction": None,
                "billing_details": method["billing_details"],
                "calculated_statement_descriptor": "KANRI",
                "captured": not failed,
                "created": self.now,
                "currency": self.options["currency"],
                "customer": customer["id"],
                "description": None,
                "disputed": False,
                "failure_code": "card_declined" if failed else None,
                "failure_message": "Your card was declined." if failed else None,
                "fraud_details": {},
                "invoice": None,
                "livemode": False,
                "metadata": {},
                "outcome": {
                    "network_status": "declined_by_network" if failed else "approved_by_network",
                    "reason": "generic_decline" if failed else None,
                    "risk_level": "normal",
                    "risk_score": 32,
                    "seller_message": "The bank did not return any further details."
                    if failed
                    else "Payment complete.",
                    "type": "issuer_declined" if failed else "authorized",
                },
                "paid": not failed,
                "payment_intent": payment_intent,
                "payment_method": method["id"],
                "payment_method_details": {"card": method["card"], "type": "card"},
                "receipt_email": customer["email"],
                "receipt_url": None,
                "refunded": refunded,
                "refunds": {"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"},
                "status": "failed" if failed else "succeeded",
            }
        )

    def payment_intent(self, event_type):
        customer = self.customer()
        action = event_type.rsplit(".", 1)[1]
        intent_id = _id("pi")
        failed, canceled = action == "payment_failed", action == "canceled"
        charge = (
            None if canceled else self.charge(customer, failed=failed, payment_intent=intent_id)
        )
        amount = self.options["amount"]
        error = None
        if failed:
            error = {
                "charge": charge["id"],
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "type": "card_error",
            }
        return self.seed(
            {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": 0 if failed or canceled else amount,
                "automatic_payment_methods": None,
                "canceled_at": self.now if canceled else None,
                "cancellation_reason": "abandoned" if canceled else None,
                "capture_method": "automatic",
                "client_secret": None,  # a secret: Kanri's events never need it
                "confirmation_method": "automatic",
                "created": self.now,
                "currency": self.options["currency"],
                "customer": customer["id"],
                "description": None,
                "last_payment_error": error,
                "latest_charge": charge["id"] if charge else None,
                "livemode": False,
                "metadata": {},
                "payment_method": None,
                "payment_method_types": ["card"],
                "receipt_email": customer["email"],
                "status": {"payment_failed": "requires_payment_method", "canceled": "canceled"}.get(
                    action, "succeeded"
                ),
            }
        )

    def charge_event(self, event_type):
        action = event_type.rsplit(".", 1)[1]
        customer = self.customer()
        return self.charge(customer, failed=action == "failed", refunded=action == "refunded")

    def refund(self, event_type):
        charge = self.charge(self.customer(), refunded=True)
        failed = event_type.endswith(".failed")
        return self.seed(
            {
                "id": _id("re"),
                "object": "refund",
                "amount": charge["amount"],
                "balance_transaction": None,
                "charge": charge["id"],
                "created": self.now,
                "currency": charge["currency"],
                "destination_details": {"card": {"type": "refund"}, "type": "card"},
                "failure_reason": "expired_or_canceled_card" if failed else None,
                "metadata": {},
                "payment_intent": None,
                "reason": "requested_by_customer",
                "receipt_number": None,
                "source_transfer_reversal": None,
                "status": "failed" if failed else "succeeded",
                "transfer_reversal": None,
            }
        )

    def invoice(self, event_type):
        customer = self.customer()
        action = event_type.rsplit(".", 1)[1]
        amount = self.options["amount"]
        upcoming = action == "upcoming"
        status = {
            "created": "draft",
            "updated": "draft",
            "finalized": "open",
            "sent": "open",
            "payment_failed": "open",
            "payment_action_required": "open",
            "voided": "void",
            "marked_uncollectible": "uncollectible",
            "upcoming": "draft",
        }.get(action, "paid")
        paid = status == "paid"
        invoice_id = None if upcoming else _id("in")
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Kanri local",
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid else amount,
            "attempt_count": 1 if action == "payment_failed" else 0,
            "attempted": action in ("payment_failed", "paid", "payment_succeeded"),
            "auto_advance": not paid,
            "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically",
            "created": self.now,
            "currency": self.options["currency"],
            "customer": customer["id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "description": None,
            "discounts": [],
            "due_date": None,
            "hosted_invoice_url": None
            if upcoming
            else f"https://invoice.stripe.test/i/{invoice_id}",
            "lines": {"object": "list", "data": [], "has_more": False, "url": "/v1/invoices"},
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": self.now + 3 * DAY if action == "payment_failed" else None,
            "number": None
            if upcoming or status == "draft"
            else f"KANRI-{secrets.randbelow(10**4):04d}",
            "parent": None,
            "period_end": self.now,
            "period_start": self.now - 30 * DAY,
            "status": status,
            "status_transitions": {
                "finalized_at": None if status == "draft" else self.now,
                "marked_uncollectible_at": self.now if status == "uncollectible" else None,
                "paid_at": self.now if paid else None,
                "voided_at": self.now if status == "void" else None,
            },
            "subtotal": amount,
            "total": amount,
        }
        # An upcoming invoice has no id: Stripe cannot serve it, and nothing is seeded.
        return invoice if upcoming else self.seed(invoice)

    def early_fraud_warning(self, event_type):
        charge = self.charge(self.customer())
        return self.seed(
            {
                "id": _id("issfr"),
                "object": "radar.early_fraud_warning",
                "actionable": not event_type.endswith(".updated"),
                "charge": charge["id"],
                "created": self.now,
                "fraud_type": "made_with_stolen_card",
                "livemode": False,
                "payment_intent": None,
            }
        )

    def checkout_session(self, event_type):
        customer = self.customer()
        action = event_type.rsplit(".", 1)[1]
        expired = action == "expired"
        unpaid = expired or action == "async_payment_failed"
        return self.seed(
            {
                "id": _id("cs_test"),
                "object": "checkout.session",
                "amount_subtotal": self.options["amount"],
                "amount_total": self.options["amount"],
                "client_reference_id": None,
                "created": self.now - 3600,
                "currency": self.options["currency"],
                "customer": customer["id"],
                "customer_details": {
                    "address": {"country": "JP"},
                    "email": customer["email"],
                    "name": customer["name"],
                    "phone": None,
                    "tax_exempt": "none",
                },
                "customer_email": None,
                "expires_at": self.now if expired else self.now + 23 * 3600,
                "livemode": False,
                "metadata": {},
                "mode": "payment",
                "payment_intent": None,
                "payment_status": "unpaid" if unpaid else "paid",
                "status": "expired" if expired else "complete",
                "subscription": None,
                "success_url": "https://example.com/thanks",
                "url": None,
            }
        )


def _customer_event(world, event_type):
    customer = world.customer()
    if event_type == "customer.deleted":
        get_client().v1.customers.delete(customer["id"])
    return customer


def _payment_intent_succeeded(world, event_type):
    """Through the API, as before: works with Stripe's own test mode as well."""
    customer = world.customer()
    intent = as_dict(
        get_client().v1.payment_intents.create(
            params={
                "amount": world.options["amount"],
                "currency": world.options["currency"],
                "customer": customer["id"],
                "payment_method": "pm_card_visa",
                "confirm": True,
            }
        )
    )
    # Stripe sends latest_charge as an id; the local fake expands it.
    if isinstance(intent.get("latest_charge"), dict):
        intent["latest_charge"] = intent["latest_charge"]["id"]
    return intent


OBJECTS = {
    "customer": _customer_event,
    "subscription": World.subscription,
    "charge": World.charge_event,
    "payment_intent": World.payment_intent,
    "refund": World.refund,
    "invoice": World.invoice,
    "radar.early_fraud_warning": World.early_fraud_warning,
    "checkout.session": World.checkout_session,
}
# Types made through Stripe's API alone (no seeding), so they also work in test mode.
THROUGH_THE_API = {
    "customer.created": _customer_event,
    "customer.updated": _customer_event,
    "customer.deleted": _customer_event,
    "payment_intent.succeeded": _payment_intent_succeeded,
}
# What a *.updated event says changed. https://docs.stripe.com/api/events/object
PREVIOUS = {
    "customer.updated": {"email": "old@example.test"},
    "customer.subscription.updated": {"cancel_at_period_end": True},
    "customer.subscription.resumed": {"status": "paused"},
    "invoice.updated": {"description": "Draft"},
    "refund.updated": {"metadata": {}},
    "radar.early_fraud_warning.updated": {"actionable": True},
}


def known(event_type):
    return event_type in THROUGH_THE_API or object_of(event_type) in OBJECTS


def sample_event(event_type, options):
    """Return a signed-ready event dict of `event_type`, its objects made in the fake
    first. `options`: amount (minor units), currency, email, name, product."""
    world = World(options)
    build = THROUGH_THE_API.get(event_type) or OBJECTS[object_of(event_type)]
    obj = build(world, event_type)
    world.flush()
    return build_event(event_type, obj, previous=PREVIOUS.get(event_type))
