"""Infrastructure failing under load: Redis restarted (its queued tasks lost), and every
database connection of the cluster killed with pg_terminate_backend mid-run.

Kanri's tables are the truth, the broker only a doorbell: runs whose tasks Redis lost
are queued again by the sweeper, webhooks keep answering 200 while Redis is away, and
connections the database dropped are replaced before the writes that matter. Every run
must post exactly one Slack message: none lost, none doubled.
"""

import itertools

from automations.models import Run, RunStep
from tests.conftest import wait_until
from tests.reliability.stack import deliver, slack_workflow


def all_succeeded(flow, n):
    return Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED).count() == n


def assert_one_post_per_event(kanri, flow, sent, counts):
    texts = sorted(m["text"] for m in kanri.slack.posted)
    expected = sorted(f"Paid {one['data']['object']['id']}" for one in sent)
    doubled = sum(n - 1 for _, g in itertools.groupby(texts) if (n := len(list(g))) > 1)
    counts.add("runs_expected", len(sent))
    counts.add("runs_done", Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED).count())
    counts.add("side_effects_expected", len(sent))
    counts.add("side_effects_observed", len(texts))
    counts.add("duplicated", doubled)
    counts.add("lost", len(set(expected) - set(texts)))
    assert texts == expected
    assert set(RunStep.objects.filter(run__workflow=flow).values_list("status", flat=True)) == {
        RunStep.Status.SUCCEEDED
    }


def test_a_redis_restart_mid_load_loses_no_run_and_doubles_none(kanri, post_event, counts):
    kanri.start_cluster(workers=3)
    flow = slack_workflow()
    kanri.slack.hold(0.3, times=1000)  # each post takes a while: a backlog builds up

    sent = deliver(post_event, counts, 15)
    wait_until(
        lambda: Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED).count() >= 3,
        timeout=30,
        message="the first runs to finish",
    )
    kanri.redis.stop()  # the tasks still queued in it are gone
    counts.fault("redis restart")
    sent += deliver(post_event, counts, 5)  # webhooks while Redis is down
    kanri.redis.start()
    sent += deliver(post_event, counts, 10)
    wait_until(lambda: all_succeeded(flow, len(sent)), timeout=90, interval=0.2, message="all runs")

    assert_one_post_per_event(kanri, flow, sent, counts)
    assert kanri.cluster.process.poll() is None
    # Some runs lost their task and were queued again; none ran twice.
    assert list(Run.objects.filter(workflow=flow).values_list("attempt", flat=True)) == [1] * len(
        sent
    )


def test_database_connections_killed_mid_run_lose_no_run_and_double_none(kanri, post_event, counts):
    kanri.start_cluster(workers=3)
    flow = slack_workflow()
    kanri.slack.hold(1.5, times=3)

    sent = deliver(post_event, counts, 6)
    wait_until(lambda: kanri.slack.arrived >= 3, timeout=30, message="three posts on the wire")
    killed = kanri.kill_database_connections()
    counts.fault("pg_terminate_backend (all cluster connections)")
    assert killed >= 3  # at least the three workers in the middle of a post
    sent += deliver(post_event, counts, 6)
    wait_until(lambda: all_succeeded(flow, len(sent)), timeout=60, interval=0.2, message="all runs")

    assert_one_post_per_event(kanri, flow, sent, counts)
    assert kanri.cluster.process.poll() is None
    # The posts in flight were recorded by the worker that made them, on a new
    # connection: no run was held as "outcome unknown" or taken up a second time.
    runs = Run.objects.filter(workflow=flow)
    assert set(runs.values_list("attempt", "interruptions", "hold_reason")) == {(1, 0, "")}
