"""Scale-out: two `qcluster` processes, standing for two hosts, on one Redis and one
PostgreSQL database.

Each "host" reaches Slack through its own fake (the only thing that differs between the
two clusters' settings), so the fakes say which cluster carried out which run without
Kanri recording anything for the test. Both clusters take tasks from the same Redis list
and claim runs with the same conditional update: every run must be carried out once,
whichever cluster takes it, even when every run's task is queued twice, and when one
cluster is killed mid-load (kill -9 of every process) the other takes up its runs. How
fast two clusters go together is `make bench`'s business, not this file's.
"""

import itertools

import pytest

from automations.models import Run, RunStep
from automations.tasks import queue_run
from tests.conftest import wait_until
from tests.reliability.stack import FAST, Cluster, SlowSlack, deliver, slack_workflow


class SecondHost:
    """A second `qcluster` with the first one's settings (same SECRET_KEY, QUEUE_NAME,
    Redis and database), except the Slack it posts to."""

    def __init__(self, kanri, log_dir):
        self.kanri, self.log_dir = kanri, log_dir
        self.slack = SlowSlack().start()
        self.cluster = None

    def start_cluster(self, clocks=None, workers=2):
        env = {**self.kanri.env(clocks or FAST, workers), "SLACK_API_URL": self.slack.base_url}
        self.log_dir.mkdir(exist_ok=True)
        self.cluster = Cluster(env, self.log_dir).start()
        return self.cluster

    def close(self):
        if self.cluster and self.cluster.process.poll() is None:
            self.cluster.kill_all()
        self.slack.stop()


@pytest.fixture
def host_b(kanri, tmp_path, request):
    host = SecondHost(kanri, tmp_path / "host-b")
    yield host
    host.close()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for log in sorted(host.log_dir.glob("qcluster-*.log")):
            print(f"--- host B {log.name}\n" + log.read_text()[-10000:])


def text_of(one):
    return f"Paid {one['data']['object']['id']}"


def texts(*fakes):
    return sorted(m["text"] for fake in fakes for m in fake.posted)


def doubled(posted):
    return sum(
        n - 1 for _, group in itertools.groupby(sorted(posted)) if (n := len(list(group))) > 1
    )


def tasks_processed(cluster):
    """Run tasks the cluster finished, from django-q2's INFO log (a task whose run was
    already claimed elsewhere finishes too, having done nothing)."""
    return cluster._logs().count("Processed 'automations.tasks.run_workflow'")


def steps_by_run(flow):
    rows = RunStep.objects.filter(run__workflow=flow).order_by("run", "pk")
    found = {}
    for run_id, name, attempt, status in rows.values_list("run", "step_name", "attempt", "status"):
        found.setdefault(run_id, []).append((name, attempt, status))
    return found


def test_two_clusters_share_the_runs_and_carry_out_each_once_even_when_every_task_is_queued_twice(
    kanri, host_b, post_event, counts
):
    kanri.start_cluster(workers=2)
    host_b.start_cluster(workers=2)
    flow = slack_workflow()
    # Each post takes a moment, so a backlog builds and both clusters' pushers take tasks.
    kanri.slack.hold(0.1, times=1000)
    host_b.slack.hold(0.1, times=1000)

    sent = deliver(post_event, counts, 60)
    # A second task for every run, as a sweeper on another host or a person's retry could
    # queue: the two clusters race for the same runs, and the conditional claim decides.
    run_ids = list(Run.objects.filter(workflow=flow).values_list("pk", flat=True))
    assert len(run_ids) == 60
    for run_id in run_ids:
        queue_run(run_id)
    counts.add("duplicates_injected", len(run_ids))
    wait_until(
        lambda: Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED).count() == 60,
        timeout=60,
        interval=0.2,
        message="all runs",
    )
    # Every task taken and finished, the 60 duplicates included: nothing ran again.
    wait_until(
        lambda: tasks_processed(kanri.cluster) + tasks_processed(host_b.cluster) >= 120,
        timeout=30,
        interval=0.2,
        message="both clusters to process all 120 tasks",
    )

    by_a, by_b = texts(kanri.slack), texts(host_b.slack)
    print(
        f"\nTwo clusters, 60 runs, each queued twice: host A took "
        f"{tasks_processed(kanri.cluster)} tasks and posted {len(by_a)}, host B took "
        f"{tasks_processed(host_b.cluster)} and posted {len(by_b)}"
    )
    counts.add("runs_expected", 60)
    counts.add("runs_done", Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED).count())
    counts.add("side_effects_expected", 60)
    counts.add("side_effects_observed", len(by_a) + len(by_b))
    counts.add("duplicated", doubled(by_a + by_b))
    counts.add("lost", len({text_of(one) for one in sent} - set(by_a + by_b)))

    assert sorted(by_a + by_b) == sorted(text_of(one) for one in sent)
    assert by_a and by_b  # both hosts carried out runs
    assert set(Run.objects.filter(workflow=flow).values_list("attempt", "interruptions")) == {
        (1, 0)
    }
    assert steps_by_run(flow) == {run_id: [("notify", 1, "succeeded")] for run_id in run_ids}
    assert kanri.cluster.process.poll() is None and host_b.cluster.process.poll() is None


def test_one_cluster_killed_mid_load_leaves_its_runs_to_the_other_none_lost_none_doubled(
    kanri, host_b, post_event, counts
):
    kanri.start_cluster(workers=2)
    host_b.start_cluster(workers=2)
    flow = slack_workflow()
    kanri.slack.hold(0.1, times=1000)
    # Host B's posts are slow, so the kill lands while both of its workers are mid-post.
    host_b.slack.hold(1.0, times=1000)

    sent = deliver(post_event, counts, 40)

    def b_in_flight():
        with host_b.slack.lock:
            return host_b.slack.arrived - len(host_b.slack.posted)

    wait_until(
        lambda: len(host_b.slack.posted) >= 2 and b_in_flight() == 2,
        timeout=30,
        interval=0.02,
        message="host B's two workers mid-post, after it finished some runs",
    )
    host_b.cluster.kill_all()
    counts.fault("cluster kill -9 (one of two hosts)")
    posted_by_a_at_kill = len(kanri.slack.posted)

    def settled():
        done = Run.objects.filter(workflow=flow, status=Run.Status.SUCCEEDED).count()
        held = Run.objects.filter(workflow=flow, status=Run.Status.HELD).count()
        return done + held == len(sent)

    wait_until(settled, timeout=60, interval=0.2, message="host A to finish every run")

    by_a, by_b = texts(kanri.slack), texts(host_b.slack)
    runs = Run.objects.filter(workflow=flow)
    held = runs.filter(status=Run.Status.HELD)
    succeeded = runs.filter(status=Run.Status.SUCCEEDED)
    print(
        f"\nHost B killed mid-load: host A {len(by_a)} posts ({len(by_a) - posted_by_a_at_kill} "
        f"after the kill), host B {len(by_b)}; {held.count()} runs held as outcome unknown"
    )
    counts.add("runs_expected", len(sent))
    counts.add(
        "runs_done",
        succeeded.count() + held.filter(hold_reason=Run.HoldReason.OUTCOME_UNKNOWN).count(),
    )
    counts.add("side_effects_expected", len(sent))
    counts.add("side_effects_observed", len(set(by_a + by_b)))
    counts.add("duplicated", doubled(by_a + by_b))
    counts.add("lost", len({text_of(one) for one in sent} - set(by_a + by_b)))

    # Every event's message went out exactly once, from one host or the other.
    assert sorted(by_a + by_b) == sorted(text_of(one) for one in sent)
    assert len(by_a) > posted_by_a_at_kill  # host A went on and took up host B's runs
    assert kanri.cluster.process.poll() is None
    # The posts host B's workers had on the wire were carried out by Slack while they
    # died: those runs wait for a person ("outcome unknown") and were not posted again.
    # (1, not 2, only if a hold ended in the instant between the check and the kill.)
    steps = steps_by_run(flow)
    assert 1 <= held.count() <= 2
    for run in held.select_related("event"):
        assert (run.hold_reason, run.attempt, run.interruptions) == (
            Run.HoldReason.OUTCOME_UNKNOWN,
            2,
            1,
        )
        assert steps[run.pk] == [("notify", 1, "unknown")]
        assert text_of(run.snapshot) in by_b
    # Every other run succeeded with one post; the runs host B had taken from Redis but
    # not started come back through host A's sweeper, still at their first attempt.
    for run in succeeded:
        assert [s[2] for s in steps[run.pk]] == ["succeeded"]
    assert succeeded.count() + held.count() == len(sent)
