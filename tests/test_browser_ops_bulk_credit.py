"""Scenarios B and C as an ops person does them in Chromium: filter payments by two statuses,
share the filter with a colleague, then refund three selected payments as store credit through
the confirmation page and download the report."""

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from automations import store_credit
from automations.models import Batch, SavedFilter
from tests import stripe_objects as so
from tests.admin_helpers import staff_user
from tests.builders import create_customer, create_workflow
from tests.test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def buyer(email, locales=("en-US",)):
    """A customer in the fake Stripe and in Kanri's mirror, under one id."""
    made = create_customer(email=email, name="Hanako Sato", preferred_locales=list(locales))
    return so.customer(
        email=email, name="Hanako Sato", id=made["id"], preferred_locales=list(locales)
    )


def test_an_ops_person_shares_a_payments_filter_and_credits_three_payments(
    page, browser, live_server, fake_stripe, smtp_server, screenshots
):
    hanako = buyer("hanako@example.test", ["ja"])
    paid = [
        so.charge(amount, "jpy", customer=hanako, metadata={"booking_id": f"B-{amount}"})
        for amount in (1500, 2500, 4000)
    ]
    canceled = so.charge(
        800,
        "jpy",
        status="failed",
        outcome="issuer_declined",
        payment_intent=so.payment_intent(status="canceled"),
    )
    blocked = so.charge(900, "jpy", status="failed", outcome="blocked", captured=False)
    so.charge(700, "jpy", status="failed")  # failed, neither canceled nor blocked
    fake_stripe.seed(*(charge.stripe_data for charge in paid))
    create_workflow(store_credit.preset(form="promotion_code"), status="active")
    staff_user("approver", "ops")
    staff_user("viewer", "colleague")
    log_in(page, live_server, "ops")

    # 1. Payments whose status is canceled OR blocked, picked in the list's own filter.
    page.goto(f"{live_server.url}/admin/djstripe/charge/")
    status = page.locator('details[data-filter-title="status"]')
    status.get_by_role("link", name="Canceled", exact=True).click()
    status.get_by_role("link", name="Blocked", exact=True).click()
    assert "status__in=" in page.url
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#result_list tbody")).to_contain_text(canceled.id)
    expect(page.locator("#result_list tbody")).to_contain_text(blocked.id)

    # 2. Saved as shared; a colleague opens its short URL and sees the same payments.
    page.fill("#kanri-save-filter-name", "Canceled or blocked payments")
    page.check("#kanri-save-filter-shared")
    page.get_by_role("button", name="Save this filter").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Canceled or blocked payments")
    saved = SavedFilter.objects.get()
    assert sorted(saved.query.split("=", 1)[1].split(",")) == ["blocked", "canceled"]
    other = browser.new_context().new_page()
    other.goto(f"{live_server.url}/f/{saved.slug}/")
    other.fill("#id_username", "colleague")
    other.fill("#id_password", "pw")
    other.click("input[type=submit]")
    expect(other.locator("#result_list tbody tr")).to_have_count(2)
    expect(other.locator("#result_list tbody")).to_contain_text(canceled.id)
    expect(other.locator("#result_list tbody")).to_contain_text(blocked.id)
    other.context.close()

    # 3. Three paid payments selected and refunded as store credit, after the confirmation.
    page.goto(f"{live_server.url}/admin/djstripe/charge/")
    for charge in paid:
        page.check(f'input.action-select[value="{charge.pk}"]')
    page.select_option("select[name=action]", "refund_as_store_credit")
    page.click("button[name=index]")
    expect(page.locator("#content")).to_contain_text("Refund 3 charge(s) as store credit?")
    expect(page.locator("#content")).to_contain_text("¥8,000")
    assert fake_stripe.requests(path="/v1/promotion_codes", method="POST") == []
    page.screenshot(path=str(screenshots / "store-credit-confirm.png"), full_page=True)
    page.click("#kanri-confirm")

    expect(page.locator("#content")).to_contain_text("Download CSV")
    codes = fake_stripe.requests(path="/v1/promotion_codes", method="POST")
    assert len(codes) == 3
    assert {c["params"]["customer"] for c in codes} == {hanako.id}
    assert len(smtp_server.messages) == 3

    # 4. The report, downloaded as a person would.
    with page.expect_download() as download:
        page.click("#kanri-credit-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "charge",
        "customer",
        "email",
        "amount",
        "currency",
        "credit type",
        "credit id or code",
        "expires_at",
        "status",
        "error",
    ]
    assert sorted((r[0], r[1], r[2], r[4], r[5], r[8]) for r in rows[1:]) == sorted(
        (c.id, hanako.id, "hanako@example.test", "jpy", "promotion_code", "credited") for c in paid
    )
    batch = Batch.objects.get()
    out = io.StringIO()
    store_credit.write_csv(store_credit.report(batch), out)
    assert text.replace("\r\n", "\n") == out.getvalue().replace("\r\n", "\n")
