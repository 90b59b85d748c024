"""Workflow definitions: validation with clear messages, versions, and pinned runs."""

import copy

import pytest
from django.core.exceptions import ValidationError

from automations.definitions import activate, create_workflow, snapshot, validate
from automations.models import Run, Step, WorkflowVersion
from automations.templates import refund_early_fraud_warnings, tag_vip_customers
from tests.builders import event, payment_intent_dict


def problems(definition):
    with pytest.raises(ValidationError) as caught:
        validate(definition)
    return caught.value.messages


def test_the_templates_are_valid():
    validate(tag_vip_customers())
    validate(refund_early_fraud_warnings())


def test_two_steps_with_one_name_are_refused():
    definition = tag_vip_customers()
    definition["steps"][1]["then"][0]["name"] = "notify_team"

    assert problems(definition) == [
        "Step 'notify_team': two steps have this name; each needs its own."
    ]


def test_a_refund_without_an_amount_is_refused():
    definition = refund_early_fraud_warnings()
    del definition["steps"][1]["then"][0]["config"]["amount"]

    assert problems(definition) == ["Step 'refund', amount: This field is required."]


def test_references_to_unknown_or_later_steps_are_refused():
    definition = refund_early_fraud_warnings()
    definition["steps"][0]["config"]["charge"] = "{{steps.refund.charge}}"
    definition["steps"][1]["else"][0]["config"]["body"] = "{{steps.chrge.amount}}"

    assert problems(definition) == [
        "Step 'charge': unknown reference {{steps.refund.charge}}: no step 'refund' runs "
        "before this point.",
        "Step 'ask_team': unknown reference {{steps.chrge.amount}}: no step 'chrge' runs "
        "before this point.",
    ]


def test_a_step_inside_a_branch_cannot_be_referenced_after_it():
    definition = refund_early_fraud_warnings()
    definition["steps"].append(
        {
            "name": "tell",
            "kind": "slack.post_message",
            "config": {"channel": "C1", "text": "Refunded {{steps.refund.id}}"},
        }
    )

    assert problems(definition) == [
        "Step 'tell': unknown reference {{steps.refund.id}}: no step 'refund' runs before "
        "this point."
    ]


def test_bad_conditions_are_refused_with_where_they_are():
    definition = tag_vip_customers()
    definition["conditions"] = [
        [
            {
                "field": "trigger.data.object.amount",
                "op": "gt",
                "value": "1,000",
                "currency": "usd",
            },
            {"field": "trigger.data.object.currency", "op": "eq", "value": ""},
            {"field": "data.object.amount", "op": "bigger", "value": 1},
        ]
    ]
    definition["steps"][1]["conditions"] = []

    assert problems(definition) == [
        "Conditions, condition on trigger.data.object.amount: a money value is a whole number "
        "of minor units.",
        "Conditions, condition on trigger.data.object.currency: enter a value.",
        "Conditions, condition on data.object.amount: unknown reference {{data.object.amount}}: "
        "it must start with trigger, steps, run, workflow.",
        "Conditions, condition on data.object.amount: unknown operator 'bigger'.",
        "Step 'is_vip': a branch needs at least one condition.",
    ]


def test_unknown_actions_and_missing_triggers_are_refused():
    definition = tag_vip_customers()
    definition["trigger"] = {"kind": "event", "event_type": ""}
    definition["steps"][0]["kind"] = "fax.send"

    assert problems(definition) == [
        "Trigger: choose the Stripe event that starts the workflow.",
        "Step 'notify_team': Unknown action 'fax.send'.",
    ]


def test_the_rows_of_a_created_workflow_snapshot_back_to_its_definition(db):
    definition = refund_early_fraud_warnings()

    workflow = create_workflow(definition)

    assert snapshot(workflow) == validate(definition)
    assert workflow.steps.get(name="refund").parent.name == "under_dispute_fee"
    assert workflow.steps.get(name="refund").arm == Step.Arm.THEN
    assert workflow.conditions.get().step.name == "under_dispute_fee"


def test_activating_makes_a_version_only_when_something_changed(db):
    workflow = create_workflow(tag_vip_customers())

    first = activate(workflow)
    again = activate(workflow)
    workflow.steps.filter(name="tag_vip").update(
        config={"customer": "{{trigger.data.object.customer}}", "metadata": {"Tier": "Gold"}}
    )
    second = activate(workflow)

    assert (first.number, again.pk, second.number) == (1, first.pk, 2)
    workflow.refresh_from_db()
    assert workflow.active_version == second
    with pytest.raises(ValidationError, match="immutable"):
        first.save()


def test_a_run_keeps_the_version_it_started_with(
    db, stripe_account, post_event, smtp_server, fake_stripe
):
    workflow = create_workflow(tag_vip_customers(team="ops@example.test"))
    v1 = activate(workflow)
    definition_v1 = copy.deepcopy(v1.definition)
    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    workflow.steps.filter(name="notify_team").update(
        config={**workflow.steps.get(name="notify_team").config, "subject": "Changed"}
    )
    v2 = activate(workflow)
    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    first, second = Run.objects.order_by("pk")
    assert (first.version, second.version) == (v1, v2)
    assert WorkflowVersion.objects.get(pk=v1.pk).definition == definition_v1
    assert [m["Subject"] for _, _, m in smtp_server.messages][1] == "Changed"
