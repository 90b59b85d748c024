"""reconcile_events: Stripe's event list against the deliveries Kanri received; the
missing ones recorded and run once, a report in the admin."""

import io
import time

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from djstripe.models import WebhookEventTrigger

from automations import tasks
from automations.models import Reconciliation, Run, TriggerKind, Workflow
from tests.admin_helpers import staff_user
from tests.builders import create_workflow, event, stored_event


def now():
    return int(time.time())


@pytest.fixture
def charges_to_slack(db):
    return create_workflow(
        {
            "name": "Charges to Slack",
            "trigger": {"kind": "stripe_event", "event_type": "charge.succeeded"},
            "conditions": [],
            "steps": [
                {
                    "name": "post",
                    "kind": "slack.post_message",
                    "config": {"channel": "#ops", "text": "Charge {{trigger.data.object.id}}"},
                }
            ],
        },
        status=Workflow.Status.ACTIVE,
    )


def charge_event(n, ago):
    obj = {"id": f"ch_r{n}", "object": "charge", "amount": 1000 + n, "currency": "usd"}
    return event("charge.succeeded", obj, event_id=f"evt_r{n}", created=now() - ago)


def reconcile(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("reconcile_events", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def world(stripe_account, fake_stripe, fake_slack, charges_to_slack, post_event):
    """Stripe lists five events of the last day: Kanri received one live (a delivery not
    yet synced), has one synced (a stored Event), and never received the other three."""
    events = [charge_event(n, ago) for n, ago in enumerate([7200, 6000, 5000, 4000, 3000])]
    fake_stripe.seed(*events)
    assert post_event(events[0]).status_code == 200
    stored_event(events[1])
    return {"stripe": fake_stripe, "slack": fake_slack, "events": events}


def test_it_records_and_runs_the_three_events_kanri_never_received_once(
    world, django_capture_on_commit_callbacks
):
    live_runs = Run.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        out, err = reconcile("--since", "24h")

    report = Reconciliation.objects.get()
    missing = ["evt_r2", "evt_r3", "evt_r4"]  # oldest first
    assert (report.status, report.listed, report.missing, report.replayed, report.error) == (
        Reconciliation.Status.DONE,
        5,
        missing,
        3,
        "",
    )
    assert report.finished_at is not None
    assert err == ""
    assert [line for line in out.splitlines() if line.startswith("missing:")] == [
        f"missing: {i}" for i in missing
    ]
    assert out.splitlines()[-1].endswith(
        f"; 3 missing, 3 recorded, 3 run(s) started (report {report.pk})."
    )
    recorded = WebhookEventTrigger.objects.filter(headers__has_key="X-Kanri-Source")
    assert sorted(t.json_body["id"] for t in recorded) == missing
    assert all(t.valid for t in recorded)
    assert sorted(
        Run.objects.filter(trigger_key__in=missing).values_list("trigger_key", "trigger_kind")
    ) == [(i, TriggerKind.STRIPE_EVENT) for i in missing]
    assert Run.objects.count() == live_runs + 3
    assert [m["text"] for m in world["slack"].messages()] == [
        "Charge ch_r0",
        "Charge ch_r2",
        "Charge ch_r3",
        "Charge ch_r4",
    ]
    [listing] = world["stripe"].requests(path="/v1/events")
    assert listing["method"] == "GET"
    assert int(listing["params"]["created[gte]"]) == pytest.approx(now() - 86400, abs=5)
    assert int(listing["params"]["created[lte]"]) == pytest.approx(now() - 300, abs=5)
    assert listing["params"]["limit"] == "100"


def test_running_it_again_does_nothing(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reconcile()
    runs, deliveries = Run.objects.count(), WebhookEventTrigger.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = reconcile()

    second = Reconciliation.objects.order_by("-pk").first()
    assert (second.listed, second.missing, second.replayed, second.status) == (5, [], 0, "done")
    assert "missing:" not in out
    assert out.splitlines()[-1].endswith(
        f"; 0 missing, 0 recorded, 0 run(s) started (report {second.pk})."
    )
    assert (Run.objects.count(), WebhookEventTrigger.objects.count()) == (runs, deliveries)
    assert len(world["slack"].messages()) == 4


def test_a_dry_run_lists_the_missing_and_records_nothing(world, django_capture_on_commit_callbacks):
    runs, deliveries = Run.objects.count(), WebhookEventTrigger.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = reconcile("--since", "1d", "--dry-run")

    assert out.splitlines()[:3] == ["missing: evt_r2", "missing: evt_r3", "missing: evt_r4"]
    assert "Recording missing events" not in out
    assert out.splitlines()[-1].endswith("; 3 missing; dry run: nothing recorded.")
    assert not Reconciliation.objects.exists()
    assert (Run.objects.count(), WebhookEventTrigger.objects.count()) == (runs, deliveries)
    assert len(world["slack"].messages()) == 1


def test_it_pages_through_stripes_list_and_leaves_the_last_minutes_to_the_next_run(
    stripe_account, fake_stripe, fake_slack, charges_to_slack, django_capture_on_commit_callbacks
):
    received = [charge_event(n, 50000 - n) for n in range(100, 220)]
    for one in received:
        stored_event(one)
    missing = [charge_event(n, 40000 - n) for n in range(3)]
    just_now = charge_event(9, 30)  # its delivery may be on its way
    fake_stripe.seed(*received, *missing, just_now)

    with django_capture_on_commit_callbacks(execute=True):
        reconcile()

    report = Reconciliation.objects.get()
    assert (report.listed, report.missing, report.replayed) == (
        123,
        ["evt_r0", "evt_r1", "evt_r2"],
        3,
    )
    pages = fake_stripe.requests(path="/v1/events")
    assert [p["params"].get("starting_after") for p in pages] == [None, "evt_r123"]


def test_events_the_webhook_endpoint_does_not_subscribe_to_are_not_missing(
    stripe_account, fake_stripe, charges_to_slack, django_capture_on_commit_callbacks
):
    stripe_account.enabled_events = ["charge.succeeded"]
    stripe_account.save()
    customer = event(
        "customer.created",
        {"id": "cus_r", "object": "customer"},
        event_id="evt_cus",
        created=now() - 900,
    )
    fake_stripe.seed(charge_event(1, 900), customer)

    with django_capture_on_commit_callbacks(execute=True):
        reconcile()

    assert Reconciliation.objects.get().missing == ["evt_r1"]


def test_when_stripe_cannot_list_events_it_fails_and_says_so(
    stripe_account, fake_stripe, charges_to_slack
):
    fake_stripe.fail("/v1/events", method="GET", status=500, message="Stripe is down")

    with pytest.raises(CommandError, match=r"Listing Stripe's events failed: .*Stripe is down"):
        reconcile()

    report = Reconciliation.objects.get()
    assert report.status == Reconciliation.Status.FAILED
    assert "Stripe is down" in report.error
    assert report.finished_at is not None


def test_the_hourly_task_reconciles_the_last_day(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.reconcile_events()

    assert result["missing"] == ["evt_r2", "evt_r3", "evt_r4"]
    assert Reconciliation.objects.get().replayed == 3


def test_no_progress_bar_is_drawn_when_stdout_is_not_a_terminal(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = reconcile()

    assert "Recording missing events: 3\n" in out
    assert "\r" not in out and "it/s" not in out


def test_bad_periods_exit_non_zero(db):
    with pytest.raises(CommandError, match="is neither a period"):
        reconcile("--since", "a while")


def test_the_reports_are_listed_read_only_in_the_admin(
    client, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reconcile()
    report = Reconciliation.objects.get()
    client.force_login(staff_user("viewer"))

    index = client.get(reverse("admin:index"))
    listing = client.get(reverse("admin:automations_reconciliation_changelist"))
    detail = client.get(reverse("admin:automations_reconciliation_change", args=[report.pk]))

    changelist_url = reverse("admin:automations_reconciliation_changelist")
    assert f'href="{changelist_url}"' in index.content.decode()
    assert listing.status_code == 200 and detail.status_code == 200
    assert "<code>evt_r2</code>" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert client.get(reverse("admin:automations_reconciliation_add")).status_code == 403
