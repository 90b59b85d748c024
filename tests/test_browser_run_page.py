"""An ops user reads a run in a real browser: the timeline with the retry's wait apart from
the work, the branch arm taken with its reason, the email as an email; in English, and the
same page with the browser set to Japanese. Screenshots: var/screenshots/run-page*.png."""

import pytest
from playwright.sync_api import expect

from tests.admin_helpers import staff_user
from tests.test_browser import log_in
from tests.test_run_page import vip_run  # noqa: F401 (the run the page shows)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_ops_user_reads_a_run_as_a_timeline(page, live_server, vip_run, screenshots):  # noqa: F811
    staff_user("viewer")
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server, "viewer")

    page.goto(f"{live_server.url}/admin/automations/run/{vip_run.pk}/change/")

    notify = page.locator('li.kanri-tl-step[data-step="notify_team"]')
    expect(notify.locator(".kanri-tl-times")).to_contain_text("worked 1.8 s")
    expect(notify.locator(".kanri-tl-waited")).to_have_text("waited 30.0 s to retry")
    expect(notify.locator(".kanri-tl-wait")).to_have_count(1)
    email = notify.locator(".kanri-email")
    expect(email.locator(".kanri-email-subject")).to_have_text(
        "Large order pi_1: add a hand-written note"
    )
    expect(email.locator("table.kanri-email-rows")).to_contain_text("$2,500.00")
    branch = page.locator('li.kanri-tl-step[data-step="is_vip"]')
    expect(branch.locator(".kanri-tl-branch")).to_have_text("The conditions hold: it took “If”.")
    expect(branch.locator(".kanri-conditions")).to_contain_text("$2,500.00")
    taken = branch.locator(".kanri-arm-taken")
    expect(taken.locator(".kanri-arm-label")).to_contain_text("If")
    expect(taken.locator('[data-step="tag_vip"]')).to_be_visible()
    expect(page.locator("#kanri-run-waited")).to_have_text("30.0 s")
    expect(page.locator("#kanri-run-worked")).to_have_text("2.1 s")
    # The answer of a Stripe write, as JSON (not a Python repr).
    tag = page.locator('li.kanri-tl-step[data-step="tag_vip"]')
    expect(tag.locator("details pre.kanri-json").first).to_contain_text('"Tier": "VIP"')
    # The bars sit inside their track.
    track = notify.locator(".kanri-tl-track").bounding_box()
    for bar in notify.locator(".kanri-tl-bar").all():
        box = bar.bounding_box()
        assert track["x"] <= box["x"] and box["x"] + box["width"] <= track["x"] + track["width"] + 1
    page.screenshot(path=str(screenshots / "run-page.png"), full_page=True)
    assert errors == []


def test_the_run_page_opens_in_japanese(browser, live_server, vip_run, screenshots):  # noqa: F811
    staff_user("viewer", username="hanako")
    context = browser.new_context(
        locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1400, "height": 900}
    )
    page = context.new_page()
    try:
        log_in(page, live_server, "hanako")
        page.goto(f"{live_server.url}/admin/automations/run/{vip_run.pk}/change/")
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        expect(
            page.locator('li.kanri-tl-step[data-step="is_vip"] .kanri-arm-taken')
        ).to_be_visible()
        expect(page.locator(".kanri-email-subject")).to_have_text(
            "Large order pi_1: add a hand-written note"
        )
        page.screenshot(path=str(screenshots / "run-page-ja.png"), full_page=True)
    finally:
        context.close()
