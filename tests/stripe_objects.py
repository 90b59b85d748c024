"""Builders for dj-stripe rows as the mirror leaves them: the columns dj-stripe maps, plus
`stripe_data` shaped like Stripe's API objects (https://docs.stripe.com/api), so lists,
filters and workflows read what they read in production.

Every builder writes one row straight into the mirror (no Stripe call) and returns it.
Keyword arguments not named in a builder's signature are merged into its `stripe_data`, so
a test can set any Stripe field: `charge(1500, outcome={"type": "blocked"})`. Amounts are
integer minor units, as Stripe sends them. `created` is an aware datetime (default: now).
"""

import json
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from djstripe.models import (
    Charge,
    Customer,
    Dispute,
    EarlyFraudWarning,
    Event,
    Invoice,
    PaymentIntent,
    Refund,
    Subscription,
    WebhookEventTrigger,
)

from automations.money import from_minor
from tests.builders import random_id

API_VERSION = "2026-08-26.dahlia"


def _created(created):
    created = created or timezone.now()
    return created, int(created.timestamp())


def _row(model, data, created, **columns):
    """Create one mirror row from Stripe data, with dj-stripe's common columns."""
    return model.objects.create(
        id=data["id"],
        livemode=data.get("livemode", False),
        created=created,
        metadata=data.get("metadata") or {},
        stripe_data=data,
        **columns,
    )


def _id(obj):
    return obj.id if hasattr(obj, "id") else obj


def customer(
    email="hanako@example.test", name="Hanako Sato", *, created=None, metadata=None, **data
):
    created, timestamp = _created(created)
    stripe_data = {
        "id": random_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": timestamp,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": email,
        "invoice_prefix": "A1B2C3D4",
        "invoice_settings": {"default_payment_method": None, "footer": None},
        "livemode": False,
        "metadata": metadata or {},
        "name": name,
        "phone": None,
        "preferred_locales": ["ja"],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        **data,
    }
    return _row(Customer, stripe_data, created, email=stripe_data["email"] or "")


_new_customer = customer


def payment_intent(
    amount=1500,
    currency="usd",
    *,
    status="succeeded",
    customer=None,
    latest_charge=None,
    created=None,
    metadata=None,
    **data,
):
    created, timestamp = _created(created)
    intent_id = data.pop("id", None) or random_id("pi")
    stripe_data = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount if status == "succeeded" else 0,
        "automatic_payment_methods": None,
        "canceled_at": timestamp if status == "canceled" else None,
        "cancellation_reason": "requested_by_customer" if status == "canceled" else None,
        "capture_method": "automatic",
        # Browsers use this to confirm the payment; it must never reach a staff page.
        "client_secret": f"{intent_id}_secret_{random_id('x')[2:]}",
        "confirmation_method": "automatic",
        "created": timestamp,
        "currency": currency,
        "customer": _id(customer) if customer else None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": latest_charge,
        "livemode": False,
        "metadata": metadata or {},
        "payment_method": random_id("pm"),
        "payment_method_types": ["card"],
        "receipt_email": None,
        "status": status,
        **data,
    }
    return _row(PaymentIntent, stripe_data, created, customer=customer)


def charge(
    amount=1500,
    currency="usd",
    *,
    status="succeeded",
    customer=None,
    payment_intent=None,
    outcome="authorized",
    captured=True,
    refunded=False,
    amount_refunded=None,
    disputed=False,
    created=None,
    metadata=None,
    **data,
):
    """A charge; `outcome` is Stripe's outcome.type (authorized, issuer_declined, blocked, …)."""
    created, timestamp = _created(created)
    if amount_refunded is None:
        amount_refunded = amount if refunded else 0
    failed = status == "failed"
    stripe_data = {
        "id": random_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if captured and not failed else 0,
        "amount_refunded": amount_refunded,
        "balance_transaction": None,
        "billing_details": {
            "address": {"country": "JP", "postal_code": "150-0001"},
            "email": customer.email if customer else None,
            "name": (customer.stripe_data.get("name") if customer else None),
            "phone": None,
        },
        "captured": captured,
        "created": timestamp,
        "currency": currency,
        "customer": _id(customer) if customer else None,
        "description": None,
        "disputed": disputed,
        "failure_code": "card_declined" if failed else None,
        "failure_message": "Your card was declined." if failed else None,
        "fraud_details": {},
        "invoice": None,
        "livemode": False,
        "metadata": metadata or {},
        "outcome": {
            "network_status": "approved_by_network"
            if outcome == "authorized"
            else "not_sent_to_network"
            if outcome == "blocked"
            else "declined_by_network",
            "reason": "highest_risk_level" if outcome == "blocked" else None,
            "risk_level": "highest" if outcome == "blocked" else "normal",
            "risk_score": 95 if outcome == "blocked" else 20,
            "seller_message": "Payment complete." if outcome == "authorized" else "Declined.",
            "type": outcome,
        },
        "paid": status == "succeeded",
        "payment_intent": _id(payment_intent) if payment_intent else None,
        "payment_method": random_id("pm"),
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "country": "US",
                "exp_month": 12,
                "exp_year": 2030,
                "funding": "credit",
                "last4": "4242",
            },
            "type": "card",
        },
        "receipt_email": None,
        "receipt_url": "https://pay.stripe.com/receipts/example",
        "refunded": refunded,
        "status": status,
        **data,
    }
    return _row(
        Charge,
        stripe_data,
        created,
        # dj-stripe's own amount column holds major units (a decimal); Stripe's stays in
        # stripe_data in minor units.
        amount=Decimal(from_minor(amount, currency)),
        currency=currency,
        status=status,
        customer=customer,
        payment_intent=payment_intent,
    )


def paid_charge(amount=1500, currency="usd", *, customer=None, created=None, **charge_data):
    """A succeeded payment intent and its charge, linked both ways, as Stripe leaves them."""
    intent = payment_intent(amount, currency, customer=customer, created=created)
    made = charge(
        amount, currency, customer=customer, payment_intent=intent, created=created, **charge_data
    )
    intent.stripe_data["latest_charge"] = made.id
    intent.save(update_fields=["stripe_data"])
    return made


def subscription_item(
    price="price_1Basic",
    product="prod_Basic",
    unit_amount=1500,
    currency="usd",
    interval="month",
    quantity=1,
):
    """One entry of a subscription's items.data (a dict, not a row)."""
    return {
        "id": random_id("si"),
        "object": "subscription_item",
        "price": {
            "id": price,
            "object": "price",
            "active": True,
            "currency": currency,
            "product": product,
            "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": unit_amount,
        },
        "quantity": quantity,
    }


def subscription(
    customer=None, *, status="active", items=None, created=None, metadata=None, **data
):
    created, timestamp = _created(created)
    customer = customer or _new_customer()  # Stripe requires one
    items = list(items) if items is not None else [subscription_item()]
    subscription_id = random_id("sub")
    for item in items:
        item["subscription"] = subscription_id
    stripe_data = {
        "id": subscription_id,
        "object": "subscription",
        "billing_cycle_anchor": timestamp,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": timestamp if status == "canceled" else None,
        "collection_method": "charge_automatically",
        "created": timestamp,
        "currency": items[0]["price"]["currency"] if items else "usd",
        "customer": customer.id,
        "ended_at": timestamp if status == "canceled" else None,
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata or {},
        "start_date": timestamp,
        "status": status,
        "trial_end": None,
        **data,
    }
    return _row(Subscription, stripe_data, created, customer=customer)


def invoice(
    customer=None,
    *,
    total=1500,
    currency="usd",
    status="paid",
    subscription=None,
    created=None,
    metadata=None,
    **data,
):
    created, timestamp = _created(created)
    customer = customer or _new_customer()  # Stripe requires one
    paid = status == "paid"
    stripe_data = {
        "id": random_id("in"),
        "object": "invoice",
        "amount_due": total,
        "amount_paid": total if paid else 0,
        "amount_remaining": 0 if paid else total,
        "attempt_count": 1,
        "billing_reason": "subscription_cycle" if subscription else "manual",
        "collection_method": "charge_automatically",
        "created": timestamp,
        "currency": currency,
        "customer": customer.id,
        "customer_email": customer.email,
        "customer_name": customer.stripe_data.get("name"),
        "due_date": None,
        "hosted_invoice_url": "https://invoice.stripe.com/i/example",
        "livemode": False,
        "metadata": metadata or {},
        "number": f"A1B2C3D4-{timestamp % 10000:04d}",
        "status": status,
        "subscription": _id(subscription) if subscription else None,
        "subtotal": total,
        "total": total,
        **data,
    }
    return _row(Invoice, stripe_data, created, customer=customer, subscription=subscription)


def refund(charge, *, amount=None, status="succeeded", reason="requested_by_customer", **data):
    created, timestamp = _created(data.pop("created", None))
    amount = charge.stripe_data["amount"] if amount is None else amount
    currency = charge.stripe_data["currency"]
    stripe_data = {
        "id": random_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge.id,
        "created": timestamp,
        "currency": currency,
        "failure_reason": "lost_or_stolen_card" if status == "failed" else None,
        "metadata": data.pop("metadata", None) or {},
        "payment_intent": charge.stripe_data.get("payment_intent"),
        "reason": reason,
        "receipt_number": None,
        "status": status,
        **data,
    }
    return _row(Refund, stripe_data, created, amount=amount, currency=currency, charge=charge)


def dispute(charge, *, amount=None, status="needs_response", reason="fraudulent", **data):
    created, timestamp = _created(data.pop("created", None))
    stripe_data = {
        "id": random_id("du"),
        "object": "dispute",
        "amount": charge.stripe_data["amount"] if amount is None else amount,
        "balance_transactions": [],
        "charge": charge.id,
        "created": timestamp,
        "currency": charge.stripe_data["currency"],
        "evidence_details": {
            "due_by": timestamp + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": data.pop("metadata", None) or {},
        "payment_intent": charge.stripe_data.get("payment_intent"),
        "reason": reason,
        "status": status,
        **data,
    }
    return _row(Dispute, stripe_data, created, charge=charge, payment_intent=charge.payment_intent)


def early_fraud_warning(charge, *, fraud_type="made_with_stolen_card", actionable=True, **data):
    created, timestamp = _created(data.pop("created", None))
    stripe_data = {
        "id": random_id("issfr"),
        "object": "radar.early_fraud_warning",
        "actionable": actionable,
        "charge": charge.id,
        "created": timestamp,
        "fraud_type": fraud_type,
        "livemode": False,
        "payment_intent": charge.stripe_data.get("payment_intent"),
        **data,
    }
    return _row(EarlyFraudWarning, stripe_data, created)


def event(obj, event_type=None, *, created=None, **data):
    """The event Stripe sends about a row built here (or about a plain Stripe dict)."""
    created, timestamp = _created(created)
    snapshot = obj.stripe_data if hasattr(obj, "stripe_data") else obj
    event_type = event_type or f"{snapshot['object']}.created"
    stripe_data = {
        "id": random_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": timestamp,
        "data": {"object": snapshot},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": random_id("req"), "idempotency_key": None},
        "type": event_type,
        **data,
    }
    return Event.objects.create(
        id=stripe_data["id"],
        livemode=False,
        created=created,
        type=event_type,
        api_version=API_VERSION,
        data=stripe_data["data"],
        request_id=stripe_data["request"]["id"] or "",
        stripe_data=stripe_data,
    )


def webhook_delivery(
    event=None, *, valid=True, processed=True, exception="", endpoint=None, created=None
):
    """A WebhookEventTrigger: one POST Stripe made to the receiver, with its outcome."""
    body = json.dumps(event.stripe_data) if event else "{}"
    delivery = WebhookEventTrigger.objects.create(
        remote_ip="3.18.12.63",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": "t=1700000000,v1=" + "0" * 64,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
        body=body,
        valid=valid,
        processed=processed,
        exception=exception,
        traceback=f"Traceback (most recent call last):\n{exception}" if exception else "",
        event=event,
        djstripe_version="2.11.0",
        webhook_endpoint=endpoint,
    )
    if created:  # `created` is auto_now_add: set it afterwards
        WebhookEventTrigger.objects.filter(pk=delivery.pk).update(created=created)
        delivery.created = created
    return delivery


def every_list(created=None):
    """One linked row for each of Kanri's Stripe lists; returns {model name: row}."""
    created = created or timezone.now()
    buyer = customer(created=created, metadata={"tier": "vip"})
    paid = paid_charge(2500, "usd", customer=buyer, created=created, metadata={"booking_id": "B-1"})
    plan = subscription(buyer, created=created)
    found = {
        "customer": buyer,
        "charge": paid,
        "paymentintent": paid.payment_intent,
        "subscription": plan,
        "invoice": invoice(buyer, subscription=plan, created=created),
        "refund": refund(paid, amount=500, created=created),
        "dispute": dispute(paid, created=created),
        "earlyfraudwarning": early_fraud_warning(paid, created=created),
    }
    found["event"] = event(paid, "charge.succeeded", created=created)
    found["webhookeventtrigger"] = webhook_delivery(found["event"], created=created)
    return found


def at(year, month, day, hour=0, minute=0, tz=None):
    """An aware datetime in `tz` (default: the current time zone)."""
    return datetime(year, month, day, hour, minute, tzinfo=tz or timezone.get_current_timezone())
