"""Issue 13: the event a trigger carries is stored once (TriggerEvent), shared by the runs
it starts; runs from before keep their inline `trigger_data`; pruning removes orphans."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations import maintenance
from automations.models import Run, TriggerEvent, TriggerKind, Workflow
from automations.templates import personalise_large_orders
from automations.triggers import Trigger, store_event
from tests.admin_helpers import staff_user
from tests.builders import create_customer, create_payment_intent, create_workflow, event

TEAM = "orders@example.test"


@pytest.fixture
def two_workflows(stripe_account, fake_stripe, smtp_server):
    """Two active workflows that both start on a payment over $1,000."""
    return [
        create_workflow(personalise_large_orders(team=TEAM), status=Workflow.Status.ACTIVE)
        for _ in range(2)
    ]


@pytest.fixture
def sent(two_workflows, post_event):
    customer = create_customer()
    intent = create_payment_intent(amount=150000, currency="usd", customer=customer["id"])
    payload = event("payment_intent.succeeded", intent)
    assert post_event(payload).status_code == 200
    return payload


def test_an_event_matching_two_workflows_is_stored_once_and_both_runs_point_to_it(
    two_workflows, sent
):
    [stored] = TriggerEvent.objects.all()
    assert (stored.key, stored.data) == (sent["id"], sent)
    runs = Run.objects.order_by("workflow_id")
    assert [(r.workflow_id, r.event_id, r.trigger_data, r.status) for r in runs] == [
        (w.pk, stored.pk, None, Run.Status.SUCCEEDED) for w in two_workflows
    ]


def test_a_run_reads_its_event_as_its_snapshot(sent):
    run = Run.objects.select_related("event").first()
    assert run.snapshot == sent
    # The run worked on it: the mail names the intent from the stored event.
    assert run.steps.get().status == "succeeded"


def test_a_redelivery_stores_no_second_event_and_starts_no_run(sent, post_event):
    assert post_event(sent).status_code == 200
    assert (TriggerEvent.objects.count(), Run.objects.count()) == (1, 2)


def test_an_old_run_with_inline_trigger_data_still_reads_it(two_workflows):
    workflow = two_workflows[0]
    data = {"id": "evt_old", "type": "charge.succeeded", "data": {"object": {"id": "ch_1"}}}
    run = Run.objects.create(
        workflow=workflow, version=workflow.active_version, trigger_key="evt_old", trigger_data=data
    )
    assert (run.event_id, Run.objects.get(pk=run.pk).snapshot) == (None, data)


def test_the_same_non_stripe_key_with_different_data_stores_two_events(db):
    """A schedule tick's key is the same for two workflows; their digests differ."""
    first = Trigger(TriggerKind.SCHEDULE, "schedule:2026-01-01T09:00:00+00:00", {"n": 1})
    second = Trigger(TriggerKind.SCHEDULE, first.key, {"n": 2})

    stored = [store_event(first), store_event(second), store_event(first)]

    ids = [pk for pk, _ in stored]
    assert ids[0] != ids[1] and ids[2] == ids[0]
    assert [now for _, now in stored] == [True, True, False]
    assert sorted(TriggerEvent.objects.values_list("data", flat=True), key=str) == [
        {"n": 1},
        {"n": 2},
    ]


def test_pruning_removes_the_events_no_run_refers_to_and_keeps_the_others(two_workflows):
    workflow = two_workflows[0]
    old = timezone.now() - timedelta(days=400)

    def run_on(key, created, **fields):
        stored = TriggerEvent.objects.create(key=key, data={"id": key}, created_at=created)
        Run.objects.create(
            workflow=workflow,
            version=workflow.active_version,
            trigger_key=key,
            event=stored,
            created_at=created,
            **fields,
        )
        return stored

    pruned = run_on("evt_pruned", old, status=Run.Status.SUCCEEDED, finished_at=old)
    kept = run_on("evt_kept", old, status=Run.Status.FAILED, finished_at=old)
    recent = run_on("evt_recent", timezone.now(), status=Run.Status.SUCCEEDED)
    orphan = TriggerEvent.objects.create(key="evt_orphan", data={}, created_at=old)
    # An orphan stored just now may be about to get its run (a redelivery): it stays.
    fresh = TriggerEvent.objects.create(key="evt_fresh", data={})

    assert maintenance.prune_runs() == {"matched": 1, "deleted": 1}

    assert set(TriggerEvent.objects.values_list("pk", flat=True)) == {
        kept.pk,
        recent.pk,
        fresh.pk,
    }
    assert not TriggerEvent.objects.filter(pk__in=[pruned.pk, orphan.pk]).exists()


def test_a_dry_run_prune_deletes_no_event(two_workflows):
    TriggerEvent.objects.create(
        key="evt_orphan", data={}, created_at=timezone.now() - timedelta(days=400)
    )
    maintenance.prune_runs(dry_run=True)
    assert TriggerEvent.objects.filter(key="evt_orphan").exists()


def test_the_run_list_never_loads_the_stored_event_and_the_run_page_shows_it(client, sent):
    client.force_login(staff_user("viewer"))
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/admin/automations/run/")
    assert response.status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    assert not [q for q in sql if "automations_triggerevent" in q or "trigger_data" in q]

    run = Run.objects.first()
    page = client.get(f"/admin/automations/run/{run.pk}/change/")
    assert page.status_code == 200
    assert page.context["run"]["trigger_data"]["id"] == sent["id"]
