"""'Run workflow on selected…': staff pick Stripe objects in a list and run a manual workflow
on them, after a confirmation page with a dry-run; each object gets one run."""

import pytest
from djstripe.models import Charge

from automations import workflows
from automations.models import Batch, Run, TriggerKind
from integrations.stripe_client import get_client
from integrations.stripe_events import as_dict
from tests.admin_helpers import staff_user
from tests.builders import create_payment_intent, create_workflow

THANK_YOU = {
    "name": "Thank big customers",
    "trigger": {"kind": "manual", "object": "charge"},
    "conditions": [
        [{"field": "trigger.data.object.amount", "op": "gte", "value": 1000, "currency": "usd"}]
    ],
    "steps": [
        {
            "name": "tell",
            "kind": "slack.post_message",
            "config": {
                "channel": "C0OPS",
                "text": "Thank {{trigger.data.object.id}}: {{trigger.data.object.amount | money}}",
            },
        }
    ],
}


def stored_charges(amounts):
    """Charges that exist in the fake Stripe and in Kanri's mirror, as the sync leaves them."""
    charges = []
    for amount in amounts:
        intent = create_payment_intent(amount=amount, currency="usd")
        data = as_dict(get_client().v1.charges.retrieve(intent["latest_charge"]))
        charges.append(Charge.sync_from_stripe_data(data))
    return charges


@pytest.fixture
def world(db, fake_stripe, stripe_account, fake_slack):
    return {"workflow": create_workflow(THANK_YOU, status="active"), "slack": fake_slack}


def choose_action(client, charges, **extra):
    return client.post(
        "/admin/djstripe/charge/",
        {
            "action": "run_workflow_on_selected",
            "_selected_action": [c.pk for c in charges],
            **extra,
        },
    )


def test_three_selected_charges_make_three_runs_and_resubmitting_makes_none(
    client, world, django_capture_on_commit_callbacks
):
    charges = stored_charges([1500, 2500, 3500])
    client.force_login(staff_user("editor"))

    confirm = choose_action(client, charges)
    assert confirm.status_code == 200
    assert [r["object_id"] for r in confirm.context["rehearsals"]] == [c.id for c in charges]
    first = confirm.context["rehearsals"][0]["steps"][0]
    assert first["request"]["text"] == f"Thank {charges[0].id}: $15.00"
    token = confirm.context["hidden"]["kanri_token"]
    assert world["slack"].calls == []  # the confirmation page sent nothing

    answer = {"workflow": world["workflow"].pk, "kanri_token": token, "post": "yes"}
    with django_capture_on_commit_callbacks(execute=True):
        choose_action(client, charges, **answer)
    with django_capture_on_commit_callbacks(execute=True):
        choose_action(client, charges, **answer)  # the same confirmation, sent again

    runs = Run.objects.order_by("pk")
    assert [(r.trigger_kind, r.status, r.started_by.username) for r in runs] == [
        (TriggerKind.MANUAL, Run.Status.SUCCEEDED, "editor")
    ] * 3
    assert sorted(r.snapshot["data"]["object"]["id"] for r in runs) == sorted(c.id for c in charges)
    assert sorted(m["text"] for m in world["slack"].messages()) == sorted(
        f"Thank {c.id}: ${c.stripe_data['amount'] / 100:.2f}" for c in charges
    )


def test_objects_the_conditions_do_not_match_start_nothing(world):
    charges = stored_charges([500, 1500])

    result = workflows.run_on(world["workflow"], [c.id for c in charges])

    assert (len(result["started"]), result["not_started"]) == (1, 1)
    assert Run.objects.get().snapshot["data"]["object"]["id"] == charges[1].id


def test_a_viewer_is_not_offered_the_action_and_cannot_start_runs(client, world):
    charges = stored_charges([1500])
    client.force_login(staff_user("viewer"))

    listing = client.get("/admin/djstripe/charge/")
    choose_action(client, charges, workflow=world["workflow"].pk, post="yes")

    assert listing.status_code == 200
    assert "run_workflow_on_selected" not in listing.content.decode()
    assert not Run.objects.exists()


def test_a_workflow_that_moves_money_runs_only_for_an_approver(
    client, db, fake_stripe, stripe_account
):
    refund = {
        "name": "Refund selected",
        "trigger": {"kind": "manual", "object": "charge"},
        "conditions": [],
        "limits": {"per_run": {"usd": 100}, "per_day": {"usd": 1000}},
        "steps": [
            {
                "name": "refund",
                "kind": "stripe.create_refund",
                "config": {
                    "charge": "{{trigger.data.object.id}}",
                    "amount": 100,
                    "currency": "{{trigger.data.object.currency}}",
                },
            }
        ],
    }
    workflow = create_workflow(refund, status="active")
    charges = stored_charges([1500])

    with pytest.raises(workflows.NotAllowed):
        workflows.run_on(workflow, [charges[0].id], staff_user("editor"))
    result = workflows.run_on(workflow, [charges[0].id], staff_user("approver"))

    assert len(result["started"]) == 1


def test_a_manual_workflow_runs_only_on_its_own_kind_of_object(world):
    assert workflows.manual_workflows("charge") == [
        {"id": world["workflow"].pk, "name": "Thank big customers"}
    ]
    assert workflows.manual_workflows("customer") == []


def test_a_confirmed_workflow_paused_meanwhile_runs_nothing_not_another_in_its_place(
    client, world, django_capture_on_commit_callbacks
):
    charges = stored_charges([1500])
    other = create_workflow({**THANK_YOU, "name": "Another thank-you"}, status="active")
    client.force_login(staff_user("editor"))
    confirm = choose_action(client, charges, workflow=world["workflow"].pk)
    token = confirm.context["hidden"]["kanri_token"]
    workflows.pause(world["workflow"])

    with django_capture_on_commit_callbacks(execute=True):
        response = choose_action(
            client, charges, workflow=world["workflow"].pk, kanri_token=token, post="yes"
        )

    assert response.status_code == 302
    assert not Run.objects.exists()
    assert other.runs.count() == 0
    assert world["slack"].calls == []


def test_a_batch_report_says_which_runs_were_pruned_since(
    world, django_capture_on_commit_callbacks
):
    charges = stored_charges([1500, 500])
    with django_capture_on_commit_callbacks(execute=True):
        result = workflows.run_on(world["workflow"], [c.id for c in charges])
    [run_id] = result["started"]
    Run.objects.filter(pk=run_id).delete()  # as prune_runs does after the retention period

    rows = workflows.batch_report(Batch.objects.get(pk=result["batch"]))

    assert [(r["id"], r["run"], r["status"], r["reason"]) for r in rows] == [
        (charges[0].id, run_id, "skipped", "pruned"),
        (charges[1].id, None, "skipped", "conditions"),
    ]


def test_one_request_token_sent_for_two_workflows_starts_both(
    world, django_capture_on_commit_callbacks
):
    [charge] = stored_charges([1500])
    other = create_workflow({**THANK_YOU, "name": "Another thank-you"}, status="active")

    with django_capture_on_commit_callbacks(execute=True):
        first = workflows.run_on(world["workflow"], [charge.id], token="tok")
        second = workflows.run_on(other, [charge.id], token="tok")

    assert first["batch"] != second["batch"]
    assert (len(first["started"]), len(second["started"])) == (1, 1)
