"""The schedule trigger: a saved filter's rows at each tick of a cron in the workflow's time
zone, as one digest run or one run per row, through one django-q2 Schedule per workflow."""

import ast
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler

from automations import bookmarks, definition, schedules, templates, workflows
from automations.models import Run, SavedFilter, TriggerKind, Workflow
from automations.tasks import run_schedule
from automations.triggers import schedule
from tests import stripe_objects
from tests.admin_helpers import staff_user, workflow_form
from tests.builders import create_workflow

TOKYO = ZoneInfo("Asia/Tokyo")
# A Tuesday morning in Tokyo, after that day's 09:00 tick.
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
DIGEST_TEXT = (
    "{{trigger.data.object.count}} failed payments ({{trigger.data.object.filter.name}})\n"
    "{{#each trigger.data.object.totals}}Total: {{item.amount | money}}\n{{/each}}"
    "{{#each trigger.data.object.rows}}• {{item.id}} {{item.amount | money}} "
    "{{item.failure_code}}\n{{/each}}"
)


@pytest.fixture
def failed_filter(db):
    # The Payments list's own status filter (automations/admin/filters.py).
    return SavedFilter.objects.create(
        name="Failed payments", list="djstripe.charge", query="status__in=failed", shared=True
    )


def scheduled(saved_filter, mode="digest", text=DIGEST_TEXT, **trigger):
    return {
        "name": "Failed payments digest",
        "trigger": {
            "kind": "schedule",
            "mode": mode,
            "filter": saved_filter.slug,
            "every": "daily",
            "at": "09:00",
            "timezone": "Asia/Tokyo",
            **trigger,
        },
        "conditions": [],
        "steps": [
            {
                "name": "post",
                "kind": "slack.post_message",
                "config": {"channel": "C0OPS", "text": text},
            }
        ],
    }


def schedule_rows(workflow):
    return list(
        Schedule.objects.filter(name__startswith="kanri-workflow-").values_list(
            "name", "func", "args", "schedule_type", "cron", "next_run"
        )
    )


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------- validation


def codes(trigger):
    return [(p.where, p.code) for p in schedule.validate({"kind": "schedule", **trigger})]


def test_a_valid_trigger_has_no_problems(failed_filter):
    assert (
        codes(
            {
                "mode": "digest",
                "filter": failed_filter.slug,
                "cron": "0 9 * * 1-5",
                "timezone": "UTC",
            }
        )
        == []
    )


def test_a_schedule_over_a_private_filter_is_refused_until_it_is_shared(failed_filter):
    # The rows would go to the whole team (Slack, email) on the owner's permissions.
    SavedFilter.objects.filter(pk=failed_filter.pk).update(shared=False)
    trigger = {
        "mode": "digest",
        "filter": failed_filter.slug,
        "cron": "0 9 * * *",
        "timezone": "UTC",
    }

    assert codes(trigger) == [("trigger.filter", "schedule_filter_private")]
    SavedFilter.objects.filter(pk=failed_filter.pk).update(shared=True)
    assert codes(trigger) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"filter": ""}, [("trigger.filter", "schedule_filter_required")]),
        ({"filter": "nosuchfilter"}, [("trigger.filter", "schedule_filter_unknown")]),
        ({"mode": "weekly"}, [("trigger.mode", "schedule_mode_unknown")]),
        ({"every": "cron", "cron": "61 9 * * *"}, [("trigger.cron", "schedule_cron_invalid")]),
        ({"every": "cron", "cron": "0 9 * * * *"}, [("trigger.cron", "schedule_cron_invalid")]),
        ({"every": "cron", "cron": ""}, [("trigger.cron", "schedule_cron_required")]),
        ({"every": "hourly"}, [("trigger.every", "schedule_every_unknown")]),
        ({"at": "9am"}, [("trigger.at", "schedule_time_invalid")]),
        ({"at": "24:00"}, [("trigger.at", "schedule_time_invalid")]),
        (
            {"every": "weekly", "weekday": "someday"},
            [("trigger.weekday", "schedule_weekday_unknown")],
        ),
        ({"cron": "0 8 * * *"}, [("trigger.cron", "schedule_cron_mismatch")]),
        ({"timezone": "Mars/Olympus"}, [("trigger.timezone", "schedule_timezone_unknown")]),
        ({"timezone": ""}, [("trigger.timezone", "schedule_timezone_required")]),
        ({"timezone": ["UTC"]}, [("trigger.timezone", "schedule_timezone_unknown")]),
        ({"mode": {"a": 1}, "weekday": [1]}, [("trigger.mode", "schedule_mode_unknown")]),
    ],
)
def test_a_trigger_that_cannot_be_scheduled_is_refused_where_it_is_wrong(
    failed_filter, changes, expected
):
    trigger = {
        "mode": "digest",
        "filter": failed_filter.slug,
        "every": "daily",
        "at": "09:00",
        "timezone": "Asia/Tokyo",
        **changes,
    }

    assert codes(trigger) == expected


def test_daily_and_weekly_choices_derive_their_cron():
    assert schedule.cron_of({"every": "daily", "at": "07:05"}) == "5 7 * * *"
    assert schedule.cron_of({"every": "weekly", "weekday": "sun", "at": "18:30"}) == "30 18 * * 0"
    assert schedule.cron_of({"every": "cron", "cron": "0 9 * * 1-5"}) == "0 9 * * 1-5"


def test_the_next_times_are_in_the_workflows_zone():
    trigger = {"every": "weekly", "weekday": "mon", "at": "09:00", "timezone": "Asia/Tokyo"}

    assert [t.isoformat() for t in schedule.next_times(trigger, 3, now=T0)] == [
        "2026-12-07T09:00:00+09:00",
        "2026-12-14T09:00:00+09:00",
        "2026-12-21T09:00:00+09:00",
    ]


# ---------------------------------------------------------------- the django-q2 Schedule


def test_one_schedule_follows_activation_edits_pausing_and_deletion(failed_filter):
    with time_machine.travel(T0, tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")
        workflows.activate(workflow)  # again: still one
        name = f"kanri-workflow-{workflow.pk}"
        task = "automations.tasks.run_schedule"
        # 09:00 in Tokyo is midnight UTC, whatever settings.TIME_ZONE says.
        assert schedule_rows(workflow) == [
            (name, task, str(workflow.pk), "C", "0 9 * * *", utc(2026, 12, 2, 0, 0))
        ]

        edited = scheduled(failed_filter, every="cron", cron="30 8 * * 1-5")
        workflows.save_draft(workflow, edited)
        # A draft changes nothing until it is activated.
        assert [r[4] for r in schedule_rows(workflow)] == ["0 9 * * *"]
        workflows.activate(workflow)
        assert schedule_rows(workflow) == [
            (name, task, str(workflow.pk), "C", "30 8 * * 1-5", utc(2026, 12, 1, 23, 30))
        ]

        workflows.pause(workflow)
        assert schedule_rows(workflow) == []
        workflows.activate(workflow)
        assert len(schedule_rows(workflow)) == 1

        # Versions protect an activated workflow from deletion; once none is active (as a
        # shell or a data migration would leave it, without signals) it can be deleted.
        Workflow.objects.filter(pk=workflow.pk).update(active_version=None)
        assert len(schedule_rows(workflow)) == 1
        Workflow.objects.get(pk=workflow.pk).delete()
        assert schedule_rows(workflow) == []


def test_saving_an_active_workflow_keeps_its_next_run(failed_filter):
    with time_machine.travel(T0, tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")
    Schedule.objects.filter(name=f"kanri-workflow-{workflow.pk}").update(
        next_run=utc(2026, 12, 2, 0, 0)  # due, not yet picked up by the scheduler
    )
    with time_machine.travel(datetime(2026, 12, 2, 9, 0, 20, tzinfo=TOKYO), tick=False):
        workflow.refresh_from_db()
        workflow.description = "Renamed"
        workflow.save()
        workflows.activate(workflow)  # a new version, the same schedule

    assert [r[5] for r in schedule_rows(workflow)] == [utc(2026, 12, 2, 0, 0)]


def test_a_workflow_on_another_trigger_has_no_schedule(failed_filter):
    workflow = create_workflow(scheduled(failed_filter), status="active")
    other = {
        **scheduled(failed_filter),
        "trigger": {"kind": "manual", "object": "charge"},
        "steps": [],
    }

    workflows.save_draft(workflow, other)
    workflows.activate(workflow)

    assert schedule_rows(workflow) == []


def test_two_stray_schedules_for_one_workflow_become_one(failed_filter):
    workflow = create_workflow(scheduled(failed_filter), status="active")
    stray = Schedule.objects.get(name=f"kanri-workflow-{workflow.pk}")
    stray.pk = None
    stray.save()

    schedules.sync(workflow)

    assert len(schedule_rows(workflow)) == 1


# ---------------------------------------------------------------- ticks


def test_a_tick_missed_while_the_cluster_was_down_runs_once(
    failed_filter, fake_slack, django_capture_on_commit_callbacks
):
    stripe_objects.charge(1500, status="failed")
    with time_machine.travel(T0, tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")
        armed = Schedule.objects.get(name=f"kanri-workflow-{workflow.pk}")
    kwargs = ast.literal_eval(armed.kwargs)  # as django-q2's scheduler reads it

    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            first = run_schedule(workflow.pk, **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            second = run_schedule(workflow.pk, **kwargs)

    run = Run.objects.get()
    assert (first, second) == ([run.pk], [])
    assert (run.trigger_kind, run.trigger_key, run.status) == (
        TriggerKind.SCHEDULE,
        "schedule:2026-12-04T09:00:00+09:00",
        Run.Status.SUCCEEDED,
    )
    assert len(fake_slack.messages()) == 1
    # Re-armed for the next tick in Tokyo.
    assert [r[5] for r in schedule_rows(workflow)] == [utc(2026, 12, 5, 0, 0)]


def test_a_tick_before_the_schedule_was_armed_starts_nothing(
    failed_filter, django_capture_on_commit_callbacks
):
    stripe_objects.charge(1500, status="failed")
    with time_machine.travel(T0, tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")
        armed = Schedule.objects.get(name=f"kanri-workflow-{workflow.pk}")
        with django_capture_on_commit_callbacks(execute=True):
            started = run_schedule(workflow.pk, **ast.literal_eval(armed.kwargs))

    # Today's 09:00 tick was before the workflow was activated at 10:00.
    assert started == []
    assert not Run.objects.exists()


def test_django_q2s_scheduler_fires_the_task_and_our_next_run_wins(
    failed_filter, fake_slack, django_capture_on_commit_callbacks
):
    stripe_objects.charge(1500, status="failed")
    with time_machine.travel(T0, tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")

    # Just after the next tick, as the scheduler's loop would run (tasks run inline).
    just_after = datetime(2026, 12, 2, 9, 0, 30, tzinfo=TOKYO)
    with (
        time_machine.travel(just_after, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        scheduler(broker=get_broker())

    assert Run.objects.get().trigger_key == "schedule:2026-12-02T09:00:00+09:00"
    # django-q2 computed its own next run in settings.TIME_ZONE (09:00 UTC); the task's is
    # the next 09:00 in Tokyo.
    assert [r[5] for r in schedule_rows(workflow)] == [utc(2026, 12, 3, 0, 0)]


def test_a_paused_workflow_whose_schedule_was_left_behind_starts_nothing_and_drops_it(
    failed_filter,
):
    workflow = create_workflow(scheduled(failed_filter), status="active")
    Workflow.objects.filter(pk=workflow.pk).update(status=Workflow.Status.PAUSED)  # no signal

    assert run_schedule(workflow.pk) == []
    assert schedule_rows(workflow) == []


def test_a_filter_that_no_longer_applies_fails_the_tick_visibly_and_starts_nothing(
    failed_filter, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")
    SavedFilter.objects.filter(pk=failed_filter.pk).update(query="status__in=nonsense")

    later = time_machine.travel(T0 + timedelta(days=1), tick=False)
    capture = django_capture_on_commit_callbacks(execute=True)
    with later, pytest.raises(bookmarks.FilterError), capture:
        run_schedule(workflow.pk)  # django-q2 keeps it as a failed task

    assert not Run.objects.exists()
    assert [r[5] for r in schedule_rows(workflow)] == [utc(2026, 12, 3, 0, 0)]


def test_a_filter_made_private_after_activation_fails_the_tick_and_starts_nothing(
    failed_filter, django_capture_on_commit_callbacks
):
    stripe_objects.charge(500, status="failed")
    with time_machine.travel(T0, tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")
    SavedFilter.objects.filter(pk=failed_filter.pk).update(shared=False)

    later = time_machine.travel(T0 + timedelta(days=1), tick=False)
    capture = django_capture_on_commit_callbacks(execute=True)
    with later, pytest.raises(bookmarks.FilterError, match="may not view"), capture:
        run_schedule(workflow.pk)

    assert not Run.objects.exists()


# ---------------------------------------------------------------- digests and rows


def test_a_digest_of_three_failed_payments_posts_one_slack_message(
    failed_filter, fake_slack, django_capture_on_commit_callbacks
):
    made = [
        stripe_objects.charge(1500, status="failed", created=T0 - timedelta(hours=3)),
        stripe_objects.charge(2500, status="failed", created=T0 - timedelta(hours=2)),
        stripe_objects.charge(300, "jpy", status="failed", created=T0 - timedelta(hours=1)),
    ]
    stripe_objects.charge(9900, created=T0 - timedelta(hours=1))  # succeeded: not listed
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        workflow = create_workflow(scheduled(failed_filter), status="active")

    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        run_schedule(workflow.pk)

    newest_first = [c.id for c in reversed(made)]
    assert fake_slack.messages() == [
        {
            "channel": "C0OPS",
            "text": (
                "3 failed payments (Failed payments)\n"
                "Total: ¥300\n"
                "Total: $40.00\n"
                f"• {newest_first[0]} ¥300 card_declined\n"
                f"• {newest_first[1]} $25.00 card_declined\n"
                f"• {newest_first[2]} $15.00 card_declined\n"
            ),
        }
    ]
    run = Run.objects.get()
    digest = run.snapshot["data"]["object"]
    assert (run.trigger_key, run.event_type, digest["count"], digest["totals"]) == (
        "schedule:2026-12-01T09:00:00+09:00",
        "schedule.digest",
        3,
        [{"currency": "jpy", "amount": 300}, {"currency": "usd", "amount": 4000}],
    )
    assert digest["filter"] == {"name": "Failed payments", "url": f"/f/{failed_filter.slug}/"}
    assert digest["scheduled_for"] == "2026-12-01T09:00:00+09:00"


def test_a_digest_keeps_a_bounded_snapshot_but_counts_and_totals_every_row(
    failed_filter, fake_slack, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("automations.catalog.DIGEST_ROWS", 2)
    for amount in (100, 200, 300):
        stripe_objects.charge(amount, status="failed")
    workflow = create_workflow(scheduled(failed_filter), status="active")

    with time_machine.travel(timedelta(days=1)), django_capture_on_commit_callbacks(execute=True):
        run_schedule(workflow.pk)

    digest = Run.objects.get().snapshot["data"]["object"]
    assert (len(digest["rows"]), digest["count"], digest["totals"]) == (
        2,
        3,
        [{"currency": "usd", "amount": 600}],
    )
    assert fake_slack.messages()[0]["text"].endswith("…and 1 more\n")


def test_each_row_mode_makes_one_run_per_row_and_a_repeat_tick_none(
    failed_filter, fake_slack, django_capture_on_commit_callbacks
):
    made = [stripe_objects.charge(a, status="failed") for a in (1500, 2500, 3500)]
    text = "Failed: {{trigger.data.object.id}} {{trigger.data.object.amount | money}}"
    workflow = create_workflow(scheduled(failed_filter, mode="each", text=text), status="active")

    with time_machine.travel(timedelta(days=1)):
        with django_capture_on_commit_callbacks(execute=True):
            started = run_schedule(workflow.pk)
        with django_capture_on_commit_callbacks(execute=True):
            again = run_schedule(workflow.pk)

    runs = Run.objects.order_by("pk")
    assert (len(started), again) == (3, [])
    assert sorted(r.snapshot["data"]["object"]["id"] for r in runs) == sorted(c.id for c in made)
    assert all(r.trigger_key.endswith(":" + r.snapshot["data"]["object"]["id"]) for r in runs)
    assert sorted(m["text"] for m in fake_slack.messages()) == sorted(
        [
            f"Failed: {made[0].id} $15.00",
            f"Failed: {made[1].id} $25.00",
            f"Failed: {made[2].id} $35.00",
        ]
    )


def test_conditions_decide_per_row_in_each_row_mode(
    failed_filter, fake_slack, django_capture_on_commit_callbacks
):
    stripe_objects.charge(500, status="failed")
    big = stripe_objects.charge(5000, status="failed")
    data = scheduled(failed_filter, mode="each", text="{{trigger.data.object.id}}")
    data["conditions"] = [
        [{"field": "trigger.data.object.amount", "op": "gte", "value": 1000, "currency": "usd"}]
    ]
    workflow = create_workflow(data, status="active")

    with time_machine.travel(timedelta(days=1)), django_capture_on_commit_callbacks(execute=True):
        run_schedule(workflow.pk)

    assert [m["text"] for m in fake_slack.messages()] == [big.id]


def test_a_digest_previews_on_the_rows_of_the_next_tick(failed_filter):
    charge = stripe_objects.charge(1500, status="failed")
    workflow = create_workflow(scheduled(failed_filter))

    [(subject, _when)] = workflows.sample_subjects(workflow)
    result = workflows.preview(
        workflows.draft(workflow), workflows.subject_data(workflow, subject), workflow.pk
    )

    assert subject == "next"
    assert result["trigger_matches"] is True
    assert f"• {charge.id} $15.00 card_declined" in result["steps"][0]["request"]["text"]


# ---------------------------------------------------------------- the template


def test_the_daily_failed_payments_digest_installs_with_its_saved_filter_and_posts(
    db, fake_slack, django_capture_on_commit_callbacks
):
    morning = datetime(2026, 12, 2, 9, 0, tzinfo=TOKYO)
    yesterday = [
        stripe_objects.charge(1500, status="failed", created=morning - timedelta(hours=12)),
        stripe_objects.charge(700, "jpy", status="failed", created=morning - timedelta(hours=20)),
    ]
    stripe_objects.charge(2000, status="failed", created=morning - timedelta(minutes=5))  # today
    stripe_objects.charge(2000, created=morning - timedelta(hours=12))  # succeeded

    with time_machine.travel(morning - timedelta(days=1), tick=False):
        call_command("install_templates", "failed_payments_digest")
        call_command("install_templates", "failed_payments_digest")  # again: nothing new
        workflow = Workflow.objects.get(name="Daily failed payments digest")
        workflows.activate(workflow)
    with time_machine.travel(morning, tick=False), django_capture_on_commit_callbacks(execute=True):
        run_schedule(workflow.pk)

    saved = SavedFilter.objects.get()
    assert (saved.slug, saved.list, saved.shared, saved.owner) == (
        templates.FAILED_YESTERDAY,
        "djstripe.charge",
        True,
        None,
    )
    assert definition.trigger_of(workflow)["timezone"] == "Asia/Tokyo"
    assert fake_slack.messages() == [
        {
            "channel": "#payments",
            "text": (
                "2 failed payments yesterday (Payments that failed yesterday)\n"
                "Total: ¥700\n"
                "Total: $15.00\n"
                f"• {yesterday[0].id} $15.00 card_declined\n"
                f"• {yesterday[1].id} ¥700 card_declined\n"
            ),
        }
    ]


# ---------------------------------------------------------------- the editor


def schedule_form(saved_filter, **fields):
    data = workflow_form(name="Digest", event_type="schedule:digest")
    data.update(
        {
            "schedule_filter": saved_filter.slug,
            "schedule_every": "daily",
            "schedule_at": "09:00",
            "schedule_weekday": "mon",
            "schedule_cron": "",
            "schedule_timezone": "Asia/Tokyo",
            **fields,
        }
    )
    return data


def test_the_editor_saves_a_schedule_as_chosen_with_its_cron(client, failed_filter):
    client.force_login(staff_user("editor"))

    response = client.post(
        "/admin/automations/workflow/add/",
        schedule_form(failed_filter, schedule_every="weekly", schedule_weekday="fri"),
    )

    assert response.status_code == 302
    assert definition.trigger_of(Workflow.objects.get()) == {
        "kind": "schedule",
        "mode": "digest",
        "filter": failed_filter.slug,
        "every": "weekly",
        "at": "09:00",
        "weekday": "fri",
        "cron": "0 9 * * 5",
        "timezone": "Asia/Tokyo",
    }


def test_the_editor_puts_a_schedules_problems_next_to_its_fields(client, failed_filter):
    client.force_login(staff_user("editor"))

    response = client.post(
        "/admin/automations/workflow/add/",
        schedule_form(failed_filter, schedule_at="25:00"),
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {
        "schedule_at": ["Enter the time as HH:MM on a 24-hour clock, such as 09:00."]
    }
    assert not Workflow.objects.exists()


def test_the_editor_offers_only_the_saved_filters_a_person_may_see(client, failed_filter):
    editor = staff_user("editor")
    other = staff_user("editor", username="other")
    mine = SavedFilter.objects.create(name="Mine", list="djstripe.charge", owner=editor)
    SavedFilter.objects.create(name="Theirs", list="djstripe.charge", owner=other)
    client.force_login(editor)

    page = client.get("/admin/automations/workflow/add/")

    choices = dict(page.context["adminform"].form.fields["schedule_filter"].choices)
    assert sorted(choices) == sorted(["", failed_filter.slug, mine.slug])


def test_the_change_form_shows_the_next_three_runs_in_the_workflows_zone(client, failed_filter):
    workflow = create_workflow(scheduled(failed_filter))
    client.force_login(staff_user("editor"))

    with time_machine.travel(T0, tick=False):
        page = client.get(f"/admin/automations/workflow/{workflow.pk}/change/")
        answer = client.get(
            "/admin/automations/workflow/schedule/",
            {
                "schedule_every": "cron",
                "schedule_cron": "0 18 * * 5",
                "schedule_timezone": "Europe/Paris",
            },
        ).json()

    assert [t["iso"] for t in page.context["kanri"]["schedule"]["times"]] == [
        "2026-12-02T09:00:00+09:00",
        "2026-12-03T09:00:00+09:00",
        "2026-12-04T09:00:00+09:00",
    ]
    assert "(Asia/Tokyo)" in page.content.decode()
    assert (answer["zone"], [t["iso"] for t in answer["times"]], answer["problems"]) == (
        "Europe/Paris",
        [
            "2026-12-04T18:00:00+01:00",
            "2026-12-11T18:00:00+01:00",
            "2026-12-18T18:00:00+01:00",
        ],
        [],
    )
    assert answer["times"][0]["text"].endswith("(Europe/Paris)")


def test_the_reference_menu_offers_a_ready_loop_over_a_digests_rows(client, failed_filter):
    client.force_login(staff_user("editor"))

    answer = client.post(
        "/admin/automations/workflow/references/",
        {
            "trigger": "schedule:digest",
            "schedule_filter": failed_filter.slug,
            "steps": [{"key": "s1", "name": "post", "kind": "slack.post_message"}],
        },
        content_type="application/json",
    ).json()

    menu = {f[0]: f for f in answer["steps"]["s1"]}
    assert menu["trigger.data.object.rows"][3] == (
        "{{#each trigger.data.object.rows limit=10}}• {{item.id}} {{item.amount | money}}"
        "\n{{/each}}"
    )
    assert menu["trigger.data.object.count"] == [
        "trigger.data.object.count",
        "Number of rows",
        "integer",
    ]
