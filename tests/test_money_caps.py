"""Money caps: a refund above a workflow's per-run or per-day cap waits for an approver, who is
not the person who started the run or last edited the workflow; every decision is audited."""

import pytest
from django.contrib.admin.models import LogEntry

from automations import workflows
from automations.models import Approval, Run, Workflow
from tests.admin_helpers import staff_user
from tests.builders import create_payment_intent, create_workflow, event

USD = 100  # minor units per dollar

REFUND_PAYMENTS = {
    "name": "Refund paid intents",
    "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
    "conditions": [],
    "limits": {"per_run": {"usd": 50 * USD}, "per_day": {"usd": 100 * USD}},
    "steps": [
        {
            "name": "refund",
            "kind": "stripe.create_refund",
            "config": {
                "charge": "{{trigger.data.object.latest_charge}}",
                "amount": "{{trigger.data.object.amount}}",
                "currency": "{{trigger.data.object.currency}}",
            },
        }
    ],
}


@pytest.fixture
def world(stripe_account, fake_stripe):
    editor = staff_user("approver", "erika")  # an approver who also edits the workflow
    workflow = workflows.create(REFUND_PAYMENTS, owner=editor, user=editor)
    workflows.save_draft(workflow, REFUND_PAYMENTS, user=editor)
    workflows.activate(workflow, staff_user("approver", "akira"))
    workflow.refresh_from_db()
    return {"stripe": fake_stripe, "workflow": workflow, "editor": editor}


def pay(post_event, dollars):
    intent = create_payment_intent(amount=dollars * USD, currency="usd")
    post_event(event("payment_intent.succeeded", intent))
    return Run.objects.get(
        trigger_key__startswith="evt_", event__data__data__object__id=intent["id"]
    )


def refund_posts(world):
    return world["stripe"].requests(path="/v1/refunds", method="POST")


def test_a_refund_above_the_per_run_cap_is_held_and_nothing_is_sent(world, post_event):
    run = pay(post_event, 60)

    assert (run.status, run.hold_reason, run.error) == ("held", "approval", "")
    assert refund_posts(world) == []
    assert list(run.steps.values_list("step_name", "status")) == []
    [approval] = Approval.objects.filter(run=run).values(
        "step_name", "amount", "currency", "exceeded", "decision"
    )
    assert approval == {
        "step_name": "refund",
        "amount": 6000,
        "currency": "usd",
        "exceeded": [{"cap": "per_run", "limit": 5000, "total": 6000}],
        "decision": "",
    }


def test_refunds_within_the_caps_go_through_until_the_day_cap_is_reached(world, post_event):
    first, second, third = (pay(post_event, 40) for _ in range(3))

    assert [first.status, second.status, third.status] == ["succeeded", "succeeded", "held"]
    assert [p["params"]["amount"] for p in refund_posts(world)] == ["4000", "4000"]
    assert third.approvals.get().exceeded == [{"cap": "per_day", "limit": 10000, "total": 12000}]
    step = first.steps.get()
    assert (step.amount, step.currency) == (4000, "usd")


def test_a_second_approver_approves_and_the_refund_is_sent_once(
    world, post_event, django_capture_on_commit_callbacks
):
    run = pay(post_event, 60)
    second = staff_user("approver", "hana")

    with django_capture_on_commit_callbacks(execute=True):
        workflows.approve(run, second)

    run.refresh_from_db()
    assert run.status == "succeeded"
    [refund] = refund_posts(world)
    assert (refund["params"]["amount"], refund["idempotency_key"]) == (
        "6000",
        f"kanri-{run.workflow_id}-{run.pk}-refund",
    )
    approval = run.approvals.get()
    assert (approval.decision, approval.decided_by) == ("approved", second)
    assert LogEntry.objects.filter(object_id=str(run.pk), user=second).get().change_message == (
        "Approved step refund (6000 usd minor units)."
    )
    assert run.steps.get().amount == 6000  # it counts towards the day from now on


def test_the_person_who_last_edited_the_workflow_cannot_approve_its_runs(world, post_event):
    run = pay(post_event, 60)

    with pytest.raises(workflows.NotAllowed) as refused:
        workflows.approve(run, world["editor"])

    assert refused.value.reason == "approve_own_edit"
    run.refresh_from_db()
    assert (run.status, run.approvals.get().decision) == ("held", "")
    assert refund_posts(world) == []


def test_the_person_who_started_a_run_cannot_approve_it(
    db, stripe_account, fake_stripe, django_capture_on_commit_callbacks
):
    from tests.test_manual_runs import stored_charges

    definition = {
        **REFUND_PAYMENTS,
        "trigger": {"kind": "manual", "object": "charge"},
        "steps": [
            {
                "name": "refund",
                "kind": "stripe.create_refund",
                "config": {
                    "charge": "{{trigger.data.object.id}}",
                    "amount": "{{trigger.data.object.amount}}",
                    "currency": "{{trigger.data.object.currency}}",
                },
            }
        ],
    }
    workflow = create_workflow(definition, status=Workflow.Status.ACTIVE)
    starter = staff_user("approver", "sora")
    [charge] = stored_charges([7000])

    with django_capture_on_commit_callbacks(execute=True):
        result = workflows.run_on(workflow, [charge.id], starter)

    run = Run.objects.get(pk=result["started"][0])
    assert (run.status, run.started_by) == ("held", starter)
    with pytest.raises(workflows.NotAllowed) as refused:
        workflows.approve(run, starter)
    assert refused.value.reason == "approve_own_run"


def test_an_editor_without_the_approver_role_cannot_approve(world, post_event):
    run = pay(post_event, 60)

    with pytest.raises(workflows.NotAllowed) as refused:
        workflows.approve(run, staff_user("editor"))

    assert refused.value.reason == "approve_permission"


def test_rejecting_cancels_the_run_and_sends_nothing(world, post_event):
    run = pay(post_event, 60)
    second = staff_user("approver", "hana")

    workflows.reject(run, second)

    run.refresh_from_db()
    assert (run.status, run.hold_reason) == ("cancelled", "approval")
    assert (run.approvals.get().decision, run.approvals.get().decided_by) == ("rejected", second)
    assert refund_posts(world) == []
    with pytest.raises(workflows.NotAllowed):
        workflows.approve(run, second)  # decided once


def test_an_approver_sees_the_amount_and_approves_from_the_run_page(
    client, world, post_event, django_capture_on_commit_callbacks
):
    run = pay(post_event, 60)
    client.force_login(world["editor"])
    own = client.get(f"/admin/automations/run/{run.pk}/change/").content.decode()
    assert "would move $60.00" in own
    assert "$60.00 per run, above the cap of $50.00" in own
    assert 'value="approve"' not in own
    assert "You last edited this workflow: another approver must decide its runs." in own

    client.force_login(staff_user("approver", "hana"))
    page = client.get(f"/admin/automations/run/{run.pk}/change/").content.decode()
    assert 'value="approve"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/automations/run/{run.pk}/approve/", {"decision": "approve"})

    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert len(refund_posts(world)) == 1


def test_approving_held_runs_from_the_list_shows_their_amounts_first(
    client, world, post_event, django_capture_on_commit_callbacks
):
    held = [pay(post_event, 60), pay(post_event, 70)]
    client.force_login(staff_user("approver", "hana"))
    choose = {"action": "approve_runs", "_selected_action": [r.pk for r in held]}

    confirm = client.post("/admin/automations/run/", choose).content.decode()
    assert "$70.00 · $70.00 per run, above the cap of $50.00" in confirm
    assert len(refund_posts(world)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/automations/run/", {**choose, "post": "yes"})

    assert sorted(Run.objects.values_list("status", flat=True)) == ["succeeded", "succeeded"]
    assert sorted(p["params"]["amount"] for p in refund_posts(world)) == ["6000", "7000"]


def test_a_legacy_money_version_without_caps_holds_instead_of_refunding(world, post_event):
    version = world["workflow"].active_version
    definition = {k: v for k, v in version.definition.items() if k != "limits"}
    type(version).objects.filter(pk=version.pk).update(definition=definition)

    run = pay(post_event, 1)

    assert (run.status, run.hold_reason) == ("held", "approval")
    assert run.approvals.get().exceeded == [
        {"cap": "per_run", "limit": None, "total": 100},
        {"cap": "per_day", "limit": None, "total": 100},
    ]
    assert refund_posts(world) == []


def test_runs_waiting_for_approval_can_be_listed_on_their_own(client, world, post_event):
    held = pay(post_event, 60)
    pay(post_event, 10)
    client.force_login(staff_user("viewer"))

    page = client.get("/admin/automations/run/?hold_reason=approval")

    assert [run.pk for run in page.context["cl"].result_list] == [held.pk]


def test_the_person_who_created_a_workflow_cannot_approve_its_runs(
    stripe_account, fake_stripe, post_event
):
    author = staff_user("approver", "kenji")
    workflow = workflows.create(REFUND_PAYMENTS, owner=author, user=author)
    workflows.activate(workflow, staff_user("approver", "akira"))

    run = pay(post_event, 60)

    assert workflows.can_approve(author, run) == (False, "approve_own_edit")
