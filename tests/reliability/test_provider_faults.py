"""Providers failing under a real cluster: Slack's 429 with Retry-After, Stripe's 429 and
5xx, an SMTP server that is down. Each run retries with backoff, finishes exactly once,
and no fault makes a worker hammer the provider (the calls each fake saw are counted).
"""

import itertools
import time

from automations.engine.runner import MAX_STEP_ATTEMPTS
from automations.models import Run, Workflow
from integrations.stripe_client import get_client
from tests.builders import create_payment_intent, create_workflow, event, payment_intent_dict
from tests.conftest import wait_until
from tests.reliability.stack import FAST, PRODUCTION

TRIGGER = {"kind": "stripe_event", "event_type": "payment_intent.succeeded"}
SLACK = {
    "name": "notify",
    "kind": "slack.post_message",
    "config": {"channel": "C0OPS", "text": "Paid {{trigger.data.object.id}}"},
}
EMAIL = {
    "name": "mail",
    "kind": "email.send",
    "config": {
        "recipient": "team",
        "to": "ops@example.test",
        "subject": "Paid {{trigger.data.object.id}}",
        "body": "b",
    },
}
REFUND = {
    "name": "refund",
    "kind": "stripe.create_refund",
    "config": {
        "charge": "{{trigger.data.object.latest_charge}}",
        "amount": 1000,
        "currency": "{{trigger.data.object.currency}}",
    },
}


def workflow(step):
    return create_workflow(
        {
            "name": step["name"],
            "trigger": TRIGGER,
            "conditions": [],
            "steps": [step],
            "limits": {"per_run": {"usd": 10000}, "per_day": {"usd": 100000}},
        },
        status=Workflow.Status.ACTIVE,
    )


def attempts(run):
    return list(run.steps.order_by("pk").values_list("attempt", "status", "error"))


def succeeded(flow, n=1):
    runs = list(Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED))
    return runs if len(runs) == n else None


def test_a_slack_429_is_retried_as_soon_as_retry_after_allows_with_the_shipped_clocks(
    kanri, post_event, counts
):
    kanri.start_cluster(PRODUCTION, workers=2)
    flow = workflow(SLACK)
    kanri.slack.fail_next("ratelimited", status=429, headers={"Retry-After": "1"})
    sent = event("payment_intent.succeeded", payment_intent_dict(150000, "usd"))

    assert post_event(sent).status_code == 200
    counts.add("deliveries_sent")
    counts.fault("slack 429 Retry-After: 1")
    [run] = wait_until(lambda: succeeded(flow), timeout=30, message="the retried post")

    first, second = kanri.slack.calls
    waited = second["at"] - first["at"]
    print(f"\nSlack 429 Retry-After: 1, the retry came after {waited:.1f} s (sweep every 5 s)")
    # Not before Slack allows it, and within Retry-After + one sweep + a little.
    assert 1 <= waited <= 1 + 5 + 2
    assert attempts(run) == [(1, "retrying", "Slack ratelimited"), (2, "succeeded", "")]
    assert (
        kanri.slack.messages()
        == [{"channel": "C0OPS", "text": f"Paid {sent['data']['object']['id']}"}] * 2
    )
    counts.add("runs_expected")
    counts.add("runs_done")
    counts.add("side_effects_expected")
    counts.add("side_effects_observed", len(kanri.slack.posted))


def test_a_storm_of_slack_429s_costs_one_call_per_retry_and_each_run_posts_once(
    kanri, post_event, counts
):
    kanri.start_cluster(FAST, workers=3)
    flow = workflow(SLACK)
    storm = 12  # Slack refuses the next 12 calls, whoever makes them
    kanri.slack.fail_next("ratelimited", status=429, headers={"Retry-After": "1"}, times=storm)
    sent = [event("payment_intent.succeeded", payment_intent_dict(1000, "usd")) for _ in range(6)]

    for one in sent:
        assert post_event(one).status_code == 200
    counts.add("deliveries_sent", len(sent))
    counts.fault("slack 429 Retry-After: 1", storm)
    runs = wait_until(lambda: succeeded(flow, len(sent)), timeout=60, message="every run to post")

    # Every call was either refused by the storm or posted a message: no busy loop.
    assert len(kanri.slack.calls) == storm + len(sent)
    assert sorted(m["text"] for m in kanri.slack.posted) == sorted(
        f"Paid {one['data']['object']['id']}" for one in sent
    )
    # Each run waited at least the second Slack asked for between its calls.
    for one in sent:
        text = f"Paid {one['data']['object']['id']}"
        times = [c["at"] for c in kanri.slack.calls if c["body"].get("text") == text]
        assert 1 <= len(times) <= MAX_STEP_ATTEMPTS
        assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))
    assert sum(run.steps.count() for run in runs) == storm + len(sent)
    counts.add("runs_expected", len(sent))
    counts.add("runs_done", len(runs))
    counts.add("side_effects_expected", len(sent))
    counts.add("side_effects_observed", len(kanri.slack.posted))


def test_stripe_429_and_5xx_are_retried_with_backoff_and_refund_exactly_once(
    kanri, post_event, counts
):
    kanri.start_cluster(FAST, workers=2)
    flow = workflow(REFUND)
    intent = create_payment_intent(amount=5000, currency="usd")
    kanri.stripe.fail("/v1/refunds", status=429, type="invalid_request_error", code="rate_limit")
    # Stripe made the refund, but its answer was lost on the way back.
    kanri.stripe.fail("/v1/refunds", status=500, after=True)
    kanri.stripe.fail("/v1/refunds", status=503)

    assert post_event(event("payment_intent.succeeded", intent)).status_code == 200
    counts.add("deliveries_sent")
    counts.fault("stripe 429")
    counts.fault("stripe 5xx", 2)
    [run] = wait_until(lambda: succeeded(flow), timeout=30, message="the refund to go through")

    statuses = [(a, s) for a, s, _ in attempts(run)]
    assert statuses == [(1, "retrying"), (2, "retrying"), (3, "retrying"), (4, "succeeded")]
    posts = kanri.stripe.requests(path="/v1/refunds", method="POST")
    assert [(r.get("fault"), bool(r.get("replayed"))) for r in posts] == [
        (429, False),
        (500, False),
        (503, False),
        (None, True),  # Stripe replays the refund it made on attempt 2
    ]
    assert len({r["idempotency_key"] for r in posts}) == 1
    # Backoff: each retry waited at least its delay (0.5, 1, 2 s here).
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(posts)]
    assert [g >= d * 0.95 for g, d in zip(gaps, (0.5, 1, 2), strict=True)] == [True] * 3
    refunded = get_client().v1.charges.retrieve(intent["latest_charge"]).amount_refunded
    assert refunded == 1000
    counts.add("runs_expected")
    counts.add("runs_done")
    counts.add("side_effects_expected")
    counts.add("side_effects_observed", refunded // 1000)


def test_mail_waits_for_an_smtp_server_that_is_down_and_is_sent_once_when_it_is_back(
    kanri, post_event, counts
):
    kanri.smtp.down()
    kanri.start_cluster(FAST, workers=2)
    flow = workflow(EMAIL)
    sent = event("payment_intent.succeeded", payment_intent_dict(1000, "usd"))

    assert post_event(sent).status_code == 200
    counts.add("deliveries_sent")
    counts.fault("smtp down")
    wait_until(
        lambda: (
            Run.objects.filter(workflow=flow).first()
            and Run.objects.get(workflow=flow).steps.count() >= 2
        ),
        timeout=30,
        message="two refused attempts",
    )
    kanri.smtp.up()
    [run] = wait_until(lambda: succeeded(flow), timeout=30, message="the mail to go out")

    rows = attempts(run)
    assert 3 <= len(rows) <= MAX_STEP_ATTEMPTS
    assert [status for _, status, _ in rows] == ["retrying"] * (len(rows) - 1) + ["succeeded"]
    assert all(error.startswith("SMTP server unreachable") for _, _, error in rows[:-1])
    [(_, recipients, message)] = kanri.smtp.messages
    assert (recipients, message["Subject"]) == (
        ["ops@example.test"],
        f"Paid {sent['data']['object']['id']}",
    )
    time.sleep(1)
    assert len(kanri.smtp.messages) == 1
    counts.add("runs_expected")
    counts.add("runs_done")
    counts.add("side_effects_expected")
    counts.add("side_effects_observed", len(kanri.smtp.messages))
