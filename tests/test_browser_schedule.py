"""A scheduled workflow made in the editor as a person makes it: choose "On a schedule", a
saved filter, when it runs and in which time zone, see the next three runs while editing,
insert a loop over the digest's rows, save, and see the next runs on the saved workflow."""

import pytest
from playwright.sync_api import expect

from automations import definition
from automations.models import SavedFilter, Workflow
from automations.triggers import schedule
from tests.admin_helpers import staff_user
from tests.test_browser import add_step, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOOP = "{{#each trigger.data.object.rows limit=10}}• {{item.id}} {{item.amount | money}}\n{{/each}}"


def expected_times(**trigger):
    return [t.isoformat() for t in schedule.next_times(trigger, 3)]


def shown_times(page):
    return page.locator("#kanri-schedule-times time")


def test_an_editor_schedules_a_daily_digest_and_sees_its_next_three_runs(
    page, live_server, screenshots
):
    staff_user("editor")
    failed = SavedFilter.objects.create(
        name="Failed payments", list="djstripe.charge", query="status__in=failed", shared=True
    )
    log_in(page, live_server, "editor")
    page.goto(f"{live_server.url}/admin/automations/workflow/add/")
    expect(page.locator(".form-row.field-schedule_filter")).to_be_hidden()

    page.fill("#id_name", "Failed payments every morning")
    page.select_option("#id_trigger", "schedule:digest")
    expect(page.locator(".form-row.field-schedule_filter")).to_be_visible()
    expect(page.locator(".form-row.field-schedule_cron")).to_be_hidden()
    page.select_option("#id_schedule_filter", failed.slug)
    page.select_option("#id_schedule_every", "weekly")
    page.select_option("#id_schedule_weekday", "fri")
    page.fill("#id_schedule_at", "08:30")
    page.select_option("#id_schedule_timezone", "Asia/Tokyo")

    weekly = expected_times(every="weekly", weekday="fri", at="08:30", timezone="Asia/Tokyo")
    times = shown_times(page)
    expect(times).to_have_count(3)
    for index, iso in enumerate(weekly):
        expect(times.nth(index)).to_have_attribute("datetime", iso)
    expect(times.first).to_contain_text("(Asia/Tokyo)")

    # Staff change their mind: every day at 09:00; the times follow as they type.
    page.select_option("#id_schedule_every", "daily")
    expect(page.locator(".form-row.field-schedule_weekday")).to_be_hidden()
    page.fill("#id_schedule_at", "9:6")
    expect(page.locator("#kanri-schedule-problems li")).to_have_text(
        "Enter the time as HH:MM on a 24-hour clock, such as 09:00."
    )
    page.fill("#id_schedule_at", "09:00")
    daily = expected_times(every="daily", at="09:00", timezone="Asia/Tokyo")
    expect(times.first).to_have_attribute("datetime", daily[0])
    expect(page.locator("#kanri-schedule-problems li")).to_have_count(0)

    add_step(page, 0, "post", "slack.post_message")
    page.fill('input[name="steps-0-slack_post_message__channel"]', "C0OPS")
    helper = page.locator(
        'select.kanri-insert-reference[data-target="steps-0-slack_post_message__text"]'
    )
    expect(helper.locator("option", has_text="Rows (the first 200) (each)")).to_have_count(1)
    helper.select_option(label="Rows (the first 200) (each)")
    expect(page.locator('textarea[name="steps-0-slack_post_message__text"]')).to_have_value(LOOP)
    page.screenshot(path=str(screenshots / "schedule-editing.png"), full_page=True)
    page.click('input[name="_continue"]')

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    workflow = Workflow.objects.get()
    assert definition.trigger_of(workflow) == {
        "kind": "schedule",
        "mode": "digest",
        "filter": failed.slug,
        "every": "daily",
        "at": "09:00",
        "cron": "0 9 * * *",
        "timezone": "Asia/Tokyo",
    }
    # A browser sends a textarea's line breaks as CRLF (the HTML standard); Slack takes both.
    assert workflow.steps.get().config["text"].replace("\r\n", "\n") == LOOP
    # The saved page shows the same three runs, from the server.
    expect(times).to_have_count(3)
    for index, iso in enumerate(daily):
        expect(times.nth(index)).to_have_attribute("datetime", iso)
    expect(page.locator("#id_schedule_at")).to_have_value("09:00")
    page.screenshot(path=str(screenshots / "schedule-saved.png"), full_page=True)
