"""Sync failures are classified: permanent ones stop and are listed in the admin's "Sync
problems"; transient ones retry with a bounded backoff; the log says each once.

The payloads follow Stripe's newest API shape (2025-09-30.clover and later): a discount
names its coupon under `source.coupon`, and subscriptions and invoices carry `discounts`.
"""

import copy
import logging
import time
from datetime import timedelta

import pytest
import stripe
from django.db import DataError, OperationalError
from django.urls import reverse
from djstripe.models import Discount, Invoice, PaymentIntent, Subscription, WebhookEventTrigger
from time_machine import travel

from integrations.models import SyncProblem, SyncQueue
from integrations.stripe_sync import classify_failure
from integrations.stripe_webhooks import _backoff, retry_unprocessed_webhooks, sync_webhooks
from tests.admin_helpers import staff_user
from tests.builders import create_customer, create_payment_intent, event
from tests.stripe_objects import customer as customer_row

CREATED = 1_760_000_000
DISCOUNT = {
    "id": "di_1SHAPE",
    "object": "discount",
    "checkout_session": None,
    "customer": "cus_SHAPE",
    "end": None,
    "invoice": None,
    "invoice_item": None,
    "promotion_code": None,
    "source": {"coupon": "Z4OV52SU", "type": "coupon"},
    "start": CREATED,
    "subscription": None,
    "subscription_item": None,
}
PRICE = {
    "id": "price_SHAPE",
    "object": "price",
    "active": True,
    "billing_scheme": "per_unit",
    "created": CREATED,
    "currency": "usd",
    "custom_unit_amount": None,
    "livemode": False,
    "lookup_key": None,
    "metadata": {},
    "nickname": None,
    "product": "prod_SHAPE",
    "recurring": {
        "interval": "month",
        "interval_count": 1,
        "meter": None,
        "usage_type": "licensed",
    },
    "tax_behavior": "unspecified",
    "tiers_mode": None,
    "transform_quantity": None,
    "type": "recurring",
    "unit_amount": 2000,
    "unit_amount_decimal": "2000",
}
SUBSCRIPTION = {
    "id": "sub_SHAPE",
    "object": "subscription",
    "application": None,
    "application_fee_percent": None,
    "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
    "billing_cycle_anchor": CREATED,
    "billing_mode": {"type": "classic"},
    "cancel_at": None,
    "cancel_at_period_end": False,
    "canceled_at": None,
    "cancellation_details": {"comment": None, "feedback": None, "reason": None},
    "collection_method": "charge_automatically",
    "created": CREATED,
    "currency": "usd",
    "customer": "cus_SHAPE",
    "days_until_due": None,
    "default_payment_method": None,
    "default_source": None,
    "default_tax_rates": [],
    "description": None,
    "discounts": [DISCOUNT],
    "ended_at": None,
    "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
    "items": {
        "object": "list",
        "data": [
            {
                "id": "si_SHAPE",
                "object": "subscription_item",
                "created": CREATED,
                "current_period_end": CREATED + 2_592_000,
                "current_period_start": CREATED,
                "discounts": [],
                "metadata": {},
                "price": PRICE,
                "quantity": 1,
                "subscription": "sub_SHAPE",
                "tax_rates": [],
            }
        ],
        "has_more": False,
        "total_count": 1,
        "url": "/v1/subscription_items?subscription=sub_SHAPE",
    },
    "latest_invoice": None,
    "livemode": False,
    "metadata": {},
    "next_pending_invoice_item_invoice": None,
    "on_behalf_of": None,
    "pause_collection": None,
    "payment_settings": {
        "payment_method_options": None,
        "payment_method_types": None,
        "save_default_payment_method": "off",
    },
    "pending_invoice_item_interval": None,
    "pending_setup_intent": None,
    "pending_update": None,
    "schedule": None,
    "start_date": CREATED,
    "status": "active",
    "test_clock": None,
    "transfer_data": None,
    "trial_end": None,
    "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
    "trial_start": None,
}
INVOICE = {
    "id": "in_SHAPE",
    "object": "invoice",
    "account_country": "US",
    "account_name": "Kanri",
    "amount_due": 1800,
    "amount_overpaid": 0,
    "amount_paid": 1800,
    "amount_remaining": 0,
    "amount_shipping": 0,
    "attempt_count": 1,
    "attempted": True,
    "auto_advance": False,
    "automatic_tax": {
        "disabled_reason": None,
        "enabled": False,
        "liability": None,
        "provider": None,
        "status": None,
    },
    "billing_reason": "subscription_create",
    "collection_method": "charge_automatically",
    "created": CREATED,
    "currency": "usd",
    "customer": "cus_SHAPE",
    "customer_email": "jenny@example.com",
    "customer_name": "Jenny Rosen",
    "default_payment_method": None,
    "description": None,
    "discounts": [DISCOUNT],
    "due_date": None,
    "effective_at": CREATED,
    "ending_balance": 0,
    "footer": None,
    "hosted_invoice_url": None,
    "invoice_pdf": None,
    "issuer": {"type": "self"},
    "last_finalization_error": None,
    "lines": {
        "object": "list",
        "data": [],
        "has_more": False,
        "total_count": 0,
        "url": "/v1/invoices/in_SHAPE/lines",
    },
    "livemode": False,
    "metadata": {},
    "number": "0759376C-0001",
    "parent": {
        "quote_details": None,
        "subscription_details": {"metadata": {}, "subscription": "sub_SHAPE"},
        "type": "subscription_details",
    },
    "period_end": CREATED,
    "period_start": CREATED,
    "receipt_number": None,
    "starting_balance": 0,
    "statement_descriptor": None,
    "status": "paid",
    "status_transitions": {
        "finalized_at": CREATED,
        "marked_uncollectible_at": None,
        "paid_at": CREATED,
        "voided_at": None,
    },
    "subtotal": 2000,
    "total": 1800,
    "total_discount_amounts": [{"amount": 200, "discount": "di_1SHAPE"}],
    "total_taxes": [],
    "webhooks_delivered_at": CREATED,
}
PRODUCT = {
    "id": "prod_SHAPE",
    "object": "product",
    "active": True,
    "created": CREATED,
    "default_price": None,
    "description": None,
    "images": [],
    "livemode": False,
    "marketing_features": [],
    "metadata": {},
    "name": "Gold",
    "package_dimensions": None,
    "shippable": None,
    "statement_descriptor": None,
    "tax_code": None,
    "type": "service",
    "unit_label": None,
    "updated": CREATED,
    "url": None,
}


def of_customer(obj, customer_id):
    """A copy of a shape above belonging to `customer_id`."""
    obj = copy.deepcopy(obj)
    obj["customer"] = customer_id
    for discount in obj.get("discounts") or [obj.get("discount") or {}]:
        if discount:
            discount["customer"] = customer_id
    return obj


def newest_customer(customer_id):
    """Stripe's example customer, with a discount whose coupon is under `source`."""
    row = customer_row()
    data = {**row.stripe_data, "id": customer_id, "discount": copy.deepcopy(DISCOUNT)}
    data["discount"]["customer"] = customer_id
    return data


def warnings_about(caplog, delivery_id):
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and f"webhook {delivery_id} " in r.getMessage()
    ]


@pytest.fixture
def deliver(monkeypatch, post_event):
    """POST a signed event (its sync runs inline, as a worker would); return its delivery."""

    def deliver(sent):
        assert post_event(sent).status_code == 200
        return WebhookEventTrigger.objects.order_by("-pk").first()

    return deliver


def test_stripes_newest_customer_shape_is_a_permanent_problem_said_once(
    deliver, fake_stripe, caplog
):
    caplog.set_level(logging.WARNING, logger="integrations.stripe_webhooks")
    sent = event("customer.updated", newest_customer("cus_NEWSHAPE"))

    delivery = deliver(sent)

    problem = SyncProblem.objects.get()
    assert (problem.delivery_id, problem.event_id, problem.event_type, problem.object_id) == (
        delivery.pk,
        sent["id"],
        "customer.updated",
        "cus_NEWSHAPE",
    )
    assert (problem.kind, problem.code, problem.next_try) == ("permanent", "unmappable", None)
    assert problem.detail == (
        "RuntimeError: dj-stripe encountered an empty field Coupon.coupon = None"
    )
    assert (delivery.processed, delivery.exception) == (
        False,
        "RuntimeError: dj-stripe encountered an empty field Coupon.coupon = None",
    )
    assert not SyncQueue.objects.exists()  # never retried by itself
    with travel(time.time() + 3600):
        assert retry_unprocessed_webhooks() == 0
        assert sync_webhooks() == 0
    assert len(warnings_about(caplog, delivery.pk)) == 1
    assert fake_stripe.requests(method="GET") == []


def test_a_subscription_and_an_invoice_in_the_newest_shape_sync_from_the_payload(
    deliver, fake_stripe
):
    customer = customer_row()
    fake_stripe.seed(PRODUCT)  # a price's product cannot be left unlinked: it is fetched

    deliver(event("customer.subscription.created", of_customer(SUBSCRIPTION, customer.id)))
    deliver(event("invoice.paid", of_customer(INVOICE, customer.id)))

    assert not SyncProblem.objects.exists()
    subscription = Subscription.objects.get(id="sub_SHAPE")
    assert (subscription.customer_id, subscription.stripe_data["status"]) == (customer.id, "active")
    assert list(subscription.items.values_list("id", flat=True)) == ["si_SHAPE"]
    assert Invoice.objects.get(id="in_SHAPE").stripe_data["total"] == 1800
    assert Discount.objects.get(id="di_1SHAPE").stripe_data["source"]["coupon"] == "Z4OV52SU"
    assert [r["path"] for r in fake_stripe.requests(method="GET")] == [
        "/v1/products/prod_SHAPE",
        "/v1/products/prod_SHAPE/features",  # dj-stripe's own follow-up for a product
    ]


def unknown_customer_intent():
    """A payment intent whose customer the mirror has not seen, so its sync asks Stripe."""
    customer = create_customer()
    return customer, event(
        "payment_intent.succeeded", create_payment_intent(customer=customer["id"])
    )


def test_a_rate_limited_sync_retries_with_a_growing_backoff_and_warns_once(
    deliver, fake_stripe, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG, logger="integrations.stripe_webhooks")
    customer, sent = unknown_customer_intent()
    path = f"/v1/customers/{customer['id']}"
    fake_stripe.fail(path, method="GET", status=429, times=2, type="rate_limit_error")
    start = time.time()

    delivery = deliver(sent)

    queued = SyncQueue.objects.get(delivery_id=delivery.pk)
    problem = SyncProblem.objects.get()
    assert (problem.kind, problem.code, problem.attempts) == ("transient", "rate_limited", 1)
    assert queued.attempts == 1
    assert 29 <= (queued.due - problem.last_tried).total_seconds() <= 30
    with travel(start + 31, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert retry_unprocessed_webhooks() == 1  # tried again: 429 again
    queued.refresh_from_db()
    problem.refresh_from_db()
    assert (queued.attempts, problem.attempts) == (2, 2)
    assert queued.due - problem.last_tried == timedelta(seconds=60)
    with travel(start + 31 + 61, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert retry_unprocessed_webhooks() == 1  # and now Stripe answers

    delivery.refresh_from_db()
    assert (delivery.processed, delivery.exception) == (True, "")
    assert PaymentIntent.objects.get(id=sent["data"]["object"]["id"]).customer_id == customer["id"]
    assert not SyncProblem.objects.exists()
    assert not SyncQueue.objects.exists()
    assert len(fake_stripe.requests(path=path, method="GET")) == 3
    assert len(warnings_about(caplog, delivery.pk)) == 1


def test_a_transient_failure_is_given_up_when_stripes_redelivery_window_ends(
    deliver, fake_stripe, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.WARNING, logger="integrations.stripe_webhooks")
    customer, sent = unknown_customer_intent()
    fake_stripe.fail(f"/v1/customers/{customer['id']}", method="GET", status=503, times=100)

    delivery = deliver(sent)
    with travel(time.time() + 3 * 86400 + 60), django_capture_on_commit_callbacks(execute=True):
        assert retry_unprocessed_webhooks() == 1

    problem = SyncProblem.objects.get()
    assert (problem.kind, problem.code, problem.next_try) == ("permanent", "gave_up", None)
    assert problem.detail == "Stripe 503 APIError: Injected failure"
    assert not SyncQueue.objects.exists()
    assert [r.getMessage().split(", ")[1] for r in warnings_about(caplog, delivery.pk)] == [
        "transient (stripe_unavailable): Stripe 503 APIError: Injected failure",
        "given up (stripe_unavailable): Stripe 503 APIError: Injected failure",
    ]


def test_the_backoff_doubles_from_30_seconds_to_an_hour_or_follows_retry_after():
    assert [_backoff(n) for n in (1, 2, 3, 7, 8, 30)] == [30, 60, 120, 1920, 3600, 3600]
    assert _backoff(1, retry_after=120) == 120


def stripe_error(cls, status, code=None, message="x"):
    if cls is stripe.InvalidRequestError:
        return cls(message, None, http_status=status, code=code)
    return cls(message, http_status=status, code=code)


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (
            stripe_error(stripe.InvalidRequestError, 404, "resource_missing"),
            "permanent",
            "resource_missing",
        ),
        (
            stripe_error(stripe.InvalidRequestError, 400, "parameter_unknown"),
            "permanent",
            "stripe_refused",
        ),
        (stripe_error(stripe.AuthenticationError, 401), "permanent", "stripe_refused"),
        (stripe_error(stripe.RateLimitError, 429, "rate_limit"), "transient", "rate_limited"),
        (stripe_error(stripe.APIError, 502), "transient", "stripe_unavailable"),
        (stripe.APIConnectionError("refused"), "transient", "stripe_unavailable"),
        (
            RuntimeError("dj-stripe encountered an empty field Coupon.coupon = None"),
            "permanent",
            "unmappable",
        ),
        (KeyError("items"), "permanent", "unmappable"),
        (DataError("value too long for type character varying(255)"), "permanent", "unmappable"),
        (OperationalError("server closed the connection unexpectedly"), "transient", "database"),
    ],
)
def test_sync_failures_are_classified(error, kind, code):
    failure = classify_failure(error)

    assert (failure.kind, failure.code) == (kind, code)


def test_an_object_stripe_no_longer_has_is_a_permanent_problem(deliver, fake_stripe):
    customer, sent = unknown_customer_intent()
    # A 404 that dj-stripe's "object is absent" allowlist does not recognise re-raises.
    fake_stripe.fail(f"/v1/customers/{customer['id']}", method="GET", status=404, message="Gone")

    deliver(sent)

    problem = SyncProblem.objects.get()
    assert (problem.kind, problem.code) == ("permanent", "resource_missing")
    assert not SyncQueue.objects.exists()


def test_staff_see_sync_problems_and_editors_retry_them(
    client, deliver, fake_stripe, django_capture_on_commit_callbacks
):
    customer, sent = unknown_customer_intent()
    fake_stripe.fail(f"/v1/customers/{customer['id']}", method="GET", status=404, message="Gone")
    delivery = deliver(sent)
    url = reverse("admin:integrations_syncproblem_changelist")

    client.force_login(staff_user("viewer"))
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert sent["id"] in html
    assert reverse("admin:djstripe_webhookeventtrigger_change", args=[delivery.pk]) in html
    assert client.get(url, {"kind__exact": "permanent"}).status_code == 200
    assert client.get(url, {"event_type": "payment_intent.succeeded"}).status_code == 200
    assert page.context["action_form"] is None  # viewers may not retry

    client.force_login(staff_user("editor"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"action": "retry", "_selected_action": [delivery.pk]}, follow=True
        )

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.processed, delivery.exception) == (True, "")
    assert not SyncProblem.objects.exists()


def test_a_stored_delivery_that_is_not_an_event_fails_alone(deliver, fake_stripe, db):
    customer = create_customer()
    broken = WebhookEventTrigger.objects.create(
        remote_ip="127.0.0.1", headers={}, body='{"id": "evt_old", "object": "event"}', valid=True
    )
    SyncQueue.objects.create(delivery_id=broken.pk, due=broken.created)

    deliver(event("customer.created", customer))

    assert WebhookEventTrigger.objects.filter(processed=True).count() == 1
    problem = SyncProblem.objects.get()
    assert (problem.delivery_id, problem.kind, problem.code) == (
        broken.pk,
        "permanent",
        "unmappable",
    )
    assert problem.detail == "KeyError: 'data'"
    assert not SyncQueue.objects.exists()


def test_a_problems_page_shows_its_detail_but_never_a_key(client, db):
    delivery = WebhookEventTrigger.objects.create(
        remote_ip="127.0.0.1", headers={}, body="{}", valid=True
    )
    problem = SyncProblem.objects.create(
        delivery=delivery,
        event_id="evt_1",
        event_type="customer.updated",
        kind="permanent",
        code="stripe_refused",
        detail="Stripe 401 AuthenticationError: Invalid API Key provided: sk_test_abc123",
    )
    client.force_login(staff_user("viewer"))

    page = client.get(reverse("admin:integrations_syncproblem_change", args=[problem.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Invalid API Key provided: [redacted]" in html
    assert "sk_test_abc123" not in html
