"""An editor builds scenario A2 in the admin with a real browser, previews it on a stored
event, activates it, and sees the run a signed webhook starts."""

import re

import pytest
from playwright.sync_api import expect

from automations.models import Run, Workflow
from integrations.stripe_events import post_event
from tests.admin_helpers import staff_user
from tests.builders import create_customer, create_payment_intent, event, stored_event
from tests.conftest import WEBHOOK_SECRET

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def add_condition(page, index, field, operator, value, currency, scope=""):
    page.locator("#conditions-group a.addlink").click()
    row = f"conditions-{index}"
    page.select_option(f'select[name="{row}-scope"]', scope)
    page.select_option(f'select[name="{row}-field"]', field)
    page.select_option(f'select[name="{row}-operator"]', operator)
    page.fill(f'input[name="{row}-value_text"]', value)
    page.select_option(f'select[name="{row}-currency"]', currency)


def add_step(page, index, name, kind):
    page.locator("#steps-group a.addlink").click()
    page.fill(f'input[name="steps-{index}-name"]', name)
    page.select_option(f'select[name="steps-{index}-kind"]', kind)


def insert_reference(page, target, reference):
    page.select_option(f'select.kanri-insert-reference[data-target="{target}"]', reference)


def test_an_editor_builds_a2_previews_activates_and_sees_its_run(
    page, live_server, stripe_account, fake_stripe, smtp_server, screenshots
):
    staff_user("editor")
    customer = create_customer(email="vip@example.test")
    intent = create_payment_intent(amount=250000, currency="usd", customer=customer["id"])
    stored = event("payment_intent.succeeded", intent)
    stored_event(stored)
    log_in(page, live_server, "editor")

    # An empty workflow on the trigger.
    page.goto(f"{live_server.url}/admin/automations/workflow/add/")
    page.fill("#id_name", "Tag VIP customers")
    page.select_option("#id_trigger", "stripe_event:payment_intent.succeeded")
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    # Conditions, steps and a branch, as staff would enter them.
    add_condition(page, 0, "trigger.data.object.amount", "gt", "1,000", "usd")
    add_step(page, 0, "notify_team", "email.send")
    expect(page.locator('input[name="steps-0-email_send__to"]')).to_be_visible()
    expect(page.locator('input[name="steps-0-slack_post_message__channel"]')).to_be_hidden()
    page.select_option('select[name="steps-0-email_send__recipient"]', "team")
    page.fill('input[name="steps-0-email_send__to"]', "ops@example.test")
    page.fill('input[name="steps-0-email_send__subject"]', "Large order ")
    insert_reference(page, "steps-0-email_send__subject", "{{trigger.data.object.id}}")
    page.fill('textarea[name="steps-0-email_send__body"]', "Customer ")
    insert_reference(page, "steps-0-email_send__body", "{{trigger.data.object.customer}}")
    page.locator('textarea[name="steps-0-email_send__body"]').press("End")
    page.locator('textarea[name="steps-0-email_send__body"]').type(" paid ")
    insert_reference(page, "steps-0-email_send__body", "{{trigger.data.object.amount | money}}")
    add_step(page, 1, "is_vip", "branch")
    add_step(page, 2, "tag_vip", "stripe.update_customer_metadata")
    page.select_option('select[name="steps-2-placement"]', "is_vip:then")
    page.fill('input[name="steps-2-stripe_update_customer_metadata__customer"]', "")
    insert_reference(
        page,
        "steps-2-stripe_update_customer_metadata__customer",
        "{{trigger.data.object.customer}}",
    )
    page.fill(
        'textarea[name="steps-2-stripe_update_customer_metadata__metadata"]', '{"Tier": "VIP"}'
    )
    add_condition(page, 1, "trigger.data.object.amount", "gt", "2,000", "usd", scope="is_vip")
    page.click('input[name="_continue"]')
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator('input[name="conditions-0-value_text"]')).to_have_value("1,000.00")
    page.screenshot(path=str(screenshots / "editor-a2.png"), full_page=True)

    workflow = Workflow.objects.get()
    assert workflow.steps.get(name="tag_vip").parent.name == "is_vip"
    assert workflow.steps.get(name="notify_team").config["subject"] == (
        "Large order {{trigger.data.object.id}}"
    )

    # Preview on the stored event: nothing is sent.
    page.get_by_role("link", name="Preview on a stored event").click()
    expect(page.locator("#kanri-preview-verdict")).to_have_text(
        "The conditions match: a run would start."
    )
    expect(page.locator('[data-step="is_vip"]')).to_contain_text("takes “If”")
    expect(page.locator('[data-step="notify_team"]')).to_contain_text(
        f"Customer {customer['id']} paid $2,500.00"
    )
    page.screenshot(path=str(screenshots / "preview-a2.png"), full_page=True)
    assert smtp_server.messages == []

    # Activate, then a signed webhook starts a run.
    page.goto(f"{live_server.url}/admin/automations/workflow/{workflow.pk}/change/")
    page.get_by_role("link", name="Activate…").click()
    page.click("#kanri-confirm-activate")
    expect(page.locator(".messagelist")).to_contain_text("is active (version 1)")

    status, _ = post_event(
        f"{live_server.url}/stripe/webhook/{stripe_account.djstripe_uuid}/",
        event("payment_intent.succeeded", intent),
        WEBHOOK_SECRET,
    )
    assert status == 200

    page.goto(f"{live_server.url}/admin/automations/run/")
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("Tag VIP customers")
    expect(row).to_contain_text("Succeeded")
    row.locator("th a, td a").first.click()
    expect(page.locator("#kanri-run-steps")).to_contain_text("tag_vip")
    expect(page.locator("#kanri-run-steps")).to_contain_text("Succeeded")
    page.screenshot(path=str(screenshots / "run-a2.png"), full_page=True)
    run = Run.objects.get()
    assert [s.step_name for s in run.steps.order_by("pk")] == ["notify_team", "is_vip", "tag_vip"]
    assert [m["Subject"] for _, _, m in smtp_server.messages] == [f"Large order {intent['id']}"]
    assert re.search(r"paid \$2,500\.00", smtp_server.messages[0][2].get_content())


def test_a_validation_error_shows_next_to_the_field_in_the_browser(page, live_server, screenshots):
    staff_user("editor")
    log_in(page, live_server, "editor")
    page.goto(f"{live_server.url}/admin/automations/workflow/add/")
    page.fill("#id_name", "Refund small charges")
    page.select_option("#id_trigger", "stripe_event:charge.succeeded")
    add_step(page, 0, "refund", "stripe.create_refund")
    page.fill('input[name="steps-0-stripe_create_refund__charge"]', "{{trigger.data.object.id}}")
    page.click('input[name="_continue"]')

    error = page.locator(".field-stripe_create_refund__amount .errorlist")
    expect(error).to_have_text("This field is required.")
    page.screenshot(path=str(screenshots / "editor-error.png"), full_page=True)
    assert not Workflow.objects.exists()
