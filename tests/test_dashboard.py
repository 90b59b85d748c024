"""The home dashboard: each figure from seeded runs, steps, tasks and deliveries, exactly."""

from datetime import UTC, datetime, timedelta

import pytest
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Stat, Status
from time_machine import travel

from automations import dashboard
from automations.money import format_money
from integrations.models import SyncProblem
from integrations.queue import broker
from tests.admin_helpers import staff_user
from tests.dashboard_data import NOW, delivery, seed


@pytest.fixture
def tokyo(settings):
    settings.TIME_ZONE = "Asia/Tokyo"


@pytest.fixture
def empty_queue():
    broker().purge_queue()  # the Redis broker's list outlives a test's transaction
    yield broker()
    broker().purge_queue()


@pytest.fixture
def seeded(db, tokyo):
    return seed()


def test_runs_per_day_are_counted_by_status_in_the_readers_days(seeded):
    with travel(NOW, tick=False):
        runs = dashboard.runs_per_day(NOW)

    days = list(runs["by_day"])
    assert (len(days), str(days[0]), str(days[-1])) == (14, "2026-11-18", "2026-12-01")
    assert runs["by_day"][days[-1]] == {"succeeded": 2, "failed": 1, "held": 1}
    assert runs["by_day"][days[-2]] == {"succeeded": 1, "failed": 2, "held": 0}
    assert sum(sum(day.values()) for day in runs["by_day"].values()) == 7
    assert runs["total"] == 7
    assert [(t["status"], t["count"]) for t in runs["totals"]] == [
        ("Succeeded", 3),
        ("Failed", 3),
        ("Waiting for a person", 1),
    ]
    assert runs["chart"].startswith("<svg") and "12-01 · Succeeded: 2</title>" in runs["chart"]


def test_money_moved_is_summed_per_currency_workflow_and_day(seeded):
    refunds, vip = seeded
    with travel(NOW, tick=False):
        money = dashboard.money_per_day(NOW)

    assert [(m["currency"], m["total"], m["display"]) for m in money] == [
        ("jpy", 500000, format_money(500000, "jpy")),
        ("usd", 152550, format_money(152550, "usd")),
    ]
    assert [(w["workflow_id"], w["total"]) for w in money[1]["workflows"]] == [(refunds.pk, 152550)]
    assert [(w["workflow_id"], w["total"]) for w in money[0]["workflows"]] == [(vip.pk, 500000)]
    assert f"12-01 · {refunds.name}: {format_money(152550, 'usd')}</title>" in money[1]["chart"]


def test_top_failing_workflows_come_with_their_last_error(seeded):
    refunds, vip = seeded
    with travel(NOW, tick=False):
        failing = dashboard.top_failing(NOW)

    assert [(f["workflow_id"], f["failures"], f["last_error"], f["last_at"]) for f in failing] == [
        (refunds.pk, 2, "card_declined", "2026-12-01 01:10 JST"),
        (vip.pk, 1, "slack: channel_not_found", "2026-11-30 23:00 JST"),
    ]


def test_queue_health_counts_pending_tasks_their_oldest_age_and_clusters(db, empty_queue):
    with travel(NOW, tick=False):
        for seconds in (150, 30):
            task = {"id": f"t{seconds}", "func": "automations.tasks.run_workflow", "args": (1,)}
            empty_queue.enqueue(
                SignedPackage.dumps({**task, "started": NOW - timedelta(seconds=seconds)})
            )
        cluster = Status(pid=4242, cluster_id="c0ffee")
        cluster.status, cluster.workers = Conf.IDLE, [1, 2]
        empty_queue.set_stat(Stat.get_key("c0ffee"), SignedPackage.dumps(cluster, True), 30)
        try:
            queue = dashboard.queue_health(NOW)
        finally:
            empty_queue.cache.delete(Stat.get_key("c0ffee")) if empty_queue.cache else None

    assert (queue["available"], queue["pending"], queue["oldest_age_seconds"]) == (True, 2, 150)
    assert queue["oldest_age"] == "2 min"
    assert [(c["id"], c["status"], c["workers"]) for c in queue["clusters"]] == [
        ("c0ffee", Conf.IDLE, 2)
    ]


def test_webhook_health_counts_deliveries_per_hour_signature_failures_and_sync_problems(seeded):
    eleven = datetime(2026, 12, 1, 2, 15, tzinfo=UTC)  # 11:15 JST
    for _ in range(3):
        delivery(eleven)
    delivery(eleven, valid=False)
    failed = delivery(datetime(2026, 11, 30, 20, 5, tzinfo=UTC))  # 05:05 JST
    delivery(NOW - timedelta(hours=30))  # before the window
    SyncProblem.objects.create(
        delivery=failed, event_id="evt_1", kind="permanent", code="resource_missing"
    )
    with travel(NOW, tick=False):
        hooks = dashboard.webhook_health(NOW)

    assert (hooks["events"], hooks["signature_failures"], hooks["sync_problems"]) == (5, 1, 1)
    assert "11:00 · Verified: 3</title>" in hooks["chart"]
    assert "11:00 · Signature failures: 1</title>" in hooks["chart"]
    assert "05:00 · Verified: 1</title>" in hooks["chart"]


def test_the_admin_home_is_kanris_dashboard(client, seeded, empty_queue):
    client.force_login(staff_user("viewer"))
    with travel(NOW, tick=False):
        page = client.get("/admin/").content.decode()

    assert "<title>Home | Kanri</title>" in page
    assert '<div id="site-name"><a href="/admin/">Kanri</a></div>' in page
    assert "Django administration" not in page and "View site" not in page
    assert 'href="/admin/preferences/"' in page
    for section in ("kanri-runs", "kanri-money", "kanri-failing", "kanri-queue", "kanri-webhooks"):
        assert f'id="{section}"' in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="kanri-chart"') == 4
    assert "card_declined" in page
    assert "<script" not in page.split('id="kanri-dashboard"')[1]


def test_staff_outside_kanris_roles_see_no_figures(client, seeded):
    client.force_login(staff_user())
    page = client.get("/admin/").content.decode()
    assert 'id="kanri-dashboard"' not in page and "Kanri" in page
