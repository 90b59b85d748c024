"""Stripe's three example workflows (scenarios A1-A3), each from a signed webhook POST
through django-q2 (inline) to the exact mail, Stripe request and audit rows."""

import json
import time

import pytest
from djstripe.models import WebhookEventTrigger
from time_machine import travel

from automations.engine.conditions import explain
from automations.models import Run, RunStep, Workflow
from automations.money import format_money
from automations.tasks import retry_due_runs
from automations.templates import (
    personalise_large_orders,
    refund_early_fraud_warnings,
    tag_vip_customers,
)
from integrations import stripe_client
from tests.builders import (
    create_customer,
    create_payment_intent,
    create_workflow,
    early_fraud_warning,
    event,
    payment_intent_dict,
)

TEAM = "orders@example.test"


@pytest.fixture
def world(stripe_account, fake_stripe, smtp_server):
    return {"stripe": fake_stripe, "mail": smtp_server}


def activate(definition):
    return create_workflow(definition, status=Workflow.Status.ACTIVE)


def steps_of(run):
    return list(
        run.steps.order_by("pk").values_list("step_name", "kind", "attempt", "status", "error")
    )


# ---------------------------------------------------------------- A1


def test_a1_a_payment_over_1000_usd_emails_the_team(world, post_event):
    workflow = activate(personalise_large_orders(team=TEAM))
    customer = create_customer()
    intent = create_payment_intent(amount=150000, currency="usd", customer=customer["id"])
    sent = event("payment_intent.succeeded", intent)

    assert post_event(sent).status_code == 200

    [(sender, recipients, message)] = world["mail"].messages
    assert (sender, recipients) == ("kanri@localhost", [TEAM])
    assert message["Subject"] == f"Large order {intent['id']}: add a hand-written note"
    assert message.get_content() == (
        "A customer just paid $1,500.00.\n\n"
        f"Customer ID: {customer['id']}\n"
        "Amount: $1,500.00\n"
        f"Payment: {intent['id']}\n\n"
        "Please add a hand-written thank-you note before shipping.\n"
    )
    run = Run.objects.get()
    assert (run.workflow, run.version.number, run.trigger_key, run.status, run.attempt) == (
        workflow,
        1,
        sent["id"],
        Run.Status.SUCCEEDED,
        1,
    )
    assert run.snapshot == sent
    step = run.steps.get()
    assert (step.step_name, step.status, step.attempt, step.error) == (
        "notify_team",
        RunStep.Status.SUCCEEDED,
        1,
        "",
    )
    assert step.input == {
        "from": "Kanri <kanri@localhost>",
        "to": [TEAM],
        "subject": message["Subject"],
        "body": message.get_content(),
        "headers": {"X-Kanri-Step": f"kanri-{workflow.pk}-{run.pk}-notify_team"},
    }
    assert step.output == {"to": [TEAM], "subject": message["Subject"]}
    assert message["X-Kanri-Step"] == step.idempotency_key


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(99999, "usd"), (150000, "eur"), (1500, "jpy")],
    ids=["999.99 USD", "1,500 EUR", "1,500 JPY"],
)
def test_a1_other_payments_start_no_run(world, post_event, amount, currency):
    activate(personalise_large_orders(team=TEAM))

    assert (
        post_event(
            event("payment_intent.succeeded", payment_intent_dict(amount, currency))
        ).status_code
        == 200
    )

    assert not Run.objects.exists()
    assert world["mail"].messages == []


def test_a1_a_redelivered_event_starts_one_run(world, post_event):
    activate(personalise_large_orders(team=TEAM))
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))

    post_event(sent)
    post_event(sent)

    assert Run.objects.count() == 1
    assert len(world["mail"].messages) == 1


def test_a1_a_paused_workflow_starts_nothing(world, post_event):
    workflow = activate(personalise_large_orders(team=TEAM))
    workflow.status = Workflow.Status.PAUSED
    workflow.save()

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    assert not Run.objects.exists()


# ---------------------------------------------------------------- A2


def test_a2_over_2000_usd_tags_the_customer_vip(world, post_event):
    workflow = activate(tag_vip_customers(team=TEAM))
    customer = create_customer()
    intent = create_payment_intent(amount=250000, currency="usd", customer=customer["id"])

    post_event(event("payment_intent.succeeded", intent))

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    assert steps_of(run) == [
        ("notify_team", "email.send", 1, "succeeded", ""),
        ("is_vip", "branch", 1, "succeeded", ""),
        ("tag_vip", "stripe.update_customer_metadata", 1, "succeeded", ""),
    ]
    key = f"kanri-{workflow.pk}-{run.pk}-tag_vip"
    [update] = world["stripe"].requests(path=f"/v1/customers/{customer['id']}", method="POST")
    assert (update["params"], update["idempotency_key"]) == (
        {"metadata[Tier]": "VIP", "metadata[kanri_run]": str(run.pk), "metadata[kanri_step]": key},
        key,
    )
    branch = run.steps.get(step_name="is_vip")
    assert branch.output["arm"] == "then"
    # The audit keeps the reason's code; the run page words it in the reader's language.
    assert branch.output["conditions"][0]["reason"] == "money"
    assert explain(branch.output["conditions"][0]) == (
        f"{format_money(250000, 'usd')} is greater than {format_money(200000, 'usd')}"
    )
    assert run.steps.get(step_name="tag_vip").output["metadata"]["Tier"] == "VIP"
    assert len(world["mail"].messages) == 1


def test_a2_between_1000_and_2000_usd_takes_all_other_cases_and_succeeds(world, post_event):
    activate(tag_vip_customers(team=TEAM))
    intent = payment_intent_dict(150000, "usd")

    post_event(event("payment_intent.succeeded", intent))

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    assert steps_of(run) == [
        ("notify_team", "email.send", 1, "succeeded", ""),
        ("is_vip", "branch", 1, "succeeded", ""),
    ]
    assert run.steps.get(step_name="is_vip").output["arm"] == "else"
    assert world["stripe"].requests(method="POST", path="/v1/customers") == []
    assert len(world["mail"].messages) == 1


def test_a2_kanris_own_customer_update_does_not_retrigger_the_workflow(world, post_event):
    workflow = activate(tag_vip_customers(team=TEAM))
    customer_updated = event(
        "payment_intent.succeeded",
        payment_intent_dict(250000, "usd"),
    )
    customer_updated["request"] = {"id": "req_1", "idempotency_key": f"kanri-{workflow.pk}-9-x"}

    post_event(customer_updated)

    assert not Run.objects.exists()


# ---------------------------------------------------------------- A3


def fraud_warning_for(world, amount):
    intent = create_payment_intent(amount=amount, currency="usd")
    warning = early_fraud_warning(intent["latest_charge"], intent["id"])
    world["stripe"].seed(warning)
    return intent["latest_charge"], event("radar.early_fraud_warning.created", warning)


def refunds_of(charge):
    return stripe_client.request("get", "/v1/refunds", {"charge": charge})


def test_a3_a_warning_on_a_charge_under_15_usd_refunds_it_once(world, post_event):
    workflow = activate(refund_early_fraud_warnings(team=TEAM))
    charge, warning = fraud_warning_for(world, 1000)

    post_event(warning)
    post_event(warning)  # Stripe delivers it again

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    assert steps_of(run) == [
        ("charge", "stripe.retrieve_charge", 1, "succeeded", ""),
        ("under_dispute_fee", "branch", 1, "succeeded", ""),
        ("refund", "stripe.create_refund", 1, "succeeded", ""),
    ]
    key = f"kanri-{workflow.pk}-{run.pk}-refund"
    [refund_request] = world["stripe"].requests(path="/v1/refunds", method="POST")
    assert refund_request["params"] == {
        "charge": charge,
        "amount": "1000",
        "reason": "fraudulent",
        "metadata[early_fraud_warning]": warning["data"]["object"]["id"],
        "metadata[kanri_run]": str(run.pk),
        "metadata[kanri_step]": key,
    }
    assert refund_request["idempotency_key"] == key
    [refund] = refunds_of(charge)["data"]
    assert (refund["amount"], refund["charge"]) == (1000, charge)
    assert run.steps.get(step_name="refund").output["id"] == refund["id"]
    assert world["mail"].messages == []


def test_a3_a_lost_refund_answer_is_retried_and_still_refunds_once(
    world, post_event, django_capture_on_commit_callbacks
):
    workflow = activate(refund_early_fraud_warnings(team=TEAM))
    charge, warning = fraud_warning_for(world, 1000)
    # Stripe makes the refund, but the answer never reaches the worker.
    world["stripe"].fail("/v1/refunds", after=True, status=500)

    post_event(warning)

    run = Run.objects.get()
    assert run.status == Run.Status.RETRYING
    assert steps_of(run) == [
        ("charge", "stripe.retrieve_charge", 1, "succeeded", ""),
        ("under_dispute_fee", "branch", 1, "succeeded", ""),
        ("refund", "stripe.create_refund", 1, "retrying", "Stripe 500 APIError: Injected failure"),
    ]
    post_event(warning)  # redelivered while the run waits
    assert retry_due_runs() == 0  # not due yet

    with travel(time.time() + 31), django_capture_on_commit_callbacks(execute=True):
        assert retry_due_runs() == 1

    run.refresh_from_db()
    assert (run.status, run.attempt, run.error) == (Run.Status.SUCCEEDED, 2, "")
    assert steps_of(run)[3] == ("refund", "stripe.create_refund", 2, "succeeded", "")
    key = f"kanri-{workflow.pk}-{run.pk}-refund"
    posts = world["stripe"].requests(path="/v1/refunds", method="POST")
    assert [(p["idempotency_key"], p.get("replayed")) for p in posts] == [(key, None), (key, True)]
    assert len(refunds_of(charge)["data"]) == 1
    # The charge was fetched once: the retry reused the first attempt's output.
    assert len(world["stripe"].requests(path=f"/v1/charges/{charge}")) == 1


def test_a3_a_warning_on_a_larger_charge_asks_the_team(world, post_event):
    activate(refund_early_fraud_warnings(team=TEAM))
    charge, warning = fraud_warning_for(world, 2000)

    post_event(warning)

    run = Run.objects.get()
    assert [s[0] for s in steps_of(run)] == ["charge", "under_dispute_fee", "ask_team"]
    assert world["stripe"].requests(path="/v1/refunds") == []
    [(_, recipients, message)] = world["mail"].messages
    assert recipients == [TEAM]
    assert message["Subject"] == f"Investigate early fraud warning on {charge}"
    assert "Amount: $20.00\n" in message.get_content()


def test_a_failure_starting_runs_keeps_the_event_and_asks_stripe_to_retry(
    world, post_event, monkeypatch
):
    activate(personalise_large_orders(team=TEAM))
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))

    def broken(event):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr("automations.triggers.stripe_event.start_runs", broken)
        first = post_event(sent)
    second = post_event(sent)  # Stripe's retry

    assert first.status_code == 500
    assert first.json() == {
        "error": "Could not start workflow runs; the event is kept, please retry"
    }
    assert second.status_code == 200
    kept = WebhookEventTrigger.objects.order_by("pk").first()
    assert (kept.valid, json.loads(kept.body)["id"]) == (True, sent["id"])
    assert kept.exception == "Starting runs failed: RuntimeError: database went away"
    assert Run.objects.get().trigger_key == sent["id"]
    assert len(world["mail"].messages) == 1
