"""Seeded runs, money-moving steps and webhook deliveries for the dashboard's tests."""

from datetime import UTC, datetime, timedelta

from djstripe.models import WebhookEventTrigger

from automations.models import Run, RunStep
from automations.templates import personalise_large_orders, tag_vip_customers
from tests.builders import create_workflow

# 12:00 in Tokyo: days and hours are the reader's.
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
# 2026-11-30 16:00 UTC is already 1 December in Tokyo; 14:00 UTC is still 30 November.
TODAY = datetime(2026, 11, 30, 16, tzinfo=UTC)
YESTERDAY = datetime(2026, 11, 30, 14, tzinfo=UTC)


def run(workflow, status, created_at, error=""):
    return Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key=f"evt_{Run.objects.count()}",
        trigger_data={},
        status=status,
        error=error,
        created_at=created_at,
    )


def moved(of_run, amount, currency, at, status=RunStep.Status.SUCCEEDED):
    return RunStep.objects.create(
        run=of_run,
        step_name="refund",
        kind="stripe.create_refund",
        status=status,
        amount=amount,
        currency=currency,
        started_at=at,
    )


def delivery(at, valid=True):
    row = WebhookEventTrigger.objects.create(
        remote_ip="127.0.0.1", headers={}, body="{}", valid=valid
    )
    WebhookEventTrigger.objects.filter(pk=row.pk).update(created=at)  # created is auto_now_add
    return row


def seed():
    """Return (refunds, vip): two active workflows with runs over the last two days.

    Today (1 December, Tokyo): refunds 2 succeeded, 1 failed; vip 1 held.
    Yesterday: refunds 1 failed; vip 1 succeeded, 1 failed. Twenty days ago: 1 failed.
    Money: refunds moved 1,500.00 + 25.50 USD today; vip ¥500,000 yesterday.
    """
    refunds = create_workflow(personalise_large_orders(), status="active")
    vip = create_workflow(tag_vip_customers(), status="active")
    ok1 = run(refunds, Run.Status.SUCCEEDED, TODAY)
    ok2 = run(refunds, Run.Status.SUCCEEDED, TODAY + timedelta(minutes=5))
    run(refunds, Run.Status.FAILED, YESTERDAY, error="first failure")
    run(refunds, Run.Status.FAILED, TODAY + timedelta(minutes=10), error="card_declined")
    ok3 = run(vip, Run.Status.SUCCEEDED, YESTERDAY)
    run(vip, Run.Status.FAILED, YESTERDAY, error="slack: channel_not_found")
    run(vip, Run.Status.HELD, TODAY)
    run(vip, Run.Status.FAILED, NOW - timedelta(days=20), error="too old to count")
    moved(ok1, 150000, "usd", TODAY)
    moved(ok2, 2550, "usd", TODAY + timedelta(minutes=5))
    moved(ok2, 9999, "usd", TODAY, status=RunStep.Status.FAILED)  # moved nothing
    moved(ok3, 500000, "jpy", YESTERDAY)
    moved(ok3, 700, "usd", NOW - timedelta(days=20))  # before the window
    RunStep.objects.create(
        run=ok3, step_name="notify", kind="email.send", status="succeeded", started_at=YESTERDAY
    )
    return refunds, vip
