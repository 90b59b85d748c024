"""Stripe delivers at least once, in any order: one run and one email per event, whatever.

Deliveries go over real HTTP to gunicorn (several OS processes at once for the races),
runs go through a real qcluster, and the side effect is a message at a real SMTP server.
Stripe's own docs: "endpoints might occasionally receive the same event more than once"
and "Stripe doesn't guarantee the delivery of events in the order that they're
generated" (https://docs.stripe.com/webhooks#handle-duplicate-events).
"""

import time

import pytest
from django.db import connection
from djstripe.models import WebhookEventTrigger

from automations.models import Run
from tests.builders import event, mail_ops_workflow, random_id
from tests.conftest import wait_until
from tests.reliability.web import WEB_THREADS, WEB_WORKERS

pytestmark = pytest.mark.cluster

# After every run has finished, how long a doubled run or email would have to show.
SETTLE = 1.0


def mail_workflow(event_type):
    """Mail ops once per `event_type` event, naming the event (the order is visible)."""
    return mail_ops_workflow(
        event_type,
        subject=f"{event_type} {{{{trigger.data.object.id}}}}",
        body="Status: {{trigger.data.object.status}}\n",
    )


def subscription(status, **fields):
    return {
        "id": fields.pop("id", None) or random_id("sub"),
        "object": "subscription",
        "customer": "cus_order",
        "status": status,
        **fields,
    }


def settle(served, counts, runs, mails):
    """Wait for `runs` runs to succeed and `mails` emails to arrive, then a little more in
    case a duplicate follows; count expected and observed; return the runs and mail."""
    try:
        wait_until(
            lambda: (
                Run.objects.filter(status=Run.Status.SUCCEEDED).count() >= runs
                and len(served.mail()) >= mails
            ),
            timeout=45,
            message=f"{runs} runs and {mails} emails",
        )
        time.sleep(SETTLE)
    except AssertionError:
        states = list(Run.objects.values_list("pk", "status"))
        print(f"runs {states}, mail {len(served.mail())}\n{served.web.log_text()[-8000:]}")
        raise
    finally:
        done, sent = list(Run.objects.order_by("pk")), served.mail()
        counts.add("runs_expected", runs)
        counts.add("runs_done", len(done))
        counts.add("side_effects_expected", mails)
        counts.add("side_effects_observed", len(sent))
    return done, sent


def test_events_delivered_again_and_again_run_once_and_mail_once(served, counts):
    workflow = mail_workflow("customer.subscription.created")
    served.await_index()
    copies = {2: None, 3: None, 5: None}  # how many times each event is delivered
    for n in copies:
        copies[n] = event("customer.subscription.created", subscription("active"))
    counts.add("deliveries_sent", sum(copies))
    counts.add("duplicates_injected", sum(n - 1 for n in copies))

    # One after another, each with a fresh signature, as Stripe's retries come.
    statuses = [served.deliver(sent).status for n, sent in copies.items() for _ in range(n)]

    assert statuses == [200] * sum(copies)
    runs, mail = settle(served, counts, runs=len(copies), mails=len(copies))
    assert sorted((r.workflow_id, r.trigger_key) for r in runs) == sorted(
        (workflow.pk, sent["id"]) for sent in copies.values()
    )
    assert sorted(message["Subject"] for _, message in mail) == sorted(
        f"customer.subscription.created {sent['data']['object']['id']}" for sent in copies.values()
    )
    assert WebhookEventTrigger.objects.filter(valid=True).count() == sum(copies)


def test_events_delivered_by_several_processes_at_once_run_once_and_mail_once(served, counts):
    workflow = mail_workflow("customer.subscription.created")
    served.await_index()
    races = {2: None, 3: None, 5: None}  # how many processes deliver each event at once
    for n in races:
        races[n] = event("customer.subscription.created", subscription("active"))
    counts.add("deliveries_sent", sum(races))
    counts.add("duplicates_injected", sum(n - 1 for n in races))

    statuses = []
    for n, sent in races.items():
        body, headers = served.signed(sent)  # one signature: the same request, n times
        statuses += served.deliver_at_once(body, headers, n)

    assert statuses == [200] * sum(races)
    runs, mail = settle(served, counts, runs=len(races), mails=len(races))
    assert sorted((r.workflow_id, r.trigger_key) for r in runs) == sorted(
        (workflow.pk, sent["id"]) for sent in races.values()
    )
    assert sorted(message["Subject"] for _, message in mail) == sorted(
        f"customer.subscription.created {sent['data']['object']['id']}" for sent in races.values()
    )
    assert WebhookEventTrigger.objects.filter(valid=True).count() == sum(races)


def test_events_out_of_order_are_all_kept_and_each_runs_once(served, counts):
    created_flow = mail_workflow("customer.subscription.created")
    updated_flow = mail_workflow("customer.subscription.updated")
    served.await_index()
    sub_id = random_id("sub")
    now = int(time.time())
    created = event(
        "customer.subscription.created",
        subscription("incomplete", id=sub_id),
        created=now - 30,
    )
    activated = event(
        "customer.subscription.updated",
        subscription("active", id=sub_id),
        created=now - 20,
        previous={"status": "incomplete"},
    )
    past_due = event(
        "customer.subscription.updated",
        subscription("past_due", id=sub_id),
        created=now - 10,
        previous={"status": "active"},
    )
    # The newest first, the update before the creation, the older update last; and the
    # creation twice, concurrently, for good measure.
    counts.add("deliveries_sent", 5)
    counts.add("duplicates_injected", 1)

    first = [served.deliver(past_due).status]
    body, headers = served.signed(created)
    first += served.deliver_at_once(body, headers, 2)
    first += [served.deliver(activated).status]
    first += [served.deliver(created).status]

    assert first == [200] * 5
    runs, mail = settle(served, counts, runs=3, mails=3)
    assert sorted((r.workflow_id, r.trigger_key) for r in runs) == sorted(
        [
            (created_flow.pk, created["id"]),
            (updated_flow.pk, activated["id"]),
            (updated_flow.pk, past_due["id"]),
        ]
    )
    # Each run has its own event's snapshot: nothing was merged, overwritten or lost.
    assert {r.trigger_key: r.snapshot for r in runs} == {
        e["id"]: e for e in (created, activated, past_due)
    }
    assert sorted(message.get_content() for _, message in mail) == [
        "Status: active\n",
        "Status: incomplete\n",
        "Status: past_due\n",
    ]
    assert sorted(WebhookEventTrigger.objects.values_list("valid", flat=True)) == [True] * 5


def test_deliveries_after_the_database_ended_every_connection_are_all_answered(served, counts):
    """A restart or failover ends every kept connection; the next request on each web
    thread, and the next task of each worker, must notice before its first query
    (config/postgresql/base.py) instead of failing it."""
    workflow = mail_workflow("customer.subscription.created")
    served.await_index()
    sent = [event("customer.subscription.created", subscription("active")) for _ in range(12)]
    counts.add("deliveries_sent", len(sent))
    body, headers = served.signed(sent[0])
    # At once, so that every web thread has opened (and kept) a connection.
    statuses = served.deliver_at_once(body, headers, WEB_WORKERS * WEB_THREADS)
    counts.add("duplicates_injected", WEB_WORKERS * WEB_THREADS - 1)
    statuses += [served.deliver(e).status for e in sent[1:4]]
    # Ended between bursts, as a restart comes: a run cut off mid-send is another test's.
    wait_until(
        lambda: (
            Run.objects.filter(status=Run.Status.SUCCEEDED).count() == 4 and len(served.mail()) == 4
        ),
        timeout=45,
        message="the first four runs",
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        ended = [pid for pid, _ in cursor.fetchall()]
        counts.fault("pg_terminate_backend (every web and worker connection)")

        def gone():
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [ended])
            return cursor.fetchone()[0] == 0

        # As after a restart: the old sessions are gone before the next request comes.
        wait_until(gone, timeout=10, message="the ended sessions to exit")
    assert len(ended) >= WEB_WORKERS  # at least one kept connection per web process
    statuses += [served.deliver(e).status for e in sent[4:]]

    assert statuses == [200] * (WEB_WORKERS * WEB_THREADS + len(sent) - 1)
    runs, mail = settle(served, counts, runs=len(sent), mails=len(sent))
    assert sorted((r.workflow_id, r.trigger_key) for r in runs) == sorted(
        (workflow.pk, e["id"]) for e in sent
    )
    assert sorted(message["Subject"] for _, message in mail) == sorted(
        f"customer.subscription.created {e['data']['object']['id']}" for e in sent
    )
