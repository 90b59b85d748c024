"""End to end through a real django-q2 cluster process, on the ORM broker and on Redis."""

import pytest
from djstripe.models import Customer, PaymentIntent, WebhookEventTrigger

from automations.models import Run, Workflow
from automations.templates import personalise_large_orders
from tests.builders import (
    create_customer,
    create_payment_intent,
    create_workflow,
    event,
    payment_intent_dict,
)
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


def test_a_workflow_run_goes_through_the_cluster_to_the_mail_server(
    q_cluster, post_event, smtp_server
):
    workflow = create_workflow(
        personalise_large_orders(team="ops@example.test"), status=Workflow.Status.ACTIVE
    )
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))

    assert post_event(sent).status_code == 200

    run = wait_until(
        lambda: Run.objects.filter(workflow=workflow, status=Run.Status.SUCCEEDED).first(),
        timeout=30,
        message="the run to succeed",
    )
    assert run.trigger_key == sent["id"]
    assert list(run.steps.values_list("step_name", "status")) == [("notify_team", "succeeded")]
    [(_, recipients, message)] = smtp_server.messages
    assert recipients == ["ops@example.test"]
    assert (
        message["Subject"] == f"Large order {sent['data']['object']['id']}: add a hand-written note"
    )
