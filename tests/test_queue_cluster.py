"""End to end through a real django-q2 cluster process, on the ORM broker and on Redis."""

import pytest
from djstripe.models import Customer, PaymentIntent, WebhookEventTrigger

from tests.builders import create_customer, create_payment_intent, event
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster


def test_webhooks_are_acknowledged_then_synced_by_the_cluster(q_cluster, post_event, fake_stripe):
    customer = create_customer(email="jiro@example.test")
    intent = create_payment_intent(amount=250000, currency="usd", customer=customer["id"])

    responses = [
        post_event(event("customer.created", customer)),
        post_event(event("payment_intent.succeeded", intent)),
    ]

    assert [r.status_code for r in responses] == [200, 200]
    wait_until(
        lambda: WebhookEventTrigger.objects.filter(processed=True).count() == 2,
        timeout=30,
        message="the cluster to process both webhooks",
    )
    assert Customer.objects.get(id=customer["id"]).email == "jiro@example.test"
    assert PaymentIntent.objects.get(id=intent["id"]).stripe_data["amount"] == 250000
    assert list(WebhookEventTrigger.objects.values_list("exception", flat=True)) == ["", ""]
