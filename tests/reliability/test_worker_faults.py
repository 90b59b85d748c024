"""Workers killed with kill -9 in the middle of a refund, a Slack post and an email.

The fakes hold each request on the wire so the kill lands mid-send; they carry the
request out when the hold ends, as the real providers do when a client dies after
sending. So a refund is done at Stripe, a message posted and a mail delivered, while
the audit says only "started". What must follow: the refund is never made twice (the
retry carries the same idempotency key and Stripe replays it), the post and the mail
are never sent again silently (their steps read "outcome unknown" and the run waits
for a person), and all of it settles within 90 s with the shipped clocks.
"""

import time

from automations.engine.runner import MAX_INTERRUPTIONS
from automations.models import Run, Workflow
from integrations.stripe_client import get_client
from tests.builders import create_payment_intent, create_workflow, event
from tests.conftest import wait_until
from tests.reliability.stack import FAST, PRODUCTION

TRIGGER = {"kind": "stripe_event", "event_type": "payment_intent.succeeded"}
LIMITS = {"per_run": {"usd": 10000}, "per_day": {"usd": 100000}}
REFUND = {
    "name": "refund",
    "kind": "stripe.create_refund",
    "config": {
        "charge": "{{trigger.data.object.latest_charge}}",
        "amount": 1000,
        "currency": "{{trigger.data.object.currency}}",
    },
}
SLACK = {
    "name": "notify",
    "kind": "slack.post_message",
    "config": {"channel": "C0OPS", "text": "Paid {{trigger.data.object.id}}"},
}
EMAIL = {
    "name": "mail",
    "kind": "email.send",
    "config": {"recipient": "team", "to": "ops@example.test", "subject": "Paid", "body": "b"},
}


def workflow(name, step):
    return create_workflow(
        {"name": name, "trigger": TRIGGER, "conditions": [], "steps": [step], "limits": LIMITS},
        status=Workflow.Status.ACTIVE,
    )


def rows(run):
    return list(run.steps.order_by("pk").values_list("step_name", "attempt", "status"))


def refunds_made(charge_id):
    """Refunds Stripe carried out for the charge (replays of an idempotent request are not)."""
    return get_client().v1.charges.retrieve(charge_id).amount_refunded // REFUND["config"]["amount"]


def three_runs_in_flight(kanri, post_event, counts, hold):
    """Post one event to three workflows (refund, Slack, email) and wait until each of
    their requests is held on the wire. Return the runs by name and the charge id."""
    flows = {"refund": workflow("Refund", REFUND), "slack": workflow("Post", SLACK)}
    flows["email"] = workflow("Mail", EMAIL)
    intent = create_payment_intent(amount=5000, currency="usd")
    kanri.stripe_proxy.hold("/v1/refunds", hold)
    kanri.slack.hold(hold)
    kanri.smtp.hold(hold)

    assert post_event(event("payment_intent.succeeded", intent)).status_code == 200
    counts.add("deliveries_sent")
    wait_until(
        lambda: (
            ("POST", "/v1/refunds") in kanri.stripe_proxy.arrived
            and kanri.slack.arrived
            and kanri.smtp.arrived
        ),
        timeout=30,
        message="the refund, the post and the mail to be on the wire",
    )
    runs = {name: Run.objects.get(workflow=flow) for name, flow in flows.items()}
    assert {name: rows(run) for name, run in runs.items()} == {
        "refund": [("refund", 1, "started")],
        "slack": [("notify", 1, "started")],
        "email": [("mail", 1, "started")],
    }
    return runs, intent["latest_charge"]


def settled(runs):
    for run in runs.values():
        run.refresh_from_db()
    return (
        runs["refund"].status == Run.Status.SUCCEEDED
        and runs["slack"].status == Run.Status.HELD
        and runs["email"].status == Run.Status.HELD
    )


def assert_exactly_once_and_outcome_unknown(kanri, runs, charge_id, counts):
    assert rows(runs["refund"]) == [("refund", 1, "interrupted"), ("refund", 2, "succeeded")]
    refund_posts = kanri.stripe.requests(path="/v1/refunds", method="POST")
    assert len(refund_posts) == 2
    assert len({r["idempotency_key"] for r in refund_posts}) == 1
    assert [bool(r.get("replayed")) for r in refund_posts] == [False, True]
    assert refunds_made(charge_id) == 1

    for name, step in (("slack", "notify"), ("email", "mail")):
        run = runs[name]
        assert (run.hold_reason, run.attempt, run.interruptions) == (
            Run.HoldReason.OUTCOME_UNKNOWN,
            2,
            1,
        )
        assert rows(run) == [(step, 1, "unknown")]
    # Each went out once, while the worker was dying, and was not sent again.
    intent_id = runs["slack"].snapshot["data"]["object"]["id"]
    assert [m["text"] for m in kanri.slack.messages()] == [f"Paid {intent_id}"]
    assert len(kanri.smtp.messages) == 1

    counts.add("runs_expected", 3)
    counts.add(
        "runs_done",
        Run.objects.filter(pk=runs["refund"].pk, status=Run.Status.SUCCEEDED).count()
        + Run.objects.filter(
            pk__in=[runs["slack"].pk, runs["email"].pk],
            status=Run.Status.HELD,
            hold_reason=Run.HoldReason.OUTCOME_UNKNOWN,
        ).count(),
    )
    counts.add("side_effects_expected", 3)
    counts.add(
        "side_effects_observed",
        refunds_made(charge_id) + len(kanri.slack.messages()) + len(kanri.smtp.messages),
    )


def test_a_cluster_killed_mid_refund_post_and_mail_recovers_within_90_s_with_shipped_clocks(
    kanri, post_event, counts
):
    kanri.start_cluster(PRODUCTION, workers=3)
    runs, charge_id = three_runs_in_flight(kanri, post_event, counts, hold=4)

    kanri.cluster.kill_all()
    killed_at = time.monotonic()
    counts.fault("cluster kill -9 (every process)")
    kanri.start_cluster(PRODUCTION, workers=3)
    wait_until(lambda: settled(runs), timeout=90, interval=0.2, message="the runs to recover")
    recovered_in = time.monotonic() - killed_at

    print(f"\nRecovery after kill -9 of the whole cluster (shipped clocks): {recovered_in:.1f} s")
    assert recovered_in < 90
    assert_exactly_once_and_outcome_unknown(kanri, runs, charge_id, counts)


def test_workers_killed_mid_step_are_replaced_and_their_runs_taken_up_again(
    kanri, post_event, counts
):
    # The lease outlasts the hold, as the shipped 30 s lease outlasts Stripe's 20 s
    # timeout: a resumed run never races the request its dead worker left on the wire.
    cluster = kanri.start_cluster({**FAST, "KANRI_RUN_LEASE_SECONDS": "4"}, workers=3)
    runs, charge_id = three_runs_in_flight(kanri, post_event, counts, hold=2)

    assert cluster.kill_busy_workers() >= 3
    killed_at = time.monotonic()
    counts.fault("worker kill -9", 3)
    wait_until(lambda: settled(runs), timeout=60, interval=0.1, message="the runs to recover")

    print(
        f"\nRecovery after kill -9 of the workers (4 s lease): {time.monotonic() - killed_at:.1f} s"
    )
    assert cluster.process.poll() is None  # the sentinel replaced its workers
    assert len(cluster.workers()) == 3
    assert_exactly_once_and_outcome_unknown(kanri, runs, charge_id, counts)


def test_a_step_slower_than_the_lease_keeps_its_run_while_the_worker_lives(
    kanri, post_event, counts
):
    kanri.start_cluster(FAST, workers=2)  # a 2 s lease, renewed every 0.5 s
    flow = workflow("Post", SLACK)
    kanri.slack.hold(5)
    intent = create_payment_intent(amount=5000, currency="usd")

    assert post_event(event("payment_intent.succeeded", intent)).status_code == 200
    counts.add("deliveries_sent")
    run = wait_until(
        lambda: Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED).first(),
        timeout=30,
        message="the slow post to finish",
    )

    assert (run.attempt, run.interruptions) == (1, 0)
    assert rows(run) == [("notify", 1, "succeeded")]
    assert [m["text"] for m in kanri.slack.messages()] == [f"Paid {intent['id']}"]
    counts.add("runs_expected")
    counts.add("runs_done")
    counts.add("side_effects_expected")
    counts.add("side_effects_observed", len(kanri.slack.messages()))


def test_a_run_whose_worker_keeps_dying_fails_visibly_at_the_attempt_cap(kanri, post_event, counts):
    cluster = kanri.start_cluster(FAST, workers=2)
    flow = workflow("Refund", REFUND)
    intent = create_payment_intent(amount=5000, currency="usd")
    kanri.stripe_proxy.hold("/v1/refunds", 1, times=MAX_INTERRUPTIONS)

    assert post_event(event("payment_intent.succeeded", intent)).status_code == 200
    counts.add("deliveries_sent")
    for death in range(1, MAX_INTERRUPTIONS + 1):
        wait_until(
            lambda n=death: kanri.stripe_proxy.arrived.count(("POST", "/v1/refunds")) == n,
            timeout=30,
            message=f"attempt {death} of the refund",
        )
        assert cluster.kill_busy_workers() >= 1
        counts.fault("worker kill -9")
    run = wait_until(
        lambda: Run.objects.filter(workflow=flow, status=Run.Status.FAILED).first(),
        timeout=30,
        message="the run to fail at the cap",
    )

    assert run.error == f"Stopped: the worker running it stopped {MAX_INTERRUPTIONS} times."
    assert (run.attempt, run.interruptions) == (MAX_INTERRUPTIONS, MAX_INTERRUPTIONS)
    assert rows(run) == [("refund", n, "interrupted") for n in range(1, MAX_INTERRUPTIONS)] + [
        ("refund", MAX_INTERRUPTIONS, "unknown")
    ]
    time.sleep(1.5)  # past the lease and a few sweeps: nothing takes a failed run again
    assert kanri.stripe_proxy.arrived.count(("POST", "/v1/refunds")) == MAX_INTERRUPTIONS
    # Five deaths, one refund: every attempt carried the same idempotency key.
    assert refunds_made(intent["latest_charge"]) == 1
    counts.add("runs_expected")
    counts.add("runs_done")
    counts.add("side_effects_expected")
    counts.add("side_effects_observed", refunds_made(intent["latest_charge"]))
