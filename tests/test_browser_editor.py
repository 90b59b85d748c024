"""Editor bugs found when tried as an ops user would, each driven in Chromium as a person
does: the preview's chosen event, the reference picker in amounts, saving A3 twice,
branch outputs, and "Run workflow on selected…" on a Stripe list."""

import pytest
from djstripe.models import Charge
from playwright.sync_api import expect

from automations import templates, workflows
from automations.models import Run, Workflow
from integrations.stripe_client import get_client
from integrations.stripe_events import as_dict
from tests.admin_helpers import staff_user
from tests.builders import (
    create_payment_intent,
    create_workflow,
    event,
    payment_intent_dict,
    stored_event,
)
from tests.test_browser import add_step, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_preview_uses_the_event_chosen_in_the_menu(page, live_server, screenshots):
    staff_user("editor")
    workflow = create_workflow(templates.personalise_large_orders(team="ops@example.test"))
    older = stored_event(
        event("payment_intent.succeeded", payment_intent_dict(150000, "usd"), created=1)
    )
    stored_event(event("payment_intent.succeeded", payment_intent_dict(500, "usd"), created=2))
    log_in(page, live_server, "editor")

    page.goto(f"{live_server.url}/admin/automations/workflow/{workflow.pk}/preview/")
    page.select_option("#id_event", older.id)
    page.click("input[type=submit][value=Preview]")

    expect(page.locator("h2").first).to_contain_text(older.id)
    expect(page.locator("#kanri-preview-verdict")).to_have_text(
        "The conditions match: a run would start."
    )
    page.screenshot(path=str(screenshots / "preview-chosen-event.png"), full_page=True)


def test_the_picker_offers_a_raw_amount_for_a_refund_and_it_saves(page, live_server):
    staff_user("editor")
    log_in(page, live_server, "editor")
    page.goto(f"{live_server.url}/admin/automations/workflow/add/")
    page.fill("#id_name", "Refund small charges")
    page.select_option("#id_trigger", "stripe_event:radar.early_fraud_warning.created")
    add_step(page, 0, "charge", "stripe.retrieve_charge")
    add_step(page, 1, "refund", "stripe.create_refund")
    page.fill('input[name="steps-1-stripe_create_refund__charge"]', "{{steps.charge.id}}")
    amount = page.locator(
        'select.kanri-insert-reference[data-target="steps-1-stripe_create_refund__amount"]'
    )
    expect(amount.locator("option[value='{{steps.charge.amount}}']")).to_have_count(1)
    expect(amount.locator("option[value*='| money']")).to_have_count(0)
    expect(amount.locator("option[value='{{steps.charge.description}}']")).to_have_count(0)

    amount.select_option("{{steps.charge.amount}}")
    page.fill('input[name="steps-1-stripe_create_refund__currency"]', "{{steps.charge.currency}}")
    page.click('input[name="_continue"]')
    # A refund moves money: the page asks for its caps before saving anything.
    expect(page.locator(".field-per_run .errorlist")).to_contain_text("set a cap per run")
    assert not Workflow.objects.exists()
    page.fill("#id_per_run", "15 USD")
    page.fill("#id_per_day", "300 USD")
    page.click('input[name="_continue"]')

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    workflow = Workflow.objects.get()
    refund = workflow.steps.get(name="refund")
    assert refund.config["amount"] == "{{steps.charge.amount}}"
    assert workflow.limits == {"per_run": {"usd": 1500}, "per_day": {"usd": 30000}}


def test_a3_can_be_saved_twice_and_a_cleared_field_stays_clear(page, live_server):
    staff_user("editor")
    workflow = create_workflow(templates.refund_early_fraud_warnings(team="ops@example.test"))
    log_in(page, live_server, "editor")
    url = f"{live_server.url}/admin/automations/workflow/{workflow.pk}/change/"

    for _ in range(2):
        page.goto(url)
        page.click('input[name="_continue"]')
        expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
        expect(page.locator(".errorlist")).to_have_count(0)

    email = page.locator('input[name="steps-3-email_send__customer"]')  # ask_team
    expect(email).to_have_value("")
    assert workflows.draft(Workflow.objects.get()) == workflows.draft(workflow)


def test_steps_inside_a_branch_arm_are_not_offered_after_the_branch(page, live_server):
    staff_user("editor")
    workflow = create_workflow(templates.refund_early_fraud_warnings(team="ops@example.test"))
    log_in(page, live_server, "editor")
    page.goto(f"{live_server.url}/admin/automations/workflow/{workflow.pk}/change/")

    add_step(page, 4, "tell", "slack.post_message")
    helper = page.locator(
        'select.kanri-insert-reference[data-target="steps-4-slack_post_message__text"]'
    )
    expect(helper.locator("option[value='{{steps.charge.id}}']")).to_have_count(1)
    expect(helper.locator("option[value='{{steps.refund.id}}']")).to_have_count(0)
    inside = page.locator('select.kanri-insert-reference[data-target="steps-3-email_send__body"]')
    expect(inside.locator("option[value='{{steps.refund.id}}']")).to_have_count(0)
    expect(inside.locator("option[value='{{steps.charge.amount | money}}']")).to_have_count(1)


def test_an_editor_runs_a_workflow_on_three_selected_charges_once(
    page, live_server, stripe_account, fake_stripe, fake_slack, screenshots
):
    staff_user("editor")
    create_workflow(
        {
            "name": "Thank customers",
            "trigger": {"kind": "manual", "object": "charge"},
            "conditions": [],
            "steps": [
                {
                    "name": "tell",
                    "kind": "slack.post_message",
                    "config": {"channel": "C0OPS", "text": "Thanks {{trigger.data.object.id}}"},
                }
            ],
        },
        status="active",
    )
    charges = []
    for amount in (1500, 2500, 3500, 4500):
        intent = create_payment_intent(amount=amount, currency="usd")
        data = as_dict(get_client().v1.charges.retrieve(intent["latest_charge"]))
        charges.append(Charge.sync_from_stripe_data(data))
    log_in(page, live_server, "editor")

    page.goto(f"{live_server.url}/admin/djstripe/charge/")
    for charge in charges[:3]:
        page.check(f'input[name="_selected_action"][value="{charge.pk}"]')
    page.select_option('select[name="action"]', "run_workflow_on_selected")
    page.click('button[name="index"]')

    expect(page.locator("#kanri-confirm-rows li")).to_have_count(3)
    expect(page.locator(".kanri-rehearsal")).to_have_count(3)
    expect(page.locator(".kanri-rehearsal").first).to_contain_text("Thanks ch_")
    page.screenshot(path=str(screenshots / "run-on-selected.png"), full_page=True)
    assert fake_slack.messages() == []
    # A double submit: the page's own form, as built, posted twice before it navigates.
    page.evaluate(
        """async () => {
            const form = document.getElementById("kanri-confirm-form");
            for (const _ of [1, 2]) {
                await fetch(location.href, {method: "POST", body: new FormData(form)});
            }
        }"""
    )
    assert Run.objects.count() == 3
    page.click("#kanri-confirm")  # and the person's click on it, a third time
    expect(page.locator(".messagelist")).to_contain_text("Started 0 run(s)")

    assert Run.objects.count() == 3
    assert len(fake_slack.messages()) == 3
    assert {r.started_by.username for r in Run.objects.all()} == {"editor"}
