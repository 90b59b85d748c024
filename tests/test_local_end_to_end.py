"""Trying Kanri locally with no developer: `trigger_stripe_event` sends every event type the
catalog offers, its objects made in the fake Stripe so that the mirror's sync succeeds;
and the README's walk-through of scenario D (subscription cancelled → Slack) on a real
`run_kanri`, until the local Slack stand-in shows the message."""

import copy
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from djstripe.models import Subscription, WebhookEventTrigger

from automations import workflows
from automations.catalog import EVENT_TYPES
from automations.models import Run, Workflow
from integrations.devstack.sample_events import DEFAULT_PRODUCT, object_of, sample_event
from integrations.devstack.slack_api import received_messages
from tests.conftest import BASE_DIR, free_port, wait_until
from tests.test_run_kanri import KanriRun

OPTIONS = {
    "amount": 2900,
    "currency": "usd",
    "email": "taro@example.test",
    "name": "Taro Yamada",
    "product": DEFAULT_PRODUCT,
}


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_catalog_event_type_is_sent_and_its_delivery_syncs(
    event_type, fake_stripe, post_event
):
    event = sample_event(event_type, OPTIONS)

    assert post_event(event).status_code == 200
    sent = event["data"]["object"]
    assert (event["type"], sent["object"]) == (event_type, EVENT_TYPES[event_type]["object"])
    assert object_of(event_type) == EVENT_TYPES[event_type]["object"]
    delivery = WebhookEventTrigger.objects.get()
    assert (delivery.valid, delivery.processed, delivery.exception) == (True, True, "")
    if sent.get("customer"):
        customer = fake_stripe.requests(path=f"/v1/customers/{sent['customer']}")
        assert customer == [] or customer[0]["method"] == "GET"


def test_a_cancelled_subscription_is_canceled_and_ended_with_its_customer_and_product(
    fake_stripe, post_event
):
    event = sample_event("customer.subscription.deleted", OPTIONS)

    post_event(event)

    sent = event["data"]["object"]
    assert (sent["status"], sent["ended_at"] is not None) == ("canceled", True)
    assert sent["cancellation_details"]["reason"] == "cancellation_requested"
    price = sent["items"]["data"][0]["price"]
    assert (price["product"], price["unit_amount"], price["recurring"]["interval"]) == (
        DEFAULT_PRODUCT,
        2900,
        "month",
    )
    mirrored = Subscription.objects.get(id=sent["id"])
    assert (mirrored.status, mirrored.customer_id) == ("canceled", sent["customer"])


def test_the_command_refuses_an_event_type_whose_object_it_cannot_make(db):
    with pytest.raises(CommandError, match=r"Cannot make a payout\.paid event"):
        call_command("trigger_stripe_event", "payout.paid")


# ---------------------------------------------------------------- the README's walk-through


def stand_in_messages(port):
    return received_messages(f"http://127.0.0.1:{port}/_kanri/messages")


@pytest.fixture
def local_kanri(transactional_db, fake_stripe, settings, tmp_path):
    """`make run` as a new user has it: setup_local done, then run_kanri with the fake
    Stripe API (here the suite's, already listening) and the Slack stand-in it starts."""
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path  # the demo admin's password file: not the checkout's
    port = free_port()
    call_command("setup_local", base_url=f"http://127.0.0.1:{port}", stdout=StringIO())
    run = KanriRun(tmp_path, port=port, STRIPE_API_HOST=fake_stripe.url)
    wait_until(run.serving, timeout=60, message="run_kanri's web server")
    wait_until(lambda: run.pids("task cluster"), message="the task cluster")
    yield run
    run.stop()


def test_readme_scenario_d_a_cancelled_subscription_shows_in_the_slack_stand_in(
    local_kanri, settings, client
):
    # 1. `manage.py install_templates subscription_canceled_to_slack`
    call_command("install_templates", "subscription_canceled_to_slack", stdout=StringIO())
    workflow = Workflow.objects.get(name="Cancelled subscriptions to Slack")
    # 2. In the branch "only_this_product", the product trigger_stripe_event sells; Activate.
    data = copy.deepcopy(workflows.draft(workflow))
    data["steps"][0]["conditions"][0][0]["value"] = DEFAULT_PRODUCT
    admin = get_user_model().objects.get(username="admin")
    workflows.save_draft(workflow, data, user=admin)
    workflows.activate(workflow, user=admin)

    # 3. `manage.py trigger_stripe_event customer.subscription.deleted --amount 2900`
    sent = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "trigger_stripe_event",
            "customer.subscription.deleted",
            "--amount",
            "2900",
        ],
        cwd=BASE_DIR,
        env=local_kanri.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("Sent customer.subscription.deleted evt_")

    # 4. The message, in the Slack stand-in (the admin lists what it received).
    [message] = wait_until(
        lambda: stand_in_messages(local_kanri.slack_port), timeout=60, message="the Slack post"
    )
    assert message["channel"] == "#customer-success"
    lines = message["text"].split("\n")
    assert lines[:2] == [
        "<!here> A subscription to Kanri Pro has ended.",
        "Customer: Taro Yamada (taro@example.test)",
    ]
    assert lines[2].startswith("Plan: ") and lines[2].endswith(" every 1 month")
    assert "29.00" in lines[2]
    run = Run.objects.get(workflow=workflow)
    assert run.status == Run.Status.SUCCEEDED

    settings.SLACK_API_URL = local_kanri.env["SLACK_API_URL"]
    client.force_login(admin)
    listed = client.get("/admin/integrations/connection/slack-messages/").content.decode()
    assert "A subscription to Kanri Pro has ended." in listed
    assert "<code>#customer-success</code>" in listed
