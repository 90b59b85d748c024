"""A worker that dies mid-send: the run is taken up again from the audit it left.

Each test runs a real run until a step's request has really been sent, then stops the
worker the way a kill or an out-of-memory does: with a BaseException, which the runner
does not catch, so the step's row stays "started" and the run stays "running" with a
lease. The sweeper then finds the lease run out and queues the run again.
"""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from automations import workflows
from automations.engine.runner import MAX_INTERRUPTIONS
from automations.models import Run, RunStep, Workflow
from automations.tasks import retry_due_runs
from integrations import stripe_client
from integrations.email_actions import SendEmail
from integrations.slack_actions import PostMessage
from integrations.stripe_actions import CreateRefund
from tests.builders import create_payment_intent, create_workflow, event, payment_intent_dict

TRIGGER = {"kind": "stripe_event", "event_type": "payment_intent.succeeded"}
SLACK = {
    "name": "notify",
    "kind": "slack.post_message",
    "config": {"channel": "C0OPS", "text": "Paid {{trigger.data.object.id}}"},
}
EMAIL = {
    "name": "mail",
    "kind": "email.send",
    "config": {"recipient": "team", "to": "ops@example.test", "subject": "s", "body": "b"},
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


class WorkerKilled(BaseException):
    """The worker process stopped (killed, out of memory): no `except Exception` sees it."""


@contextmanager
def worker_dies_after_sending(action_class):
    """Make `action_class` really send, then kill the worker before the row is closed."""
    real_send = action_class.send

    def send_then_die(self, request, call):
        real_send(self, request, call)
        raise WorkerKilled

    with pytest.MonkeyPatch.context() as patch, pytest.raises(WorkerKilled):
        patch.setattr(action_class, "send", send_then_die)
        yield


def workflow_with(*steps):
    return create_workflow(
        {
            "name": "Resume",
            "trigger": TRIGGER,
            "conditions": [],
            "steps": list(steps),
            "limits": {"per_run": {"usd": 10000}, "per_day": {"usd": 100000}},
        },
        status=Workflow.Status.ACTIVE,
    )


def lease_runs_out(run):
    """The dead worker's lease on the run expires."""
    Run.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def rows(run):
    return list(run.steps.order_by("pk").values_list("step_name", "attempt", "status", "decision"))


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run the every-minute sweeper; the runs it queues are executed inline."""

    def run_sweeper(queued=None):
        with django_capture_on_commit_callbacks(execute=True):
            count = retry_due_runs()
            if queued is not None:
                queued.append(count)
        return count

    return run_sweeper


@pytest.fixture
def person(db):
    return User.objects.create_superuser("hana", "hana@example.test", "pw")


def cut_off(post_event, action_class, trigger_object):
    """Post the event; the worker dies right after `action_class` sent. Return the run."""
    with worker_dies_after_sending(action_class):
        post_event(event("payment_intent.succeeded", trigger_object))
    run = Run.objects.get()
    assert (run.status, run.attempt) == (Run.Status.RUNNING, 1)
    assert run.lease_until > timezone.now()
    return run


def held_after_slack_cut_off(post_event, sweep, intent):
    run = cut_off(post_event, PostMessage, intent)
    assert rows(run) == [("notify", 1, "started", "")]
    lease_runs_out(run)
    assert sweep() == 1
    run.refresh_from_db()
    return run


# ---------------------------------------------------------------- Slack and email


def test_a_slack_post_cut_off_mid_send_is_not_resent_and_shows_outcome_unknown(
    stripe_account, fake_slack, post_event, sweep, client, person
):
    workflow_with(SLACK)
    intent = payment_intent_dict(150000, "usd")

    run = held_after_slack_cut_off(post_event, sweep, intent)

    assert fake_slack.messages() == [{"channel": "C0OPS", "text": f"Paid {intent['id']}"}]
    assert len(fake_slack.calls) == 1
    assert (run.status, run.hold_reason, run.attempt, run.lease_until, run.finished_at) == (
        Run.Status.HELD,
        Run.HoldReason.OUTCOME_UNKNOWN,
        2,
        None,
        None,
    )
    assert run.error == ""  # the run page words it from the hold reason and the step row
    [row] = run.steps.all()
    assert (row.attempt, row.status, row.decision, row.decided_by) == (1, "unknown", "", None)
    assert row.input == {"channel": "C0OPS", "text": f"Paid {intent['id']}"}
    assert row.output is None
    assert row.finished_at is not None
    assert row.idempotency_key == f"kanri-{run.workflow_id}-{run.pk}-notify"
    # Held runs wait for a person: the sweeper leaves them alone.
    assert sweep() == 0
    assert len(fake_slack.calls) == 1

    client.force_login(person)
    page = client.get(f"/admin/automations/run/{run.pk}/change/")
    assert page.status_code == 200
    assert "Outcome unknown" in page.content.decode()


def test_an_email_cut_off_mid_send_is_not_resent_and_shows_outcome_unknown(
    stripe_account, smtp_server, post_event, sweep, client, person
):
    workflow_with(EMAIL)

    run = cut_off(post_event, SendEmail, payment_intent_dict(150000, "usd"))
    assert rows(run) == [("mail", 1, "started", "")]
    assert len(smtp_server.messages) == 1
    lease_runs_out(run)
    assert sweep() == 1

    run.refresh_from_db()
    [(sender, recipients, message)] = smtp_server.messages
    assert (sender, recipients, message["Subject"]) == (
        "kanri@localhost",
        ["ops@example.test"],
        "s",
    )
    assert (run.status, run.hold_reason, run.attempt) == (
        Run.Status.HELD,
        Run.HoldReason.OUTCOME_UNKNOWN,
        2,
    )
    assert run.error == ""
    assert rows(run) == [("mail", 1, "unknown", "")]
    assert sweep() == 0
    assert len(smtp_server.messages) == 1

    client.force_login(person)
    page = client.get(f"/admin/automations/run/{run.pk}/change/")
    assert page.status_code == 200
    assert "Outcome unknown" in page.content.decode()


@pytest.mark.parametrize(
    ("decision", "slack_posts", "expected_rows"),
    [
        (
            "send_again",
            2,
            [
                ("notify", 1, "unknown", "send_again"),
                ("notify", 2, "succeeded", ""),
                ("mail", 1, "succeeded", ""),
            ],
        ),
        ("skip", 1, [("notify", 1, "unknown", "skip"), ("mail", 1, "succeeded", "")]),
    ],
)
def test_a_person_choosing_send_again_sends_once_more_and_skip_goes_on(
    stripe_account,
    fake_slack,
    smtp_server,
    post_event,
    sweep,
    person,
    django_capture_on_commit_callbacks,
    decision,
    slack_posts,
    expected_rows,
):
    workflow_with(SLACK, EMAIL)
    intent = payment_intent_dict(150000, "usd")
    run = held_after_slack_cut_off(post_event, sweep, intent)
    assert run.status == Run.Status.HELD
    assert smtp_server.messages == []  # the step after the unknown one waits too

    with django_capture_on_commit_callbacks(execute=True):
        assert workflows.decide(run, "notify", decision, person) is True

    run.refresh_from_db()
    assert (run.status, run.hold_reason, run.error, run.attempt) == (
        Run.Status.SUCCEEDED,
        "",
        "",
        3,  # the take that died, the one that found it open, the one after the decision
    )
    assert run.finished_at is not None
    assert rows(run) == expected_rows
    decided = run.steps.get(step_name="notify", attempt=1)
    assert decided.decided_by == person
    assert decided.decided_at is not None
    assert fake_slack.messages() == [{"channel": "C0OPS", "text": f"Paid {intent['id']}"}] * (
        slack_posts
    )
    assert len(fake_slack.calls) == slack_posts
    assert [recipients for _, recipients, _ in smtp_server.messages] == [["ops@example.test"]]
    # The decision is taken once: asking again changes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert workflows.decide(run, "notify", "send_again", person) is False
    assert len(fake_slack.calls) == slack_posts
    assert rows(run) == expected_rows


def test_cancelling_a_held_run_stops_it(
    stripe_account, fake_slack, post_event, sweep, person, django_capture_on_commit_callbacks
):
    workflow_with(SLACK)
    run = held_after_slack_cut_off(post_event, sweep, payment_intent_dict(150000, "usd"))
    assert run.status == Run.Status.HELD

    assert workflows.cancel([run.pk], person) == 1

    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
    assert run.finished_at is not None
    assert rows(run) == [("notify", 1, "unknown", "")]
    # A cancelled run is neither swept nor decided any more.
    assert sweep() == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert workflows.decide(run, "notify", "send_again", person) is False
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED
    assert rows(run) == [("notify", 1, "unknown", "")]
    assert len(fake_slack.calls) == 1


# ---------------------------------------------------------------- Stripe


def refunds_of(charge):
    return stripe_client.request("get", "/v1/refunds", {"charge": charge})["data"]


def test_a_refund_cut_off_mid_send_ends_with_exactly_one_refund(
    stripe_account, fake_stripe, post_event, sweep
):
    workflow = workflow_with(REFUND)
    intent = create_payment_intent(amount=1500, currency="usd")
    charge = intent["latest_charge"]

    run = cut_off(post_event, CreateRefund, intent)
    assert rows(run) == [("refund", 1, "started", "")]
    assert len(refunds_of(charge)) == 1  # Stripe did refund before the worker died
    lease_runs_out(run)
    assert sweep() == 1

    run.refresh_from_db()
    assert (run.status, run.attempt, run.error, run.hold_reason) == (
        Run.Status.SUCCEEDED,
        2,
        "",
        "",
    )
    key = f"kanri-{workflow.pk}-{run.pk}-refund"
    assert list(run.steps.order_by("pk").values_list("attempt", "status", "idempotency_key")) == [
        (1, "interrupted", key),
        (2, "succeeded", key),
    ]
    posts = fake_stripe.requests(path="/v1/refunds", method="POST")
    assert [(p["idempotency_key"], p.get("replayed")) for p in posts] == [(key, None), (key, True)]
    assert posts[0]["params"] == posts[1]["params"]
    assert (posts[0]["params"]["charge"], posts[0]["params"]["amount"]) == (charge, "1000")
    [refund] = refunds_of(charge)
    assert (refund["amount"], refund["charge"]) == (1000, charge)
    assert run.steps.get(status=RunStep.Status.SUCCEEDED).output["id"] == refund["id"]


def test_a_run_whose_worker_keeps_dying_fails_at_the_cap(
    stripe_account, fake_stripe, post_event, sweep
):
    workflow = workflow_with(REFUND)
    intent = create_payment_intent(amount=1500, currency="usd")
    run = cut_off(post_event, CreateRefund, intent)

    # Each death below the cap is noticed, queued again, taken again, and dies again.
    queued = []
    for _ in range(MAX_INTERRUPTIONS - 1):
        lease_runs_out(run)
        with worker_dies_after_sending(CreateRefund):
            sweep(queued)
    assert queued == [1] * (MAX_INTERRUPTIONS - 1)
    run.refresh_from_db()
    assert (run.status, run.interruptions) == (Run.Status.RUNNING, MAX_INTERRUPTIONS - 1)

    # The next death reaches the cap: the sweeper fails the run instead of queueing it.
    lease_runs_out(run)
    assert sweep() == 0

    run.refresh_from_db()
    assert (run.status, run.interruptions, run.lease_until) == (
        Run.Status.FAILED,
        MAX_INTERRUPTIONS,
        None,
    )
    assert run.error == f"Stopped: the worker running it stopped {MAX_INTERRUPTIONS} times."
    assert run.finished_at is not None
    assert rows(run) == [
        *(("refund", n, "interrupted", "") for n in range(1, MAX_INTERRUPTIONS)),
        ("refund", MAX_INTERRUPTIONS, "unknown", ""),
    ]
    key = f"kanri-{workflow.pk}-{run.pk}-refund"
    posts = fake_stripe.requests(path="/v1/refunds", method="POST")
    assert [(p["idempotency_key"], p.get("replayed")) for p in posts] == [(key, None)] + [
        (key, True)
    ] * (MAX_INTERRUPTIONS - 1)
    assert len(refunds_of(intent["latest_charge"])) == 1
    assert sweep() == 0  # a failed run stays failed


@pytest.mark.parametrize(
    ("interruptions", "queued", "status", "error"),
    [
        (
            MAX_INTERRUPTIONS - 2,
            1,
            Run.Status.HELD,
            "",
        ),
        (
            MAX_INTERRUPTIONS - 1,
            0,
            Run.Status.FAILED,
            f"Stopped: the worker running it stopped {MAX_INTERRUPTIONS} times.",
        ),
    ],
)
def test_a_dead_workers_run_is_taken_again_below_the_cap_and_failed_at_it(
    stripe_account, fake_slack, post_event, sweep, interruptions, queued, status, error
):
    workflow_with(SLACK)
    run = cut_off(post_event, PostMessage, payment_intent_dict(150000, "usd"))
    Run.objects.filter(pk=run.pk).update(interruptions=interruptions)
    lease_runs_out(run)

    assert sweep() == queued

    run.refresh_from_db()
    assert (run.status, run.error) == (status, error)
    assert run.interruptions == interruptions + 1
    assert run.lease_until is None
    assert rows(run) == [("notify", 1, "unknown", "")]
    assert len(fake_slack.calls) == 1


def test_retries_after_provider_errors_never_count_as_a_dying_worker(
    stripe_account, fake_slack, post_event, sweep
):
    """Four steps, each failing four times before it succeeds: 17 takes, and no death
    (when every take counted towards the cap, such a run failed at take 16)."""
    steps = [
        {
            "name": f"s{i}",
            "kind": "slack.post_message",
            "config": {"channel": "C0OPS", "text": f"step {i}"},
        }
        for i in range(4)
    ]
    workflow_with(*steps)
    for i in range(4):  # each step: four transient errors, then it goes through
        fake_slack.fail_next("internal_error", times=4)
        if i < 3:
            fake_slack.fail_next(None)
    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))
    run = Run.objects.get()

    for _ in range(4 * 4):
        Run.objects.filter(pk=run.pk).update(next_attempt_at=timezone.now())
        sweep()

    run.refresh_from_db()
    assert (run.status, run.attempt, run.interruptions) == (Run.Status.SUCCEEDED, 17, 0)
    assert len(fake_slack.messages()) == 4 * 5  # per step: four refused, one delivered
