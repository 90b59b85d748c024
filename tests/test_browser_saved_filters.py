"""An ops person filters Runs by two statuses with the list's own filter, saves it as a shared
filter, and a colleague opens its short URL in another browser and sees the same runs."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from automations.models import Run, SavedFilter, Workflow
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow
from tests.test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def expect_runs(page, keys):
    """The list shows exactly these runs, in this order (waits for the page to draw them)."""
    expect(page.locator("#result_list tbody td.field-trigger_key")).to_have_text(keys)


def test_a_shared_filter_opens_the_same_runs_for_a_colleague(
    page, browser, live_server, screenshots
):
    workflow = create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)
    now = timezone.now()
    for i, status in enumerate(["failed", "held", "succeeded", "queued", "failed", "cancelled"]):
        Run.objects.create(
            workflow=workflow,
            version=workflow.active_version,
            trigger_key=f"evt_{status}_{i}",
            event_type="payment_intent.succeeded",
            status=status,
            trigger_data={},
            created_at=now - timezone.timedelta(minutes=10 - i),
        )
    staff_user("viewer", username="ops")
    staff_user("viewer", username="colleague")

    # Failed OR held, picked in the list's status filter as the page draws it.
    log_in(page, live_server, "ops")
    page.goto(f"{live_server.url}/admin/automations/run/")
    status_filter = page.locator("#changelist-filter details", has_text="status")
    status_filter.get_by_role("link", name="Failed", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/admin/automations/run/?status__in=failed")
    status_filter.get_by_role("link", name="Waiting for a person", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/admin/automations/run/?status__in=failed%2Cheld")
    expected = ["evt_failed_4", "evt_held_1", "evt_failed_0"]
    expect_runs(page, expected)

    # Save it, shared with the team.
    page.fill("#kanri-save-filter-name", "Runs that need a look")
    page.check("#kanri-save-filter-shared")
    page.get_by_role("button", name="Save this filter").click()
    message = page.locator(".messagelist .success")
    expect(message).to_contain_text("Saved the filter “Runs that need a look”.")
    saved = SavedFilter.objects.get()
    short_url = f"{live_server.url}/f/{saved.slug}/"
    expect(message.locator("a.kanri-short-url")).to_have_attribute("href", short_url)
    assert (saved.shared, saved.query) == (True, "status__in=failed,held")
    expect_runs(page, expected)
    expect(page.locator("#kanri-saved-filter-menu li.selected")).to_have_text(
        "Runs that need a look (yours, shared)"
    )
    page.screenshot(path=str(screenshots / "saved-filter-runs.png"), full_page=True)

    # A colleague, in a browser of their own, opens the link from the message.
    other = browser.new_context().new_page()
    other.goto(short_url)
    expect(other).to_have_url(f"{live_server.url}/admin/login/?next=/f/{saved.slug}/")
    other.fill("#id_username", "colleague")
    other.fill("#id_password", "pw")
    other.click("input[type=submit]")
    expect(other).to_have_url(f"{live_server.url}/admin/automations/run/?status__in=failed,held")
    expect_runs(other, expected)
    expect(other.locator("#kanri-saved-filter-menu li.selected")).to_contain_text(
        "Runs that need a look (shared by ops)"
    )
    other.context.close()
