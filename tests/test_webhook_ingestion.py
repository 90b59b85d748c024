"""Stripe webhooks: verified, recorded, acknowledged, then synced by a worker."""

import json
import time

from djstripe.models import Customer, Event, PaymentIntent, WebhookEventTrigger
from time_machine import travel

from integrations.models import SyncMark
from integrations.stripe_events import sign
from integrations.stripe_webhooks import (
    SYNC_QUEUED,
    process_webhook,
    retry_unprocessed_webhooks,
    sync_webhooks,
)
from tests.builders import create_customer, create_payment_intent, event, random_id
from tests.conftest import WEBHOOK_SECRET


def test_a_signed_customer_created_event_is_recorded_and_synced(post_event, fake_stripe):
    customer = create_customer(email="hanako@example.test", name="山田 花子")
    sent = event("customer.created", customer)

    response = post_event(sent)

    assert response.status_code == 200
    trigger = WebhookEventTrigger.objects.get()
    assert response.json() == {"received": sent["id"], "trigger": trigger.pk}
    assert (trigger.valid, trigger.processed, trigger.exception) == (True, True, "")
    assert trigger.event_id == sent["id"]
    assert json.loads(trigger.body) == sent
    assert Event.objects.get(id=sent["id"]).type == "customer.created"
    synced = Customer.objects.get(id=customer["id"])
    assert (synced.email, synced.name) == ("hanako@example.test", "山田 花子")


def test_a_signed_payment_intent_succeeded_event_syncs_the_payment_intent(post_event, fake_stripe):
    intent = create_payment_intent(amount=150000, currency="usd")

    response = post_event(event("payment_intent.succeeded", intent))

    assert response.status_code == 200
    synced = PaymentIntent.objects.get(id=intent["id"])
    assert (synced.stripe_data["amount"], synced.stripe_data["currency"]) == (150000, "usd")
    assert synced.stripe_data["status"] == "succeeded"


def test_a_duplicate_delivery_is_recorded_but_processed_once(post_event, fake_stripe):
    customer = create_customer()
    sent = event("customer.created", customer)

    first = post_event(sent)
    second = post_event(sent)

    assert (first.status_code, second.status_code) == (200, 200)
    triggers = list(WebhookEventTrigger.objects.order_by("pk"))
    assert [(t.valid, t.processed, t.event_id) for t in triggers] == [
        (True, True, sent["id"]),
        (True, True, sent["id"]),
    ]
    assert Event.objects.filter(id=sent["id"]).count() == 1
    # The mirror syncs from the verified payload: neither delivery asks Stripe again.
    assert fake_stripe.requests(path=f"/v1/customers/{customer['id']}", method="GET") == []


def test_an_event_type_kanri_does_not_know_is_acknowledged_and_kept(post_event):
    sent = event("kanri_future.thing.happened", {"id": "thing_1", "object": "thing"})

    response = post_event(sent)

    assert response.status_code == 200
    trigger = WebhookEventTrigger.objects.get()
    assert (trigger.valid, trigger.processed) == (True, True)
    assert Event.objects.get(id=sent["id"]).type == "kanri_future.thing.happened"


def test_a_bad_signature_is_rejected_recorded_and_not_processed(post_event, fake_stripe):
    sent = event("customer.created", {"id": "cus_forged", "object": "customer"})

    response = post_event(sent, secret="whsec_someone_else")

    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid signature: No signatures found matching")
    trigger = WebhookEventTrigger.objects.get()
    assert (trigger.valid, trigger.processed) == (False, False)
    assert trigger.exception.startswith("Invalid signature")
    assert json.loads(trigger.body) == sent
    assert not Event.objects.exists()
    assert fake_stripe.requests() == []


def test_a_signature_older_than_the_tolerance_is_rejected(post_event):
    sent = event("customer.created", {"id": "cus_old", "object": "customer"})

    response = post_event(sent, timestamp=int(time.time()) - 3600)

    assert response.status_code == 400
    assert "Timestamp outside the tolerance zone" in response.json()["error"]
    assert not Event.objects.exists()


def test_a_missing_signature_is_rejected_and_not_stored(post_event):
    response = post_event(event("customer.created", {"id": "cus_1"}), signature=False)

    assert response.status_code == 400
    assert response.json() == {"error": "Missing Stripe-Signature header"}
    assert not WebhookEventTrigger.objects.exists()


def test_malformed_json_with_a_valid_signature_is_rejected(post_event):
    response = post_event(body='{"id": "evt_1", "object": "event",')

    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed JSON: ")
    trigger = WebhookEventTrigger.objects.get()
    assert (trigger.valid, trigger.body) == (False, '{"id": "evt_1", "object": "event",')
    assert not Event.objects.exists()


def test_json_that_is_not_a_stripe_event_is_rejected(post_event):
    response = post_event(body=json.dumps({"id": "evt_1", "object": "event", "livemode": False}))

    assert response.status_code == 400
    assert response.json() == {"error": "Malformed event: missing type, data"}
    assert not Event.objects.exists()


def test_an_unknown_endpoint_is_not_found(post_event):
    response = post_event(
        event("customer.created", {"id": "cus_1"}),
        url="/stripe/webhook/00000000-0000-4000-8000-000000000000/",
    )

    assert response.status_code == 404
    assert response.json() == {"error": "Unknown webhook endpoint"}
    assert not WebhookEventTrigger.objects.exists()


def test_an_oversized_body_is_refused_before_it_is_read(post_event, settings):
    settings.STRIPE_WEBHOOK_MAX_BYTES = 1000
    big = event("customer.created", {"id": "cus_1", "object": "customer", "note": "x" * 2000})

    response = post_event(big)

    assert response.status_code == 413
    assert response.json() == {"error": "Body larger than 1000 bytes"}
    # The delivery is kept as evidence, without the body it was not worth reading.
    trigger = WebhookEventTrigger.objects.get()
    assert (trigger.valid, trigger.body, trigger.exception) == (
        False,
        "",
        "Body larger than 1000 bytes",
    )


def test_only_post_is_allowed(client, webhook_url):
    response = client.get(webhook_url)

    assert response.status_code == 405
    assert not WebhookEventTrigger.objects.exists()


def test_a_failed_sync_is_kept_and_retried_by_the_sweeper(
    post_event, fake_stripe, django_capture_on_commit_callbacks
):
    # The payment intent's customer is not mirrored yet, so the sync fetches it.
    customer = create_customer()
    sent = event("payment_intent.succeeded", create_payment_intent(customer=customer["id"]))
    fake_stripe.fail(f"/v1/customers/{customer['id']}", method="GET", status=500)

    response = post_event(sent)

    assert response.status_code == 200  # acknowledged: the evidence is safe with us
    trigger = WebhookEventTrigger.objects.get()
    assert (trigger.valid, trigger.processed) == (True, False)
    assert trigger.exception == "APIError: Injected failure"
    assert not Event.objects.exists()

    assert retry_unprocessed_webhooks() == 0  # too recent to retry yet (30 s backoff)
    with travel(time.time() + 31), django_capture_on_commit_callbacks(execute=True):
        assert retry_unprocessed_webhooks() == 1
    trigger.refresh_from_db()
    assert (trigger.processed, trigger.exception, trigger.event_id) == (True, "", sent["id"])
    assert PaymentIntent.objects.get(id=sent["data"]["object"]["id"]).customer_id == customer["id"]


def test_a_signature_for_another_body_does_not_verify_this_one(post_event):
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))
    other = json.dumps(event("customer.created", {"id": random_id("cus"), "object": "customer"}))

    response = post_event(body=body, signature=sign(other, WEBHOOK_SECRET))

    assert response.status_code == 400
    assert not Event.objects.exists()


def test_only_one_sync_batch_is_queued_at_a_time(db):
    assert SyncMark.claim(SYNC_QUEUED, 60) is True
    assert SyncMark.claim(SYNC_QUEUED, 60) is False
    SyncMark.release(SYNC_QUEUED)
    assert SyncMark.claim(SYNC_QUEUED, 60) is True
    with travel(time.time() + 61):  # a batch lost with its worker
        assert SyncMark.claim(SYNC_QUEUED, 60) is True


def record_deliveries(monkeypatch, post_event, events):
    """Deliver events but keep their syncs pending (as if the workers were busy)."""
    with monkeypatch.context() as patch:
        patch.setattr("integrations.stripe_webhooks.request_sync", lambda: None)
        for sent in events:
            assert post_event(sent).status_code == 200


def test_a_sync_batch_yields_the_worker_after_its_time_budget(
    post_event, fake_stripe, monkeypatch, django_capture_on_commit_callbacks
):
    customers = [create_customer(email=f"c{i}@example.test") for i in range(3)]
    record_deliveries(monkeypatch, post_event, [event("customer.created", c) for c in customers])
    queued = []
    monkeypatch.setattr("integrations.stripe_webhooks.enqueue", lambda *a: queued.append(a))

    assert sync_webhooks(budget=0) == 1  # one delivery, then back of the queue

    assert queued == [("integrations.stripe_webhooks.sync_webhooks",)]
    assert WebhookEventTrigger.objects.filter(processed=True).count() == 1


def test_a_stripe_outage_stops_the_batch_instead_of_holding_the_worker(
    post_event, fake_stripe, monkeypatch, settings
):
    # Payment intents of customers not mirrored yet: each sync must fetch its customer,
    # two at a time; Stripe fails them all.
    settings.KANRI_MIRROR_FETCHES = 2
    customers = [create_customer() for _ in range(4)]
    record_deliveries(
        monkeypatch,
        post_event,
        [
            event("payment_intent.succeeded", create_payment_intent(customer=c["id"]))
            for c in customers
        ],
    )
    for c in customers:
        fake_stripe.fail(f"/v1/customers/{c['id']}", method="GET", status=503)

    assert sync_webhooks() == 0

    # One wave of two calls, then nothing more is asked of Stripe in that batch.
    asked = {r["path"].rsplit("/", 1)[1] for r in fake_stripe.requests(method="GET")}
    assert len(asked) == 2 and len(fake_stripe.requests(method="GET")) == 2
    exceptions = {
        json.loads(t.body)["data"]["object"]["customer"]: t.exception
        for t in WebhookEventTrigger.objects.all()
    }
    assert exceptions == {
        c["id"]: "APIError: Injected failure" if c["id"] in asked else "" for c in customers
    }


def test_syncing_a_delivery_twice_does_nothing_the_second_time(post_event, fake_stripe):
    post_event(event("customer.created", create_customer()))
    trigger = WebhookEventTrigger.objects.get()
    fetches = fake_stripe.requests()

    assert process_webhook(trigger.pk) is None
    assert fake_stripe.requests() == fetches
