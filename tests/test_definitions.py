"""Workflow definitions: the one validator's located problems, versions, and pinned runs."""

import copy
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from automations import definition as definitions
from automations import templates, workflows
from automations.models import Run, Step, Workflow, WorkflowVersion
from automations.problems import InvalidDefinition, message
from automations.templates import refund_early_fraud_warnings, tag_vip_customers
from tests.builders import create_workflow, event, payment_intent_dict


def located(definition):
    """Return the validator's problems as (where, code) pairs."""
    return [(p.where, p.code) for p in definitions.validate(definition)]


def test_the_templates_are_valid(db):
    for template in templates.TEMPLATES.values():
        templates.ensure_filters(template())  # as install_templates does
        assert definitions.validate(template()) == []


def test_two_steps_with_one_name_are_refused_on_the_second():
    definition = tag_vip_customers()
    definition["steps"][1]["then"][0]["name"] = "notify_team"

    assert located(definition) == [("steps.1.then.0.name", "step_name_duplicate")]


def test_a_refund_without_an_amount_is_refused():
    definition = refund_early_fraud_warnings()
    del definition["steps"][1]["then"][0]["config"]["amount"]

    [problem] = definitions.validate(definition)
    assert (problem.where, problem.code) == ("steps.1.then.0.config.amount", "config_invalid")
    assert message(problem) == "This field is required."


def test_references_to_unknown_or_later_steps_are_refused():
    definition = refund_early_fraud_warnings()
    definition["steps"][0]["config"]["charge"] = "{{steps.refund.charge}}"
    definition["steps"][1]["else"][0]["config"]["body"] = "{{steps.chrge.amount}}"

    problems = definitions.validate(definition)
    assert [(p.where, p.code, p.params["step"]) for p in problems] == [
        ("steps.0.config.charge", "reference_step_unknown", "refund"),
        ("steps.1.else.0.config.body", "reference_step_unknown", "chrge"),
    ]
    assert message(problems[0]) == (
        "Unknown reference {{steps.refund.charge}}: no step 'refund' runs before this point."
    )


def test_a_step_inside_a_branch_cannot_be_referenced_after_it():
    definition = refund_early_fraud_warnings()
    definition["steps"].append(
        {
            "name": "tell",
            "kind": "slack.post_message",
            "config": {"channel": "C1", "text": "Refunded {{steps.refund.id}}"},
        }
    )

    assert located(definition) == [("steps.2.config.text", "reference_step_unknown")]


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
            {"field": "data.object.amount", "op": "gt", "value": 1},
            {"field": "trigger.data.object.amount", "op": "bigger", "value": 1, "currency": "usd"},
        ]
    ]
    definition["steps"][1]["conditions"] = []

    assert located(definition) == [
        ("conditions.0.0.value", "money_minor_units"),
        ("conditions.0.1.value", "value_required"),
        ("conditions.0.2.field", "reference_root"),
        ("conditions.0.3.op", "operator_unknown"),
        ("steps.1.conditions", "branch_conditions_required"),
    ]


# A corpus of bad definitions, each refused at the place it is wrong, whatever the entry.
REFUND = {
    "name": "refund",
    "kind": "stripe.create_refund",
    "config": {"charge": "{{trigger.data.object.latest_charge}}", "amount": 100},
}


def _vip(change):
    definition = tag_vip_customers()
    change(definition)
    return definition


def _set_email(field, value):
    return lambda d: d["steps"][0]["config"].__setitem__(field, value)


BAD_DEFINITIONS = {
    "a typo in a trigger field": (
        _set_email("subject", "Paid {{trigger.data.object.amout}}"),
        ("steps.0.config.subject", "reference_field_unknown"),
    ),
    "a dunder on the trigger": (
        _set_email("subject", "{{trigger.__class__}}"),
        ("steps.0.config.subject", "reference_private"),
    ),
    "a dunder on the object": (
        _set_email("body", "{{trigger.data.object.__dict__}}"),
        ("steps.0.config.body", "reference_private"),
    ),
    "a dunder on the run": (
        _set_email("body", "{{run.__class__}}"),
        ("steps.0.config.body", "reference_private"),
    ),
    "a private name": (
        _set_email("body", "{{trigger.data.object._secret}}"),
        ("steps.0.config.body", "reference_private"),
    ),
    "an unknown run field": (
        _set_email("body", "{{run.settings}}"),
        ("steps.0.config.body", "reference_field_unknown"),
    ),
    "an unknown filter": (
        _set_email("body", "{{trigger.data.object.amount | safe}}"),
        ("steps.0.config.body", "filter_unknown"),
    ),
    "the money filter on text": (
        _set_email("body", "{{trigger.data.object.description | money}}"),
        ("steps.0.config.body", "filter_type"),
    ),
    "unbalanced braces": (
        _set_email("body", "Paid {{trigger.data.object.amount"),
        ("steps.0.config.body", "reference_unbalanced"),
    ),
    "an unknown step kind": (
        lambda d: d["steps"][0].__setitem__("kind", "fax.send"),
        ("steps.0.kind", "action_unknown"),
    ),
    "a step kind that is not text": (
        lambda d: d["steps"][0].__setitem__("kind", ["email.send"]),
        ("steps.0.kind", "action_unknown"),
    ),
    "ordering a text field": (
        lambda d: d["conditions"][0].append(
            {"field": "trigger.data.object.description", "op": "gt", "value": "a"}
        ),
        ("conditions.0.1.op", "operator_type"),
    ),
    "'contains' on an amount": (
        lambda d: d["conditions"][0].append(
            {"field": "trigger.data.object.amount", "op": "contains", "value": 1, "currency": "usd"}
        ),
        ("conditions.0.1.op", "operator_type"),
    ),
    "a currency on text": (
        lambda d: d["conditions"][0].append(
            {"field": "trigger.data.object.status", "op": "eq", "value": "x", "currency": "usd"}
        ),
        ("conditions.0.1.currency", "currency_not_money"),
    ),
    "an amount without a currency": (
        lambda d: d["conditions"][0].__setitem__(
            0, {"field": "trigger.data.object.amount", "op": "gt", "value": 1000}
        ),
        ("conditions.0.0.currency", "currency_required"),
    ),
    "a step name references cannot use": (
        lambda d: d["steps"][0].__setitem__("name", "Notify-Team"),
        ("steps.0.name", "step_name_invalid"),
    ),
    "a refund amount formatted as money": (
        lambda d: d["steps"][1]["then"].append(
            {
                "name": "refund",
                "kind": "stripe.create_refund",
                "config": {
                    "charge": "{{trigger.data.object.latest_charge}}",
                    "amount": "{{trigger.data.object.amount | money}}",
                },
            }
        ),
        ("steps.1.then.1.config.amount", "amount_reference_type"),
    ),
    "an unknown trigger kind": (
        lambda d: d.__setitem__("trigger", {"kind": "cron"}),
        ("trigger.kind", "trigger_kind_unknown"),
    ),
    "a missing event type": (
        lambda d: d["trigger"].__setitem__("event_type", ""),
        ("trigger.event_type", "event_type_required"),
    ),
    "a manual trigger on an unknown object": (
        lambda d: d.__setitem__("trigger", {"kind": "manual", "object": "payout"}),
        ("trigger.object", "object_unknown"),
    ),
    "a refund with no money caps": (
        lambda d: d["steps"][1]["then"].append(REFUND),
        ("limits", "limits_required"),
    ),
    "a money cap of a negative amount": (
        lambda d: d.update(limits={"per_run": {"usd": -5}, "per_day": {"usd": 100}}),
        ("limits.per_run.usd", "limit_amount_invalid"),
    ),
    "a money cap in no currency": (
        lambda d: d.update(limits={"per_run": {"dollars": 5}, "per_day": {"usd": 100}}),
        ("limits.per_run", "currency_invalid"),
    ),
    "money caps as a list": (
        lambda d: d.update(limits=[1500]),
        ("limits", "limits_invalid"),
    ),
}


@pytest.mark.parametrize("name", BAD_DEFINITIONS)
def test_each_bad_definition_is_refused_where_it_is_wrong(name):
    change, expected = BAD_DEFINITIONS[name]

    assert expected in located(_vip(change))


@pytest.mark.parametrize("name", BAD_DEFINITIONS)
def test_the_service_refuses_each_bad_definition_and_saves_nothing(db, name):
    change, expected = BAD_DEFINITIONS[name]

    with pytest.raises(InvalidDefinition) as caught:
        workflows.create(_vip(change))

    assert expected in [(p.where, p.code) for p in caught.value.problems]
    assert Workflow.objects.count() == 0


@pytest.mark.parametrize("name", ["a typo in a trigger field", "a dunder on the run"])
def test_install_templates_refuses_a_bad_template_naming_where(db, monkeypatch, name):
    change, (where, _code) = BAD_DEFINITIONS[name]
    monkeypatch.setitem(templates.TEMPLATES, "tag_vip_customers", lambda **kw: _vip(change))

    with pytest.raises(CommandError, match=rf"tag_vip_customers is not valid:\n  {where}: "):
        call_command("install_templates", "tag_vip_customers")

    assert Workflow.objects.count() == 0


def test_activation_and_restore_refuse_a_draft_that_became_invalid(db):
    workflow = create_workflow(tag_vip_customers())
    version = workflows.activate(workflow)
    workflow.steps.filter(name="notify_team").update(
        config={
            "recipient": "team",
            "to": "a@example.test",
            "subject": "{{run.__class__}}",
            "body": "x",
        }
    )

    with pytest.raises(InvalidDefinition):
        workflows.activate(workflow)
    WorkflowVersion.objects.filter(pk=version.pk).update(
        definition={
            **version.definition,
            "conditions": [[{"field": "trigger.x", "op": "eq", "value": 1}]],
        }
    )
    with pytest.raises(InvalidDefinition):
        workflows.restore(workflow, version.number)


def test_problems_are_plain_codes_and_parameters():
    [problem] = definitions.validate(_vip(_set_email("subject", "{{trigger.data.object.amout}}")))

    assert json.loads(json.dumps(problem.as_dict())) == {
        "where": "steps.0.config.subject",
        "code": "reference_field_unknown",
        "params": {
            "path": "trigger.data.object.amout",
            "source": "payment_intent.succeeded events",
        },
    }


def test_the_rows_of_a_created_workflow_snapshot_back_to_its_definition(db):
    definition = refund_early_fraud_warnings()

    workflow = create_workflow(definition)

    assert workflows.draft(workflow) == definitions.clean(definition)
    assert workflow.steps.get(name="refund").parent.name == "under_dispute_fee"
    assert workflow.steps.get(name="refund").arm == Step.Arm.THEN
    assert workflow.conditions.get().step.name == "under_dispute_fee"


def test_a_refund_amount_keeps_its_currency_in_the_version(db):
    definition = refund_early_fraud_warnings()
    definition["steps"][1]["then"][0]["config"].update(amount=1400, amount_currency="usd")

    version = workflows.activate(create_workflow(definition))

    refund = version.definition["steps"][1]["then"][0]
    assert (refund["config"]["amount"], refund["config"]["amount_currency"]) == (1400, "usd")


def test_activating_makes_a_version_only_when_something_changed(db):
    workflow = create_workflow(tag_vip_customers())

    first = workflows.activate(workflow)
    again = workflows.activate(workflow)
    workflow.steps.filter(name="tag_vip").update(
        config={"customer": "{{trigger.data.object.customer}}", "metadata": {"Tier": "Gold"}}
    )
    second = workflows.activate(workflow)

    assert (first.number, again.pk, second.number) == (1, first.pk, 2)
    workflow.refresh_from_db()
    assert workflow.active_version == second
    with pytest.raises(ValidationError, match="immutable"):
        first.save()


def test_a_run_keeps_the_version_it_started_with(
    db, stripe_account, post_event, smtp_server, fake_stripe
):
    workflow = create_workflow(tag_vip_customers(team="ops@example.test"))
    v1 = workflows.activate(workflow)
    definition_v1 = copy.deepcopy(v1.definition)
    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    workflow.steps.filter(name="notify_team").update(
        config={**workflow.steps.get(name="notify_team").config, "subject": "Changed"}
    )
    v2 = workflows.activate(workflow)
    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    first, second = Run.objects.order_by("pk")
    assert (first.version, second.version) == (v1, v2)
    assert WorkflowVersion.objects.get(pk=v1.pk).definition == definition_v1
    assert [m["Subject"] for _, _, m in smtp_server.messages][1] == "Changed"


def test_a_hostile_definition_nested_thousands_deep_is_refused_not_crashed():
    deep = {"name": "x", "kind": "slack.post_message", "config": {"channel": "C1", "text": "x"}}
    for i in range(5000):
        deep = {"name": f"b{i}", "kind": "branch", "conditions": [], "then": [deep], "else": []}
    definition = {**tag_vip_customers(), "steps": [deep]}

    assert located(definition) == [("steps", "steps_too_deep")]


def test_a_definition_with_too_many_steps_is_refused():
    step = {"name": "s", "kind": "slack.post_message", "config": {"channel": "C1", "text": "x"}}
    definition = {**tag_vip_customers(), "steps": [step] * (definitions.MAX_STEPS + 1)}

    assert located(definition) == [("steps", "steps_too_many")]


def test_saving_a_draft_through_a_stale_instance_keeps_the_active_version(db):
    from automations import workflows
    from automations.models import Workflow
    from tests.builders import create_workflow

    workflow = create_workflow(tag_vip_customers())
    stale = Workflow.objects.get(pk=workflow.pk)  # read before activation (an API client)
    version = workflows.activate(workflow)

    workflows.save_draft(stale, {**tag_vip_customers(), "description": "Edited"})

    workflow.refresh_from_db()
    assert (workflow.status, workflow.active_version_id) == ("active", version.pk)
    assert workflow.description == "Edited"
