"""A workflow's failures are told to its owner by email or Slack with a link to each run:
the first at once, the rest in one digest per window, and none ever twice."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.utils import timezone
from django_q.models import Schedule

from automations.alerts import run_url, send_failure_alerts
from automations.models import AlertedRun, FailureAlert, Run, Workflow
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def owner(db):
    return User.objects.create_user("hana", email="hana@example.test", is_staff=True)


@pytest.fixture
def workflow(owner, settings):
    settings.KANRI_BASE_URL = "https://kanri.example.test/"
    settings.KANRI_ALERT_DIGEST_MINUTES = 15
    return create_workflow(tag_vip_customers(), owner=owner, status="active")


def failed(workflow, minutes_ago, error="Step 'notify_team' failed: SMTP 554: rejected"):
    return Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key=f"evt_{Run.objects.count() + 1}",
        trigger_data={},
        status=Run.Status.FAILED,
        error=error,
        finished_at=NOW - timedelta(minutes=minutes_ago),
    )


def test_the_first_failure_emails_the_owner_at_once_with_a_link_to_the_run(
    workflow, smtp_server, settings
):
    settings.TIME_ZONE = "Asia/Tokyo"
    run = failed(workflow, 1)

    assert send_failure_alerts(NOW) == 1

    [(_sender, recipients, message)] = smtp_server.messages
    assert recipients == ["hana@example.test"]
    assert message["Subject"].strip() == f"Kanri: “Tag VIP customers” failed (run {run.pk})"
    finished = timezone.localtime(run.finished_at, timezone.get_fixed_timezone(9 * 60))
    assert message.get_content() == (
        f"Run {run.pk} failed at {finished:%Y-%m-%d %H:%M} JST: "
        "Step 'notify_team' failed: SMTP 554: rejected\n"
        f"https://kanri.example.test/admin/automations/run/{run.pk}/change/\n"
        "\n"
        "You get this because you own “Tag VIP customers” in Kanri.\n"
    )
    alert = FailureAlert.objects.get()
    assert (alert.status, alert.digest, alert.channel, alert.recipient) == (
        "sent",
        False,
        "email",
        "hana@example.test",
    )
    assert list(alert.runs.values_list("run_id", flat=True)) == [run.pk]


def test_further_failures_wait_for_one_digest_per_window_and_none_is_told_twice(
    workflow, smtp_server
):
    first = failed(workflow, 30)
    assert send_failure_alerts(NOW - timedelta(minutes=29)) == 1
    second, third = failed(workflow, 20), failed(workflow, 16)

    # Within 15 minutes of the first alert: they wait.
    assert send_failure_alerts(NOW - timedelta(minutes=15)) == 0
    assert len(smtp_server.messages) == 1
    # The window has passed: one digest with both.
    assert send_failure_alerts(NOW) == 1
    assert send_failure_alerts(NOW + timedelta(hours=1)) == 0

    assert len(smtp_server.messages) == 2
    digest = smtp_server.messages[1][2]
    assert digest["Subject"].strip() == "Kanri: “Tag VIP customers” failed 2 times"
    body = digest.get_content()
    assert run_url(second.pk) in body and run_url(third.pk) in body
    assert run_url(first.pk) not in body
    assert list(FailureAlert.objects.order_by("created_at").values_list("digest", "status")) == [
        (False, "sent"),
        (True, "sent"),
    ]
    assert AlertedRun.objects.count() == 3


def test_a_digest_of_many_lists_twenty_and_counts_the_rest(workflow, smtp_server):
    for minutes in range(25, 0, -1):
        failed(workflow, minutes)

    send_failure_alerts(NOW)

    body = smtp_server.messages[0][2].get_content()
    assert body.count("/admin/automations/run/") == 20
    assert "…and 5 more runs." in body


def test_slack_alerts_go_to_the_workflows_channel(workflow, fake_slack):
    Workflow.objects.filter(pk=workflow.pk).update(failure_alerts="slack", alert_channel="#ops")
    run = failed(workflow, 1, error="<!channel> & co")

    send_failure_alerts(NOW)

    [post] = fake_slack.messages()
    assert post["channel"] == "#ops"
    assert post["text"].startswith(f"Kanri: “Tag VIP customers” failed (run {run.pk})\n")
    assert "&lt;!channel&gt; &amp; co" in post["text"]
    assert f"https://kanri.example.test/admin/automations/run/{run.pk}/change/" in post["text"]


def test_an_alert_that_could_not_be_sent_is_recorded_and_not_retried_by_itself(
    workflow, smtp_server
):
    smtp_server.refuse, smtp_server.refusal = 1, "554 Transaction failed: message rejected"
    run = failed(workflow, 1)

    send_failure_alerts(NOW)
    send_failure_alerts(NOW + timedelta(hours=1))

    alert = FailureAlert.objects.get()
    assert alert.status == "failed"
    assert "554" in alert.error
    assert smtp_server.messages == []
    assert alert.runs.get().run == run


def test_an_alert_cut_off_mid_send_becomes_outcome_unknown_and_is_not_resent(
    workflow, smtp_server, client
):
    run = failed(workflow, 30)
    alert = FailureAlert.objects.create(
        workflow=workflow, channel="email", recipient="hana@example.test", created_at=NOW
    )
    AlertedRun.objects.create(alert=alert, run=run)

    send_failure_alerts(NOW + timedelta(minutes=4))
    alert.refresh_from_db()
    assert alert.status == "sending"
    send_failure_alerts(NOW + timedelta(minutes=6))

    alert.refresh_from_db()
    assert alert.status == "unknown"
    assert smtp_server.messages == []
    client.force_login(staff_user("viewer"))
    html = client.get(f"/admin/automations/run/{run.pk}/change/").content.decode()
    assert "Failure alert: Outcome unknown." in html
    assert "Kanri does not send it again by itself." in html


def test_the_run_page_says_the_owner_was_told(workflow, smtp_server, client):
    run = failed(workflow, 1)
    send_failure_alerts(NOW)
    client.force_login(staff_user("viewer"))

    html = client.get(f"/admin/automations/run/{run.pk}/change/").content.decode()

    assert "Failure alert emailed to hana@example.test at" in html


def test_no_owner_address_or_alerts_off_sends_nothing(workflow, smtp_server, owner):
    owner.email = ""
    owner.save()
    failed(workflow, 2)
    send_failure_alerts(NOW)
    assert FailureAlert.objects.get().status == "no_recipient"

    other = create_workflow({**tag_vip_customers(), "name": "Quiet"}, owner=owner, status="active")
    Workflow.objects.filter(pk=other.pk).update(failure_alerts="off")
    failed(other, 1)
    assert send_failure_alerts(NOW) == 0
    assert smtp_server.messages == []


def test_the_editor_asks_for_a_channel_when_alerts_go_to_slack(client, db):
    from tests.admin_helpers import workflow_form

    client.force_login(staff_user("editor"))
    data = {**workflow_form("Alerts"), "failure_alerts": "slack", "alert_channel": ""}

    response = client.post("/admin/automations/workflow/add/", data)

    assert response.context["adminform"].form.errors["alert_channel"] == [
        "Say which Slack channel the alerts go to."
    ]
    data["alert_channel"] = "#ops"
    assert client.post("/admin/automations/workflow/add/", data).status_code == 302
    assert Workflow.objects.values_list("failure_alerts", "alert_channel").get() == (
        "slack",
        "#ops",
    )


def test_the_migration_schedules_the_alerts_every_minute(db):
    migration = import_module("automations.migrations.0009_failure_alerts")

    migration.create_schedule(django_apps, None)

    schedule = Schedule.objects.get(name="Send failure alerts")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "automations.alerts.send_failure_alerts",
        "I",
        1,
        -1,
    )
