"""A queue worker's bookkeeping commits without waiting for the disk; what precedes a
provider call is flushed first (automations/engine/commits.py)."""

import multiprocessing
import os

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations import alerts
from automations.engine import commits, runner
from automations.models import FailureAlert, Run
from automations.triggers import stripe_event
from integrations.connections import slack_token
from integrations.slack_actions import PostMessage
from tests.builders import event, payment_intent_dict
from tests.test_hot_paths import slack_on_paid

on_postgresql = pytest.mark.postgresql
FLUSH = "SET LOCAL synchronous_commit TO on"


@pytest.fixture
def in_a_worker(monkeypatch):
    """This process's sessions as a queue worker's (post_spawn ran relax_in_workers)."""
    monkeypatch.setattr(commits, "_relaxed", True)
    options = connection.settings_dict.setdefault("OPTIONS", {})
    monkeypatch.setitem(options, "options", options.get("options", ""))  # put back after
    commits.relax_sessions()


def session_setting(alias="default"):
    wrapper = connections.create_connection(alias)
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]
    finally:
        wrapper.close()


@on_postgresql
def test_a_workers_new_connections_commit_without_waiting_for_the_disk(db, in_a_worker):
    assert session_setting() == "off"


@on_postgresql
def test_the_web_processes_connections_wait_for_the_disk(db):
    assert session_setting() == "on"


@on_postgresql
def test_the_workers_bookkeeping_is_relaxed_but_the_step_before_the_post_is_flushed(
    transactional_db, stripe_account, fake_slack, in_a_worker, monkeypatch
):
    monkeypatch.setattr("automations.tasks.enqueue", lambda *args: None)  # carried below
    slack_on_paid()
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))
    (run_id,) = stripe_event.start_runs(stripe_event.from_event(sent))
    connection.close()  # the run is carried on a worker's connection
    slack_token()  # read once per TOKEN_TTL, not per run
    at_send = []
    post = PostMessage.send

    def send(self, request, call):
        at_send.append([q["sql"] for q in ctx.captured_queries])
        return post(self, request, call)

    monkeypatch.setattr(PostMessage, "send", send)
    with CaptureQueriesContext(connection) as ctx:
        assert runner.execute(run_id) == Run.Status.SUCCEEDED

    sql = [q["sql"] for q in ctx.captured_queries]
    # Take it and read it (relaxed); the step's evidence, flushed with all before it;
    # the post; its outcome and the run's end (relaxed).
    assert [s if s == FLUSH else s.split()[0] for s in sql] == [
        "UPDATE",
        "SELECT",
        "BEGIN",
        FLUSH,
        "INSERT",
        "COMMIT",
        "UPDATE",
        "UPDATE",
    ]
    assert at_send == [sql[:6]]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"
    assert len(fake_slack.calls) == 1


def test_outside_a_worker_a_step_is_written_as_before(
    transactional_db, stripe_account, fake_slack, monkeypatch
):
    monkeypatch.setattr("automations.tasks.enqueue", lambda *args: None)
    slack_on_paid()
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))
    (run_id,) = stripe_event.start_runs(stripe_event.from_event(sent))

    with CaptureQueriesContext(connection) as ctx:
        assert runner.execute(run_id) == Run.Status.SUCCEEDED

    assert not any("synchronous_commit" in q["sql"] for q in ctx.captured_queries)


@on_postgresql
def test_a_failure_alert_is_flushed_before_it_is_sent(
    transactional_db, stripe_account, fake_slack, in_a_worker, monkeypatch
):
    workflow = slack_on_paid()
    workflow.failure_alerts = "slack"
    workflow.alert_channel = "C0OPS"
    workflow.save()
    monkeypatch.setattr("automations.tasks.enqueue", lambda *args: None)
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))
    (run_id,) = stripe_event.start_runs(stripe_event.from_event(sent))
    Run.objects.filter(pk=run_id).update(status=Run.Status.FAILED, finished_at=timezone.now())
    at_send = []
    monkeypatch.setattr(
        alerts,
        "_send",
        lambda *args: at_send.append([q["sql"] for q in ctx.captured_queries]),
    )

    with CaptureQueriesContext(connection) as ctx:
        alert = alerts.alert_workflow(workflow)

    assert alert.status == FailureAlert.Status.SENT
    (before,) = at_send
    flushed = before.index(FLUSH)
    assert [s.split()[0] for s in before[flushed + 1 :]] == ["INSERT", "INSERT", "COMMIT"]


def _relax_in_a_worker(pipe):
    # django-q2 closes every connection before it forks a worker; this fork inherits the
    # test's open one, whose closing would end the parent's session: set it aside.
    inherited = connection.connection  # noqa: F841 (kept: its finalizer would close it)
    connection.connection = None
    commits.relax_in_workers()
    pipe.send(commits._relaxed)
    os._exit(0)  # no cleanup: the inherited sockets are the parent's


def relaxed_in_a_forked_worker():
    """Whether relax_in_workers relaxes a django-q2 worker process (a fork named Worker-1)."""
    mine, theirs = multiprocessing.Pipe()
    worker = multiprocessing.get_context("fork").Process(
        target=_relax_in_a_worker, args=(theirs,), name="Worker-1"
    )
    worker.start()
    worker.join(10)
    return mine.recv()


def test_only_a_worker_process_is_relaxed(settings):
    settings.KANRI_WORKER_ASYNC_COMMIT = True

    assert relaxed_in_a_forked_worker() is True
    commits.relax_in_workers()  # this process (MainProcess) is left alone
    assert commits._relaxed is False


def test_a_deployment_can_keep_every_commit_waiting(settings):
    settings.KANRI_WORKER_ASYNC_COMMIT = False

    assert relaxed_in_a_forked_worker() is False


@on_postgresql
def test_a_deployers_own_startup_options_are_kept_beside_the_workers(monkeypatch):
    options = connection.settings_dict.setdefault("OPTIONS", {})
    monkeypatch.setitem(options, "options", "-c statement_timeout=5000")

    commits.relax_sessions()
    commits.relax_sessions()  # a second spawn in the same process adds nothing

    assert options["options"] == "-c statement_timeout=5000 -c synchronous_commit=off"
