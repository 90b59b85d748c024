"""The engine's clocks: Retry-After taken as given, the lease a live worker renews, the
sweeper every worker runs, and the faults (a dropped database connection, a broker
that is down) that must not stop the work. Timing under a real cluster is proved in
tests/reliability; these tests check the decisions and the rows they write."""

import logging
import os
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from automations import tasks
from automations.engine import runner
from automations.engine.runner import RETRY_DELAYS, Heartbeat, reconnect_if_lost, retry_delay
from automations.models import Run, Workflow
from integrations import queue
from tests.builders import create_workflow, event, payment_intent_dict

SLACK = {
    "name": "notify",
    "kind": "slack.post_message",
    "config": {"channel": "C0OPS", "text": "Paid {{trigger.data.object.id}}"},
}


@pytest.fixture
def slack_run(stripe_account, fake_slack, post_event):
    """Post an event to an active Slack workflow; return (the run, the fake Slack)."""

    def post(*failures):
        for failure in failures:
            fake_slack.fail_next(*failure[:2], headers=failure[2])
        create_workflow(
            {
                "name": "Notify",
                "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
                "conditions": [],
                "steps": [SLACK],
            },
            status=Workflow.Status.ACTIVE,
        )
        post_event(event("payment_intent.succeeded", payment_intent_dict(1000, "usd")))
        return Run.objects.get()

    return post


def test_retry_after_is_taken_as_given_shorter_or_longer_than_the_backoff():
    assert RETRY_DELAYS == (30, 120, 600, 1800)  # the shipped backoff (.env.example)
    assert retry_delay(1, 1) == 1
    assert retry_delay(4, 7200) == 7200
    assert retry_delay(1, None) == 30
    assert retry_delay(2, None) == 120
    assert retry_delay(1, 0) == 0


def test_a_slack_429_with_retry_after_1_is_due_one_second_later_not_thirty(slack_run):
    run = slack_run(("ratelimited", 429, {"Retry-After": "1"}))

    assert (run.status, run.error) == (
        Run.Status.RETRYING,
        "Step 'notify' failed (attempt 1): Slack ratelimited",
    )
    assert run.next_attempt_at - run.steps.get().finished_at == pytest.approx(
        timedelta(seconds=1), abs=timedelta(milliseconds=500)
    )


def test_the_heartbeat_renews_only_the_attempt_it_beats_for_and_only_while_running(
    slack_run,
):
    run = slack_run()
    old = timezone.now() - timedelta(seconds=1)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, attempt=3, lease_until=old)

    assert Heartbeat(run.pk, 2).renew() is False  # an earlier attempt's worker: not its run
    run.refresh_from_db()
    assert run.lease_until == old

    before = timezone.now()
    assert Heartbeat(run.pk, 3).renew() is True
    run.refresh_from_db()
    assert before + runner.LEASE <= run.lease_until <= timezone.now() + runner.LEASE

    Run.objects.filter(pk=run.pk).update(status=Run.Status.HELD, lease_until=None)
    assert Heartbeat(run.pk, 3).renew() is False  # a held run is never given a lease back
    run.refresh_from_db()
    assert run.lease_until is None


def test_the_shipped_lease_outlasts_stripes_timeout_and_several_missed_beats():
    from integrations.stripe_client import TIMEOUT

    # A resumed run must not race a request its dead worker left on the wire.
    lease = runner.LEASE.total_seconds()
    assert lease > TIMEOUT
    assert lease >= 3 * runner.HEARTBEAT


def test_a_connection_the_database_dropped_is_closed_before_the_next_write(
    transactional_db, monkeypatch
):
    Run.objects.exists()  # open the connection
    monkeypatch.setattr(connection, "is_usable", lambda: False)

    reconnect_if_lost()

    assert connection.connection is None  # the next query opens a new one
    monkeypatch.undo()
    assert Run.objects.count() == 0


def test_inside_a_transaction_the_connection_is_left_alone(db, monkeypatch):
    Run.objects.exists()
    monkeypatch.setattr(connection, "is_usable", lambda: False)

    reconnect_if_lost()

    assert connection.connection is not None  # closing it would lose the transaction


def test_a_broker_that_is_down_is_logged_and_does_not_fail_the_caller(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:9/0")  # nothing listens there
    monkeypatch.setattr(queue, "_broker", Redis(list_key="kanri-test"))
    monkeypatch.setattr(queue, "_broker_pid", os.getpid())

    with caplog.at_level(logging.WARNING, "integrations.queue"):
        queue._put("automations.tasks.run_workflow", (41,))

    [record] = caplog.records
    assert record.getMessage().startswith(
        "Could not queue automations.tasks.run_workflow(41,) (Error 111 connecting to"
    )
    assert record.getMessage().endswith("; its sweeper will queue it again")


def test_tasks_run_inline_still_raise_their_own_errors(db, monkeypatch):
    # Sync mode (the suite's) must not hide a task's exception behind "could not queue".
    with pytest.raises(ValueError, match="no-such"):
        queue._put("automations.tasks.no-such", ())


def test_only_a_cluster_worker_process_starts_a_sweeper():
    before = {t.name for t in threading.enumerate()}

    tasks.start_sweeping(sender="django_q", proc_name="MainProcess")

    assert "kanri-sweeper" not in {t.name for t in threading.enumerate()} - before
