"""The lean hot paths (issue 13) keep their guarantees: a delivery is recorded and its runs
started in one transaction, a run is carried in a handful of statements, and the caches
that save a query per delivery or per post never serve a stale answer where it matters."""

import json
import multiprocessing
import os

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from djstripe.models import WebhookEndpoint, WebhookEventTrigger

from automations.engine import runner
from automations.models import Run, RunStep, TriggerEvent
from integrations import connections, stripe_webhooks
from integrations.models import SyncMark, SyncQueue
from tests.builders import create_workflow, event, payment_intent_dict
from tests.conftest import WEBHOOK_SECRET
from tests.test_connections import NEW_TOKEN, post_slack


def slack_on_paid():
    return create_workflow(
        {
            "name": "Tell sales about big payments",
            "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
            "conditions": [],
            "steps": [
                {
                    "name": "notify",
                    "kind": "slack.post_message",
                    "config": {"channel": "C0SALES", "text": "Paid {{trigger.id}}"},
                }
            ],
        },
        status="active",
    )


@pytest.fixture
def no_sync(monkeypatch):
    """Deliveries stay queued for the mirror (no Stripe here): only the receiver counts."""
    monkeypatch.setattr(stripe_webhooks, "enqueue", lambda *args: None)


def statements(queries):
    return [q["sql"].split()[0] for q in queries]


def test_a_matching_delivery_is_recorded_and_its_run_started_in_one_transaction(
    db, stripe_account, post_event, no_sync, monkeypatch
):
    workflow = slack_on_paid()
    queued = []
    monkeypatch.setattr("automations.tasks.enqueue", lambda func, *args: queued.append(args))
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))
    # The endpoint and the trigger index are read once; the second learns that a sync
    # batch is queued, which is then believed for a moment.
    post_event(sent)
    post_event(dict(sent, id="evt_first"))

    again = dict(sent, id="evt_second")
    with CaptureQueriesContext(connection) as ctx:
        response = post_event(again)

    assert response.status_code == 200
    # The test's own transaction makes BEGIN/COMMIT savepoints; the writes are what count.
    writes = [s for s in statements(ctx.captured_queries) if s not in ("SAVEPOINT", "RELEASE")]
    assert writes == ["INSERT", "INSERT", "INSERT", "INSERT"]  # delivery, sync, event, run
    run = Run.objects.get(trigger_key="evt_second")
    assert (run.workflow_id, run.status, run.event.data) == (workflow.pk, "queued", again)
    assert queued[-1] == (run.pk,)
    assert SyncQueue.objects.filter(delivery_id=response.json()["trigger"]).exists()


def test_a_redelivered_event_of_a_run_stored_before_events_were_kept_apart_starts_nothing(
    db, stripe_account, post_event, no_sync
):
    """Runs from before migration 0011 keep their event inline and name no stored event."""
    workflow = slack_on_paid()
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))
    sent["id"] = "evt_old"
    Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key="evt_old",
        trigger_data=sent,
        status=Run.Status.SUCCEEDED,
    )

    response = post_event(sent)

    assert response.status_code == 200
    assert Run.objects.filter(trigger_key="evt_old").count() == 1
    assert TriggerEvent.objects.filter(key="evt_old").count() == 1


def test_a_failure_starting_runs_keeps_the_delivery_with_its_reason_and_queues_it_for_the_mirror(
    db, stripe_account, post_event, no_sync, monkeypatch
):
    slack_on_paid()

    def broken(trigger):
        raise RuntimeError("database went away")

    monkeypatch.setattr("automations.triggers.stripe_event.start_runs", broken)
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))

    response = post_event(sent)

    assert response.status_code == 500
    kept = WebhookEventTrigger.objects.get()
    assert (kept.valid, json.loads(kept.body)["id"]) == (True, sent["id"])
    assert kept.exception == "Starting runs failed: RuntimeError: database went away"
    assert "RuntimeError" in kept.traceback
    assert list(SyncQueue.objects.values_list("delivery_id", flat=True)) == [kept.pk]
    assert not Run.objects.exists() and not TriggerEvent.objects.exists()


def test_a_rotated_signing_secret_is_read_again_when_a_signature_fails(
    db, stripe_account, post_event, no_sync
):
    sent = event("customer.created", {"id": "cus_1", "object": "customer"})
    assert post_event(sent).status_code == 200  # the endpoint is now cached
    WebhookEndpoint.objects.filter(pk=stripe_account.pk).update(secret="whsec_rotated")

    assert post_event(dict(sent, id="evt_new"), secret="whsec_rotated").status_code == 200
    refused = post_event(dict(sent, id="evt_stale"), secret=WEBHOOK_SECRET)

    assert refused.status_code == 400
    assert WebhookEventTrigger.objects.filter(valid=False).count() == 1


def test_a_removed_endpoint_is_not_found_once_its_signature_fails(
    db, stripe_account, post_event, no_sync
):
    sent = event("customer.created", {"id": "cus_1", "object": "customer"})
    assert post_event(sent).status_code == 200
    WebhookEndpoint.objects.filter(pk=stripe_account.pk).delete()

    assert post_event(dict(sent, id="evt_after"), secret="whsec_other").status_code == 404


def test_a_delivery_that_finds_the_sync_batch_queued_does_not_ask_again_for_a_moment(
    db, stripe_account, post_event, monkeypatch
):
    queued = []
    monkeypatch.setattr(stripe_webhooks, "enqueue", lambda func, *args: queued.append(func))
    monkeypatch.setattr(stripe_webhooks, "_held_seen_at", float("-inf"))
    sent = event("customer.created", {"id": "cus_1", "object": "customer"})

    post_event(sent)  # takes the mark and queues a batch
    post_event(dict(sent, id="evt_2"))  # finds it held
    with CaptureQueriesContext(connection) as ctx:
        post_event(dict(sent, id="evt_3"))  # believes it held: no question asked

    assert queued == [stripe_webhooks.SYNC_TASK]
    assert not any("integrations_syncmark" in q["sql"] for q in ctx.captured_queries)
    assert SyncQueue.objects.count() == 3


def test_the_workers_sweep_queues_a_batch_for_deliveries_left_waiting(
    db, stripe_account, post_event, monkeypatch
):
    queued = []
    monkeypatch.setattr(stripe_webhooks, "enqueue", lambda func, *args: queued.append(func))
    post_event(event("customer.created", {"id": "cus_1", "object": "customer"}))
    SyncMark.release(stripe_webhooks.SYNC_QUEUED)  # the batch ended before this delivery

    stripe_webhooks.kick_sync_if_due()

    assert queued == [stripe_webhooks.SYNC_TASK, stripe_webhooks.SYNC_TASK]


def test_a_run_is_carried_in_five_statements(
    transactional_db, stripe_account, fake_slack, monkeypatch
):
    monkeypatch.setattr("automations.tasks.enqueue", lambda *args: None)  # carried below
    workflow = slack_on_paid()
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))
    from automations.triggers import stripe_event

    (run_id,) = stripe_event.start_runs(stripe_event.from_event(sent))
    connections.slack_token()  # read once per TOKEN_TTL, not per run

    with CaptureQueriesContext(connection) as ctx:
        assert runner.execute(run_id) == Run.Status.SUCCEEDED

    # Take it, read it, the step's evidence before the post, its outcome, the run's end.
    assert statements(ctx.captured_queries) == ["UPDATE", "SELECT", "INSERT", "UPDATE", "UPDATE"]
    run = Run.objects.get(pk=run_id)
    assert (run.workflow_id, run.attempt, run.started_at is not None) == (workflow.pk, 1, True)
    assert list(run.steps.values_list("status", "output")) == [
        ("succeeded", {"channel": "C0SALES", "ts": "1700000000.000001"})
    ]
    assert fake_slack.calls[-1]["body"]["text"] == f"Paid {sent['id']}"


def test_what_a_provider_answered_is_recorded_on_a_new_connection_if_the_old_one_dropped(
    transactional_db, monkeypatch
):
    calls = []

    def write():
        calls.append(connection.connection)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return RunStep.objects.count()

    Run.objects.exists()  # a connection is open

    assert runner.write_after_send(write) == 0
    assert len(calls) == 2 and calls[0] is not calls[1]


def test_a_saved_slack_token_is_used_at_once_here_and_within_seconds_elsewhere(
    db, fake_slack, monkeypatch
):
    post_slack()
    assert fake_slack.calls[-1]["auth"] == "Bearer xoxb-test-token"
    connections.Connection.save_token("slack", NEW_TOKEN)  # this process: at once
    post_slack()
    assert fake_slack.calls[-1]["auth"] == f"Bearer {NEW_TOKEN}"

    # Another process saved one (no signal here): believed stale until TOKEN_TTL passes.
    connections.Connection.objects.update(token="xoxb-from-elsewhere")
    post_slack()
    assert fake_slack.calls[-1]["auth"] == f"Bearer {NEW_TOKEN}"
    monkeypatch.setattr(connections, "TOKEN_TTL", 0)
    post_slack()
    assert fake_slack.calls[-1]["auth"] == "Bearer xoxb-from-elsewhere"


def _nice_in_a_worker(pipe):
    from automations.tasks import lower_priority

    lower_priority(sender="django_q", proc_name="Worker-1")
    pipe.send(os.nice(0))
    # Out at once: the parent's database connection, inherited by the fork, must not be
    # closed (terminated) from here.
    os._exit(0)


def test_a_worker_process_yields_the_cpu_to_the_web_processes(settings):
    settings.KANRI_WORKER_NICE = os.nice(0) + 3
    mine, theirs = multiprocessing.Pipe()
    worker = multiprocessing.get_context("fork").Process(
        target=_nice_in_a_worker, args=(theirs,), name="Worker-1"
    )
    worker.start()
    worker.join(10)

    assert mine.recv() == settings.KANRI_WORKER_NICE
    assert os.nice(0) == settings.KANRI_WORKER_NICE - 3  # this process is left alone
