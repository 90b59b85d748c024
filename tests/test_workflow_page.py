"""The workflow page as ops staff read it: the steps as a tree with the "If" and "All other
cases" arms, a branch's conditions on the branch step, and email bodies built from label
and value rows as well as free text."""

import pytest

from automations import definition
from automations.models import Run, Workflow
from automations.templates import tag_vip_customers
from integrations.email_actions import email_rows, plain_text
from tests.admin_helpers import staff_user, workflow_form
from tests.builders import create_customer, create_payment_intent, create_workflow, event

WF = "/admin/automations/workflow"

ROWS = (
    "Customer: {{trigger.data.object.customer}}\n"
    "Amount: {{trigger.data.object.amount | money}}\n"
    "Payment: {{trigger.data.object.id}}"
)


def email_workflow(body="", fields=ROWS):
    return {
        "name": "Large orders, as a table",
        "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
        "conditions": [],
        "steps": [
            {
                "name": "notify_team",
                "kind": "email.send",
                "config": {
                    "recipient": "team",
                    "to": "ops@example.test",
                    "subject": "Large order {{trigger.data.object.id}}",
                    "body": body,
                    "fields": fields,
                },
            }
        ],
    }


def test_the_steps_show_as_a_tree_with_the_branch_conditions_on_the_branch(client, db):
    client.force_login(staff_user("editor"))
    workflow = create_workflow(tag_vip_customers("ops@example.test"))

    response = client.get(f"{WF}/{workflow.pk}/change/")

    tree = response.context["kanri"]["tree"]
    assert tree["trigger"] == "Payment intent succeeded"
    assert [(c["field"], c["test"]) for c in tree["conditions"]] == [
        ("trigger.data.object.amount", "is greater than $1,000.00")
    ]
    notify, branch = tree["steps"]
    assert (notify["name"], notify["summary"]) == (
        "notify_team",
        [
            ("To", "ops@example.test"),
            ("Subject", "Large order {{trigger.data.object.id}}: add a hand-written note"),
        ],
    )
    assert branch["name"] == "is_vip"
    assert [(c["label"], c["test"]) for c in branch["conditions"]] == [
        ("Amount", "is greater than $2,000.00")
    ]
    assert [(arm["label"], [s["name"] for s in arm["steps"]]) for arm in branch["arms"]] == [
        ("If", ["tag_vip"]),
        ("All other cases", []),
    ]
    html = response.content.decode()
    branch_html = html[html.index('data-step="is_vip"') :]
    # The branch's condition is drawn inside the branch, under its "If" arm.
    assert branch_html.index("If") < branch_html.index("is greater than $2,000.00")
    assert branch_html.index("is greater than $2,000.00") < branch_html.index("All other cases")


def test_a_viewer_reads_the_tree_instead_of_json(client, db):
    client.force_login(staff_user("viewer"))
    workflow = create_workflow(tag_vip_customers("ops@example.test"))

    html = client.get(f"{WF}/{workflow.pk}/change/").content.decode()

    assert 'id="kanri-tree"' in html
    assert "&quot;conditions&quot;" not in html and '"conditions":' not in html
    assert "is greater than $2,000.00" in html


def test_an_email_built_from_rows_validates_with_or_without_text(db):
    assert definition.validate(email_workflow(body="")) == []
    assert definition.validate(email_workflow(body="Hello")) == []

    [neither] = definition.validate(email_workflow(body="", fields=""))
    assert (neither.where, neither.params["message"]) == (
        "steps.0.config.body",
        "Write a text, or label and value rows, or both.",
    )
    [bad] = definition.validate(email_workflow(fields="Amount {{trigger.data.object.amount}}"))
    assert bad.where == "steps.0.config.fields"
    assert bad.params["message"] == (
        "Write each row as “Label: value”: Amount {{trigger.data.object.amount}}"
    )
    # Rows go through the one validator like any text: a misspelt field is refused.
    [typo] = definition.validate(email_workflow(fields="Amount: {{trigger.data.object.amout}}"))
    assert typo.where == "steps.0.config.fields"


def test_the_editor_saves_label_and_value_rows(client, db):
    client.force_login(staff_user("editor"))
    step = {
        "name": "notify_team",
        "kind": "email.send",
        "config": {
            "recipient": "team",
            "to": "ops@example.test",
            "subject": "Large order",
            "body": "",
            "fields": ROWS,
        },
    }

    response = client.post(f"{WF}/add/", workflow_form(steps=[step]))

    assert response.status_code == 302, response.context and response.context.get("errors")
    saved = Workflow.objects.get().steps.get(name="notify_team").config
    assert saved["fields"] == ROWS
    assert "body" not in saved


@pytest.fixture
def world(stripe_account, fake_stripe, smtp_server):
    return {"mail": smtp_server}


def test_the_rows_are_sent_as_a_table_and_as_aligned_plain_text(world, post_event):
    workflow = create_workflow(email_workflow(body="A large order came in."), status="active")
    customer = create_customer()
    intent = create_payment_intent(amount=150000, currency="usd", customer=customer["id"])

    assert post_event(event("payment_intent.succeeded", intent)).status_code == 200

    [(_sender, recipients, message)] = world["mail"].messages
    assert recipients == ["ops@example.test"]
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text.get_content() == (
        "A large order came in.\n\n"
        f"Customer: {customer['id']}\n"
        "Amount:   $1,500.00\n"
        f"Payment:  {intent['id']}\n"
    )
    assert html.get_content() == (
        "<p>A large order came in.</p><table>"
        '<tr><th align="left" style="padding:4px 16px 4px 0;color:#666;font-weight:normal">'
        f'Customer</th><td style="padding:4px 0">{customer["id"]}</td></tr>'
        '<tr><th align="left" style="padding:4px 16px 4px 0;color:#666;font-weight:normal">'
        'Amount</th><td style="padding:4px 0">$1,500.00</td></tr>'
        '<tr><th align="left" style="padding:4px 16px 4px 0;color:#666;font-weight:normal">'
        f'Payment</th><td style="padding:4px 0">{intent["id"]}</td></tr></table>'
    )
    step = Run.objects.get(workflow=workflow).steps.get()
    assert step.input["rows"] == [
        {"label": "Customer", "value": customer["id"]},
        {"label": "Amount", "value": "$1,500.00"},
        {"label": "Payment", "value": intent["id"]},
    ]


def test_rows_split_at_the_first_colon_and_skip_blank_lines():
    assert email_rows("Paid at: 10:30\n\nNote: a: b\n") == [
        {"label": "Paid at", "value": "10:30"},
        {"label": "Note", "value": "a: b"},
    ]
    assert plain_text("", [{"label": "A", "value": "1"}]) == "A: 1\n"


def test_the_version_history_and_activation_show_amounts_as_money(client, db):
    from automations import workflows

    client.force_login(staff_user("approver"))
    workflow = create_workflow(tag_vip_customers("ops@example.test"), status="active")
    changed = tag_vip_customers("ops@example.test")
    changed["conditions"][0][0]["value"] = 150000
    workflows.save_draft(workflow, changed)

    history = client.get(f"{WF}/{workflow.pk}/versions/").context["unactivated"]
    activate = client.get(f"{WF}/{workflow.pk}/activate/").context["diff"]

    for diff in (history, activate):
        assert '-        "value": "$1,000.00"' in diff
        assert '+        "value": "$1,500.00"' in diff
        assert not any("100000" in line or "150000" in line for line in diff)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_the_editor_a_branchs_conditions_sit_on_the_branch_step(page, live_server, screenshots):
    from playwright.sync_api import expect

    from automations.models import Condition
    from tests.test_browser import log_in

    staff_user("editor")
    workflow = create_workflow(tag_vip_customers("ops@example.test"))
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server, "editor")
    page.goto(f"{live_server.url}{WF}/{workflow.pk}/change/")

    branch = page.locator(
        "#steps-group .inline-related",
        has=page.locator('input[name$="-name"][value="is_vip"]'),
    )
    box = branch.locator(".kanri-branch-conditions")
    expect(box.locator("h3")).to_have_text(
        "Conditions of branch is_vip: when they hold, it takes “If”"
    )
    expect(box.locator("tr.form-row")).to_have_count(1)
    expect(box.locator('select[name$="-scope"]')).to_have_value("is_vip")
    # The trigger's condition stays with the trigger.
    expect(page.locator("#conditions-group tr.form-row:not(.empty-form)")).to_have_count(1)
    # The tree shows the branch's conditions on the branch, under "If".
    tree_branch = page.locator('#kanri-tree li[data-step="is_vip"]')
    expect(tree_branch.locator('[data-arm="then"]')).to_contain_text("is greater than $2,000.00")

    box.get_by_role("button", name="Add a condition to this branch").click()
    expect(box.locator("tr.form-row")).to_have_count(2)
    added = box.locator("tr.form-row").nth(1)
    expect(added.locator('select[name$="-scope"]')).to_have_value("is_vip")
    added.locator('select[name$="-field"]').select_option("trigger.data.object.currency")
    added.locator('select[name$="-operator"]').select_option("eq")
    added.locator('input[name$="-value_text"]').fill("usd")
    notify = page.locator(
        "#steps-group .inline-related",
        has=page.locator('input[name$="-name"][value="notify_team"]'),
    )
    notify.locator('textarea[name$="-email_send__fields"]').fill(
        "Amount: {{trigger.data.object.amount | money}}"
    )
    page.screenshot(path=str(screenshots / "editor-branch-conditions.png"), full_page=True)
    page.click('input[name="_continue"]')

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert list(
        Condition.objects.filter(step__name="is_vip").values_list("field", "operator", "value")
    ) == [
        ("trigger.data.object.amount", "gt", 200000),
        ("trigger.data.object.currency", "eq", "usd"),
    ]
    fields = workflow.steps.get(name="notify_team").config["fields"]
    assert fields == "Amount: {{trigger.data.object.amount | money}}"
    assert errors == []
