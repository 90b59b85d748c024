"""`manage.py prune_runs` and the daily schedule's `maintenance.prune_runs()`: which runs
go, which stay, in batches."""

import io
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from automations import maintenance, tasks, workflows
from automations.models import Approval, Batch, Run, RunStep, Workflow
from automations.templates import tag_vip_customers
from tests.builders import create_workflow
from tests.conftest import BASE_DIR

FINISHED = {Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.CANCELLED}


@pytest.fixture
def workflow(db):
    return create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)


@pytest.fixture
def make_run(workflow):
    """Make a run `age` ago, with one step; finished a minute after it started if its
    status is a finished one (or `finished` ago when given); a held run has an approval."""

    def make(key, status, age, finished=None):
        started = timezone.now() - age
        run = Run.objects.create(
            workflow=workflow,
            version=workflow.active_version,
            trigger_key=key,
            trigger_data={},
            status=status,
            hold_reason=Run.HoldReason.APPROVAL if status == Run.Status.HELD else "",
            created_at=started,
            started_at=started,
            finished_at=(
                timezone.now() - finished
                if finished is not None
                else started + timedelta(minutes=1)
                if status in FINISHED
                else None
            ),
        )
        RunStep.objects.create(
            run=run,
            step_name="tag",
            kind="stripe.update_customer",
            status="succeeded",
            started_at=started,
        )
        if status == Run.Status.HELD:
            Approval.objects.create(run=run, step_name="tag", amount=100, currency="usd")
        return run

    return make


@pytest.fixture
def every_status(make_run):
    """One run of each status 100 days old, and a succeeded one 10 days old."""
    old = timedelta(days=100)
    return {
        **{f"old_{status}": make_run(f"evt_old_{status}", status, old) for status in Run.Status},
        "recent_succeeded": make_run("evt_recent", Run.Status.SUCCEEDED, timedelta(days=10)),
    }


def prune(*args):
    out = io.StringIO()
    call_command("prune_runs", *args, stdout=out)
    return out.getvalue()


def kept(runs):
    remaining = set(Run.objects.values_list("pk", flat=True))
    return {name for name, run in runs.items() if run.pk in remaining}


def test_by_default_old_succeeded_and_cancelled_runs_go_with_their_steps(every_status):
    out = prune()

    assert out.splitlines() == ["Deleting runs: 2/2", "Deleted 2 run(s)."]
    assert kept(every_status) == {
        "old_queued",
        "old_running",
        "old_retrying",
        "old_held",
        "old_failed",
        "recent_succeeded",
    }
    assert set(RunStep.objects.values_list("run__trigger_key", flat=True)) == {
        "evt_old_queued",
        "evt_old_running",
        "evt_old_retrying",
        "evt_old_held",
        "evt_old_failed",
        "evt_recent",
    }


def test_include_failed_takes_failed_and_held_runs_too_but_never_moving_ones(every_status):
    out = prune("--include-failed")

    assert out.splitlines()[-1] == "Deleted 4 run(s)."
    assert kept(every_status) == {"old_queued", "old_running", "old_retrying", "recent_succeeded"}
    assert Approval.objects.count() == 0  # the held run's approval went with it


def test_a_run_counts_its_age_from_when_it_finished(make_run):
    late = make_run(
        "evt_late", Run.Status.SUCCEEDED, timedelta(days=200), finished=timedelta(days=1)
    )
    early = make_run("evt_early", Run.Status.SUCCEEDED, timedelta(days=200))

    prune("--older-than", "90d")

    assert list(Run.objects.values_list("pk", flat=True)) == [late.pk]
    assert not Run.objects.filter(pk=early.pk).exists()


@pytest.mark.parametrize(
    ("period", "gone", "stays"),
    [("12h", 13, 11), ("90d", 24 * 91, 24 * 89), ("2w", 24 * 15, 24 * 13)],
)
def test_periods_in_hours_days_and_weeks(make_run, period, gone, stays):
    make_run("evt_gone", Run.Status.SUCCEEDED, timedelta(hours=gone))
    make_run("evt_stays", Run.Status.SUCCEEDED, timedelta(hours=stays))

    prune("--older-than", period)

    assert list(Run.objects.values_list("trigger_key", flat=True)) == ["evt_stays"]


def test_the_default_period_is_the_retention_setting(make_run, settings):
    settings.KANRI_RUN_RETENTION_DAYS = 5
    make_run("evt_6_days", Run.Status.SUCCEEDED, timedelta(days=6))
    make_run("evt_4_days", Run.Status.SUCCEEDED, timedelta(days=4))

    out = prune()

    assert out.splitlines()[-1] == "Deleted 1 run(s)."
    assert list(Run.objects.values_list("trigger_key", flat=True)) == ["evt_4_days"]


def test_runs_are_deleted_in_batches(make_run):
    for i in range(5):
        make_run(f"evt_{i}", Run.Status.SUCCEEDED, timedelta(days=100))
    batches = []

    result = maintenance.prune_runs(batch_size=2, on_batch=batches.append)

    assert batches == [2, 2, 1]
    assert result == {"matched": 5, "deleted": 5}
    assert Run.objects.count() == 0 and RunStep.objects.count() == 0


def test_the_command_deletes_in_the_batch_size_given(make_run):
    for i in range(5):
        make_run(f"evt_{i}", Run.Status.SUCCEEDED, timedelta(days=100))

    out = prune("--batch-size", "2")

    assert out.splitlines() == ["Deleting runs: 5/5", "Deleted 5 run(s)."]
    assert Run.objects.count() == 0


def test_a_dry_run_says_how_many_and_deletes_nothing(every_status):
    out = prune("--dry-run", "--include-failed")

    assert out.splitlines() == ["Dry run: 4 run(s) would be deleted; nothing was deleted."]
    assert Run.objects.count() == len(every_status)
    assert RunStep.objects.count() == len(every_status)


def test_pruning_twice_deletes_nothing_the_second_time(every_status):
    prune()

    assert prune().splitlines() == ["Deleted 0 run(s)."]
    assert Run.objects.count() == len(every_status) - 2


@pytest.mark.parametrize("value", ["90", "ninety days", "0d", "3m", "-1d", ""])
def test_a_period_it_cannot_read_is_refused_and_nothing_is_deleted(every_status, value):
    with pytest.raises(CommandError) as raised:
        prune(f"--older-than={value}")

    assert str(raised.value) == (
        f"--older-than {value!r} is not a period: use a number and h, d or w, "
        "such as 90d, 12h or 2w."
    )
    assert Run.objects.count() == len(every_status)


def test_a_bulk_request_keeps_its_items_when_its_runs_are_pruned(workflow, make_run):
    old = make_run("evt_old", Run.Status.SUCCEEDED, timedelta(days=100))
    new = make_run("evt_new", Run.Status.SUCCEEDED, timedelta(days=1))
    items = [{"id": "ch_old", "run": old.pk}, {"id": "ch_new", "run": new.pk}]
    batch = Batch.objects.create(workflow=workflow, token="t1", object_type="charge", items=items)
    Run.objects.filter(pk__in=[old.pk, new.pk]).update(batch=batch)

    prune()

    batch.refresh_from_db()
    assert batch.items == items
    report = workflows.batch_report(batch)
    assert [(row["id"], row["status"]) for row in report] == [
        ("ch_old", "skipped"),  # its run is gone
        ("ch_new", Run.Status.SUCCEEDED),
    ]


def test_the_daily_schedule_prunes_with_the_setting_and_prints_nothing(every_status, capsys):
    assert tasks.prune_runs() == {"matched": 2, "deleted": 2}

    assert kept(every_status) == set(every_status) - {"old_succeeded", "old_cancelled"}
    assert capsys.readouterr() == ("", "")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_and_a_pipe_plain_lines(every_status):
    tty = Terminal()
    call_command("prune_runs", stdout=tty)

    assert "\r" in tty.getvalue()
    assert "Deleting runs: 2/2\n" not in tty.getvalue()
    assert tty.getvalue().rstrip().endswith("Deleted 2 run(s).")


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("prune_runs", "--help")

    assert exited.value.code == 0
    assert "manage.py prune_runs --older-than 90d --dry-run" in capsys.readouterr().out


def test_manage_py_exits_1_with_the_message_on_a_bad_period():
    done = subprocess.run(
        [sys.executable, "manage.py", "prune_runs", "--older-than", "3m"],
        cwd=BASE_DIR,
        env={**os.environ, "ENV_FILE": "", "DEBUG": "on"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "CommandError: --older-than '3m' is not a period: use a number and h, d or w, "
        "such as 90d, 12h or 2w."
    )
