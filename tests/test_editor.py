"""The workflow editor in the admin: staff build workflows without writing JSON, and every
mistake is an error next to its field with nothing saved."""

import pytest

from automations.definition import clean as validate
from automations.models import Condition, Step, Workflow
from automations.templates import tag_vip_customers
from automations.workflows import draft as snapshot
from tests.admin_helpers import A2_CONDITIONS, A2_STEPS, form_errors, staff_user, workflow_form

ADD_URL = "/admin/automations/workflow/add/"


@pytest.fixture
def editor(db, client):
    user = staff_user("editor")
    client.force_login(user)
    return user


def post_a2(client, **changes):
    data = workflow_form("Tag VIP customers", conditions=A2_CONDITIONS, steps=A2_STEPS)
    data.update(changes)
    return client.post(ADD_URL, data)


def test_an_editor_builds_a2_with_amounts_as_staff_write_them(client, editor):
    response = post_a2(client)

    assert response.status_code == 302, response.context and response.context["errors"]
    workflow = Workflow.objects.get()
    expected = validate(tag_vip_customers(team="ops@example.com"))
    assert snapshot(workflow)["conditions"] == expected["conditions"]
    assert snapshot(workflow)["steps"] == expected["steps"]
    assert workflow.owner == editor
    assert workflow.status == Workflow.Status.DRAFT
    assert list(Condition.objects.order_by("pk").values_list("value", "currency")) == [
        (100000, "usd"),
        (200000, "usd"),
    ]


def test_amounts_are_shown_back_in_major_units(client, editor):
    post_a2(client)
    workflow = Workflow.objects.get()

    page = client.get(f"/admin/automations/workflow/{workflow.pk}/change/").content.decode()

    assert 'name="conditions-0-value_text" value="1,000.00"' in page
    assert 'name="conditions-1-value_text" value="2,000.00"' in page
    assert '<option value="usd" selected>USD</option>' in page


def test_a_yen_amount_is_stored_without_decimals(client, editor):
    conditions = [
        {
            "field": "trigger.data.object.amount",
            "operator": "gte",
            "value_text": "1000",
            "currency": "jpy",
        }
    ]
    client.post(ADD_URL, workflow_form(conditions=conditions, steps=A2_STEPS[:1]))

    assert Condition.objects.get().value == 1000


def test_an_unknown_reference_is_an_error_next_to_its_field(client, editor):
    steps = [
        {
            **A2_STEPS[0],
            "config": {**A2_STEPS[0]["config"], "subject": "Order {{trigger.data.object.amout}}"},
        }
    ]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert response.status_code == 200
    assert form_errors(response, "steps") == [
        {
            "email_send__subject": [
                "{{trigger.data.object.amout}} is not a field of payment_intent.succeeded events."
            ]
        }
    ]
    assert not Workflow.objects.exists()


def test_a_reference_to_a_step_that_may_not_have_run_is_an_error(client, editor):
    steps = [
        *A2_STEPS,
        {
            "name": "tell",
            "kind": "slack.post_message",
            "config": {"channel": "C1", "text": "Tagged {{steps.tag_vip.id}}"},
        },
    ]

    response = client.post(ADD_URL, workflow_form(conditions=A2_CONDITIONS, steps=steps))

    assert form_errors(response, "steps")[3] == {
        "slack_post_message__text": [
            "Unknown reference {{steps.tag_vip.id}}: no step 'tag_vip' runs before this point."
        ]
    }


def test_a_condition_on_a_field_the_trigger_does_not_have_is_an_error(client, editor):
    conditions = [
        {
            "field": "trigger.data.object.amount",
            "operator": "gt",
            "value_text": "10",
            "currency": "usd",
        }
    ]

    response = client.post(
        ADD_URL, workflow_form(event_type="customer.created", conditions=conditions)
    )

    assert form_errors(response, "conditions") == [
        {"field": ["{{trigger.data.object.amount}} is not a field of customer.created events."]}
    ]
    assert not Workflow.objects.exists()


def test_a_refund_step_without_an_amount_is_an_error(client, editor):
    steps = [
        {
            "name": "refund",
            "kind": "stripe.create_refund",
            "config": {"charge": "{{trigger.data.object.latest_charge}}"},
        }
    ]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert form_errors(response, "steps") == [
        {"stripe_create_refund__amount": ["This field is required."]}
    ]


def test_a_refund_amount_is_typed_in_money_and_stored_in_minor_units(client, editor):
    steps = [
        {
            "name": "refund",
            "kind": "stripe.create_refund",
            "config": {
                "charge": "{{trigger.data.object.latest_charge}}",
                "amount": "14.50",
                "amount_currency": "usd",
                "reason": "requested_by_customer",
            },
        }
    ]

    response = client.post(
        ADD_URL, workflow_form(steps=steps, per_run="15 USD", per_day="1,000 USD\n50,000 JPY")
    )

    assert response.status_code == 302
    assert Step.objects.get().config == {
        "charge": "{{trigger.data.object.latest_charge}}",
        "amount": 1450,
        "amount_currency": "usd",
        "reason": "requested_by_customer",
    }
    workflow = Workflow.objects.get()
    assert workflow.limits == {"per_run": {"usd": 1500}, "per_day": {"usd": 100000, "jpy": 50000}}
    page = client.get(f"/admin/automations/workflow/{workflow.pk}/change/").content.decode()
    assert 'value="14.50"' in page
    assert "50,000 JPY\n1,000.00 USD</textarea>" in page


def test_a_refund_workflow_without_money_caps_is_not_saved_and_says_why(client, editor):
    steps = [
        {
            "name": "refund",
            "kind": "stripe.create_refund",
            "config": {
                "charge": "{{trigger.data.object.latest_charge}}",
                "amount": "5",
                "amount_currency": "usd",
            },
        }
    ]

    response = client.post(ADD_URL, workflow_form(steps=steps, per_day="1.5 JPY"))

    errors = response.context["adminform"].form.errors
    assert errors == {
        "per_day": ["1.5 has more decimals than JPY allows (0)."],
        "per_run": [
            "This workflow moves money: set a cap per run and per day for each currency it uses."
        ],
    }
    assert not Workflow.objects.exists()


def test_two_steps_with_one_name_is_an_error_on_the_second(client, editor):
    steps = [A2_STEPS[0], {**A2_STEPS[0]}]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert form_errors(response, "steps") == [
        {},
        {"name": ["Another step is already named 'notify_team'; each needs its own name."]},
    ]
    assert not Step.objects.exists()


def test_a_money_condition_needs_its_currency(client, editor):
    conditions = [{"field": "trigger.data.object.amount", "operator": "gt", "value_text": "1,000"}]

    response = client.post(ADD_URL, workflow_form(conditions=conditions))

    assert form_errors(response, "conditions") == [
        {"currency": ["Choose the currency of this amount."]}
    ]


def test_a_branch_without_conditions_is_an_error(client, editor):
    response = client.post(ADD_URL, workflow_form(steps=A2_STEPS))

    assert form_errors(response, "steps")[1] == {
        "kind": [
            "A branch needs at least one condition: add one under Conditions with “Applies to” set "
            "to this branch."
        ]
    }


def test_a_step_placed_in_a_missing_branch_is_an_error(client, editor):
    steps = [{**A2_STEPS[2], "placement": "nope:then"}]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert form_errors(response, "steps") == [
        {"placement": ["There is no branch 'nope' to put this step in."]}
    ]


def test_a_failed_edit_leaves_the_saved_workflow_as_it_was(client, editor):
    post_a2(client)
    workflow = Workflow.objects.get()
    before = snapshot(workflow)
    steps = list(workflow.steps.order_by("position"))
    conditions = list(workflow.conditions.order_by("pk"))
    data = workflow_form(
        "Renamed",
        conditions=[
            {**c, "id": row.pk, "scope": c.get("scope", "")}
            for c, row in zip(A2_CONDITIONS, conditions, strict=True)
        ],
        steps=[{**s, "id": row.pk} for s, row in zip(A2_STEPS, steps, strict=True)]
        + [
            {
                "name": "notify_team",
                "kind": "slack.post_message",
                "config": {"channel": "C1", "text": "hi"},
            }
        ],
        initial_conditions=2,
        initial_steps=3,
    )

    response = client.post(f"/admin/automations/workflow/{workflow.pk}/change/", data)

    assert response.status_code == 200
    workflow.refresh_from_db()
    assert (workflow.name, snapshot(workflow)) == ("Tag VIP customers", before)


def test_steps_are_saved_in_the_order_staff_put_them(client, editor):
    steps = [
        {**A2_STEPS[0], "position": 20},
        {
            "name": "first",
            "kind": "slack.post_message",
            "position": 10,
            "config": {"channel": "C1", "text": "{{trigger.id}}"},
        },
    ]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert response.status_code == 302
    assert [s["name"] for s in snapshot(Workflow.objects.get())["steps"]] == [
        "first",
        "notify_team",
    ]


def test_a_step_name_that_cannot_be_referenced_is_an_error(client, editor):
    steps = [{**A2_STEPS[0], "name": "Notify-Team"}]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert form_errors(response, "steps") == [
        {
            "name": [
                "Use lower-case letters, digits and _, starting with a letter "
                "(it appears in references)."
            ]
        }
    ]


def test_an_unknown_step_kind_posted_to_the_editor_is_an_error_next_to_the_kind(client, editor):
    # Not a choice the page offers: what a stale page or a hand-made request would send.
    steps = [{"name": "fax", "kind": "fax.send", "config": {}}]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert response.status_code == 200
    assert form_errors(response, "steps") == [{"kind": ["There is no step kind 'fax.send'."]}]
    assert not Workflow.objects.exists()


def test_a_dunder_reference_typed_in_the_editor_is_refused_next_to_its_field(client, editor):
    steps = [
        {
            "name": "tell",
            "kind": "slack.post_message",
            "config": {"channel": "C0OPS", "text": "{{run.__class__}}"},
        }
    ]

    response = client.post(ADD_URL, workflow_form(steps=steps))

    assert form_errors(response, "steps") == [
        {
            "slack_post_message__text": [
                "{{run.__class__}} is not allowed: names may not start with “_”."
            ]
        }
    ]
    assert not Workflow.objects.exists()
