"""A failing Slack, SMTP server or Stripe: transient errors are retried with backoff,
permanent ones are not, and the run's audit rows say what the provider answered."""

import time
from datetime import timedelta

import pytest
from time_machine import travel

from automations.engine.runner import RETRY_DELAYS
from automations.models import Run, Workflow
from automations.tasks import retry_due_runs
from tests.builders import create_workflow, event, payment_intent_dict


def workflow_with(*steps):
    return create_workflow(
        {
            "name": "Notify",
            "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
            "conditions": [],
            "steps": list(steps),
        },
        status=Workflow.Status.ACTIVE,
    )


SLACK = {
    "name": "notify",
    "kind": "slack.post_message",
    "config": {
        "channel": "C0OPS",
        "mention": "here",
        "text": "{{trigger.data.object.amount | money}} from {{trigger.data.object.description}}",
    },
}
EMAIL = {
    "name": "notify",
    "kind": "email.send",
    "config": {
        "recipient": "team",
        "to": "ops@example.test",
        "subject": "Paid",
        "body": "{{trigger.data.object.id}}",
    },
}
TAG = {
    "name": "tag",
    "kind": "stripe.update_customer_metadata",
    "config": {"customer": "{{trigger.data.object.customer}}", "metadata": {"Tier": "VIP"}},
}


def attempts(run):
    return list(run.steps.order_by("pk").values_list("attempt", "status", "error"))


@pytest.fixture
def retry_later(django_capture_on_commit_callbacks):
    """Jump past a run's retry delay and let the sweeper queue it (tasks run inline)."""

    def jump(seconds):
        with travel(time.time() + seconds), django_capture_on_commit_callbacks(execute=True):
            return retry_due_runs()

    return jump


def test_slack_data_is_escaped_so_it_cannot_mention_everyone(
    stripe_account, fake_slack, post_event
):
    workflow_with(SLACK)

    post_event(
        event(
            "payment_intent.succeeded",
            payment_intent_dict(150000, "usd", description="<!channel> Tom & Jerry"),
        )
    )

    assert fake_slack.messages() == [
        {"channel": "C0OPS", "text": "<!here> $1,500.00 from &lt;!channel&gt; Tom &amp; Jerry"}
    ]
    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    assert run.steps.get().output == {"channel": "C0OPS", "ts": "1700000000.000001"}


def test_a_slack_outage_is_retried_with_backoff_and_posts_once(
    stripe_account, fake_slack, post_event, retry_later
):
    workflow_with(SLACK)
    fake_slack.fail_next("internal_error", status=500)

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    run = Run.objects.get()
    assert (run.status, run.error) == (
        Run.Status.RETRYING,
        "Step 'notify' failed (attempt 1): Slack internal_error",
    )
    assert run.next_attempt_at - run.steps.get().finished_at == pytest.approx(
        timedelta(seconds=RETRY_DELAYS[0]), abs=timedelta(seconds=2)
    )
    assert retry_later(RETRY_DELAYS[0] + 1) == 1
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED
    assert attempts(run) == [(1, "retrying", "Slack internal_error"), (2, "succeeded", "")]
    assert len(fake_slack.messages()) == 2  # the failed call, then the one that worked


def test_a_slack_that_keeps_failing_fails_the_run_after_the_last_attempt(
    stripe_account, fake_slack, post_event, retry_later
):
    workflow_with(SLACK)
    fake_slack.fail_next("ratelimited", status=429, headers={"Retry-After": "200"}, times=5)

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))
    run = Run.objects.get()
    # Slack asked for 200 s, longer than the first delay (30 s).
    assert run.next_attempt_at - run.steps.get().finished_at == pytest.approx(
        timedelta(seconds=200), abs=timedelta(seconds=2)
    )
    elapsed = 0
    for delay in (200, *RETRY_DELAYS[1:]):
        elapsed += max(delay, 200) + 1
        assert retry_later(elapsed) == 1

    run.refresh_from_db()
    assert (run.status, run.error) == (Run.Status.FAILED, "Step 'notify' failed: Slack ratelimited")
    assert attempts(run) == [(n, "retrying", "Slack ratelimited") for n in range(1, 5)] + [
        (5, "failed", "Slack ratelimited")
    ]
    assert retry_later(elapsed + 10_000) == 0


def test_a_permanent_slack_error_is_not_retried(
    stripe_account, fake_slack, post_event, retry_later
):
    workflow_with(SLACK)
    fake_slack.fail_next("channel_not_found")

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    run = Run.objects.get()
    assert (run.status, run.error) == (
        Run.Status.FAILED,
        "Step 'notify' failed: Slack channel_not_found",
    )
    assert attempts(run) == [(1, "failed", "Slack channel_not_found")]
    assert run.steps.get().input == {"channel": "C0OPS", "text": "<!here> $1,500.00 from "}
    assert retry_later(10_000) == 0
    assert len(fake_slack.calls) == 1


def test_an_smtp_server_refusing_for_now_is_retried(
    stripe_account, smtp_server, post_event, retry_later
):
    workflow_with(EMAIL)
    smtp_server.refuse = 1

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    run = Run.objects.get()
    assert attempts(run) == [
        (1, "retrying", "SMTP 451: Requested action aborted: local error in processing")
    ]
    assert retry_later(RETRY_DELAYS[0] + 1) == 1
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED
    assert [recipients for _, recipients, _ in smtp_server.messages] == [["ops@example.test"]]


def test_an_smtp_server_rejecting_the_message_fails_the_run_at_once(
    stripe_account, smtp_server, post_event
):
    workflow_with(EMAIL)
    smtp_server.refuse, smtp_server.refusal = 1, "554 Transaction failed: message rejected"

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    run = Run.objects.get()
    assert attempts(run) == [(1, "failed", "SMTP 554: Transaction failed: message rejected")]
    assert run.status == Run.Status.FAILED


def test_an_unreachable_smtp_server_is_retried(stripe_account, settings, post_event):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9
    workflow_with(EMAIL)

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    run = Run.objects.get()
    [(attempt, status, error)] = attempts(run)
    assert (attempt, status, run.status) == (1, "retrying", Run.Status.RETRYING)
    assert error.startswith("SMTP server unreachable: [Errno 111] Connection refused")


def test_a_stripe_outage_is_retried_and_a_stripe_refusal_is_not(
    stripe_account, fake_stripe, post_event, retry_later
):
    workflow_with(TAG)
    fake_stripe.fail("/v1/customers/cus_gone", status=503, message="Stripe is down")
    fake_stripe.fail(
        "/v1/customers/cus_gone",
        status=400,
        type="invalid_request_error",
        code="resource_missing",
        message="No such customer: 'cus_gone'",
    )

    post_event(
        event("payment_intent.succeeded", payment_intent_dict(150000, "usd", customer="cus_gone"))
    )
    run = Run.objects.get()
    assert run.status == Run.Status.RETRYING
    retry_later(RETRY_DELAYS[0] + 1)

    run.refresh_from_db()
    assert attempts(run) == [
        (1, "retrying", "Stripe 503 APIError: Stripe is down"),
        (
            2,
            "failed",
            "Stripe 400 InvalidRequestError (resource_missing): No such customer: 'cus_gone'",
        ),
    ]
    assert run.status == Run.Status.FAILED
    posts = fake_stripe.requests(path="/v1/customers/cus_gone", method="POST")
    assert [p["idempotency_key"] for p in posts] == [run.steps.first().idempotency_key] * 2


def test_an_unknown_reference_at_run_time_fails_the_step_with_a_clear_error(
    stripe_account, fake_slack, post_event
):
    workflow_with(
        # A field Stripe may leave out of a payload: the catalog knows it, this event lacks it.
        {**SLACK, "config": {"channel": "C0OPS", "text": "{{trigger.data.object.receipt_email}}"}}
    )

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    run = Run.objects.get()
    assert attempts(run) == [
        (
            1,
            "failed",
            "Unknown reference {{trigger.data.object.receipt_email}}: trigger.data.object has no "
            "'receipt_email'.",
        )
    ]
    assert fake_slack.calls == []
