"""A Japanese ops user (browser in ja-JP, Tokyo) opens the admin: Kanri's home dashboard in
Japanese, with seeded runs, money and deliveries drawn as SVG, and no JavaScript error."""

import pytest
from playwright.sync_api import expect
from time_machine import travel

from automations.money import format_money
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow, event, payment_intent_dict, stored_event
from tests.dashboard_data import NOW, delivery, seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "ja-JP", "timezone_id": "Asia/Tokyo"}


def test_a_japanese_ops_user_reads_the_dashboard_in_japanese(
    page, live_server, settings, screenshots
):
    settings.TIME_ZONE = "Asia/Tokyo"
    staff_user("viewer", username="hanako")
    with travel(NOW, tick=True):
        seed()
        for _ in range(3):
            delivery(NOW)
        delivery(NOW, valid=False)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        page.fill("#id_username", "hanako")
        page.fill("#id_password", "pw")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

        expect(page.locator("#site-name")).to_have_text("Kanri")
        expect(page.locator("#user-tools")).to_contain_text("個人設定")
        expect(page.locator("#user-tools")).not_to_contain_text("サイトを表示")
        expect(page.locator("#kanri-runs h2")).to_have_text("過去14日間の実行")
        expect(page.locator("#kanri-runs svg.kanri-chart")).to_be_visible()
        expect(page.locator("#kanri-money")).to_contain_text(f"USD: {format_money(152550, 'usd')}")
        expect(page.locator("#kanri-failing tbody tr")).to_have_count(2)
        expect(page.locator("#kanri-failing")).to_contain_text("card_declined")
        expect(page.locator("#kanri-webhooks")).to_contain_text("署名エラー")
        assert page.locator("#kanri-dashboard svg.kanri-chart").count() == 4
        page.screenshot(path=str(screenshots / "dashboard-ja.png"), full_page=True)
    assert errors == []


def test_a_japanese_editor_reads_the_editor_and_a_preview_in_japanese(
    page, live_server, settings, screenshots
):
    settings.TIME_ZONE = "Asia/Tokyo"
    staff_user("editor", username="taro")
    workflow = create_workflow(tag_vip_customers(team="ops@example.test"))
    sent = event("payment_intent.succeeded", payment_intent_dict(250000, "usd"))
    stored_event(sent)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "taro")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/automations/workflow/{workflow.pk}/change/")

    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("input[name=_continue]")).to_have_value("保存して編集を続ける")
    expect(page.locator("#content")).to_contain_text("トリガー")
    page.screenshot(path=str(screenshots / "editor-ja.png"), full_page=True)

    page.goto(
        f"{live_server.url}/admin/automations/workflow/{workflow.pk}/preview/?event={sent['id']}"
    )
    expect(page.locator("#kanri-preview-verdict")).to_have_text(
        "条件に一致します: 実行が始まります。"
    )
    expect(page.locator("#content")).to_contain_text(format_money(250000, "usd"))
    page.screenshot(path=str(screenshots / "preview-ja.png"), full_page=True)
    assert errors == []
