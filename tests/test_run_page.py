"""The run page as ops staff read it: a timeline in the version's order with durations,
the branch taken and why, the email as an email and the Slack post as a Slack message,
pretty JSON with money beside amounts, and waiting to retry apart from working."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.admin.readable import json_lines
from automations.admin.run_page import duration_text, slack_text
from automations.engine.conditions import matches
from automations.engine.context import build_context
from automations.models import Run, RunStep, Workflow
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow, event, payment_intent_dict

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)

EMAIL = {
    "from": "kanri@example.test",
    "to": ["ops@example.test"],
    "subject": "Large order pi_1: add a hand-written note",
    "body": "A customer just paid $2,500.00.\n\nPlease add a note.",
    "rows": [{"label": "Amount", "value": "$2,500.00"}],
    "headers": {"X-Kanri-Step": "kanri-1-1-notify_team"},
}


@pytest.fixture
def vip_run(db):
    """A2 on a 2,500 USD payment: the email failed once and went through 30 s later, the
    branch took "If" and the customer was tagged."""
    workflow = create_workflow(tag_vip_customers("ops@example.test"), status="active")
    data = event("payment_intent.succeeded", payment_intent_dict(250000, "usd", customer="cus_1"))
    run = Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key=data["id"],
        event_type="payment_intent.succeeded",
        trigger_data=data,
        status=Run.Status.SUCCEEDED,
        attempt=2,
        created_at=T0 - timedelta(seconds=2),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=33),
    )
    step = {"run": run, "kind": "email.send", "step_name": "notify_team", "input": EMAIL}
    RunStep.objects.create(
        **step,
        attempt=1,
        status=RunStep.Status.RETRYING,
        error="SMTP server unreachable: timed out",
        started_at=T0,
        finished_at=T0 + timedelta(milliseconds=1500),
        duration_ms=1500,
    )
    RunStep.objects.create(
        **step,
        attempt=2,
        status=RunStep.Status.SUCCEEDED,
        output={"to": ["ops@example.test"], "subject": EMAIL["subject"]},
        started_at=T0 + timedelta(milliseconds=31500),
        finished_at=T0 + timedelta(milliseconds=31750),
        duration_ms=250,
    )
    branch = workflow.active_version.definition["steps"][1]
    context = build_context(data, workflow={"id": workflow.pk, "name": ""}, run={"id": run.pk})
    _matched, explanation = matches(branch["conditions"], context)
    RunStep.objects.create(
        run=run,
        step_name="is_vip",
        kind="branch",
        status=RunStep.Status.SUCCEEDED,
        input={"conditions": branch["conditions"]},
        output={"arm": "then", "conditions": explanation},
        started_at=T0 + timedelta(milliseconds=31800),
        finished_at=T0 + timedelta(milliseconds=31800),
    )
    RunStep.objects.create(
        run=run,
        step_name="tag_vip",
        kind="stripe.update_customer_metadata",
        status=RunStep.Status.SUCCEEDED,
        input={"customer": "cus_1", "metadata": {"Tier": "VIP"}},
        output={"id": "cus_1", "metadata": {"Tier": "VIP"}},
        started_at=T0 + timedelta(milliseconds=31900),
        finished_at=T0 + timedelta(milliseconds=32300),
        duration_ms=400,
    )
    return run


def test_the_timeline_follows_the_version_with_the_branch_taken_and_why(client, vip_run):
    client.force_login(staff_user("viewer"))

    response = client.get(f"/admin/automations/run/{vip_run.pk}/change/")

    timeline = response.context["timeline"]
    notify, branch = timeline["steps"]
    assert (notify["name"], notify["status"], notify["worked"], notify["waited"]) == (
        "notify_team",
        "succeeded",
        "1.8 s",
        "30.0 s",
    )
    assert [a["status"] for a in notify["attempts"]] == ["retrying", "succeeded"]
    assert branch["arm"] == "then"
    assert [(arm["label"], arm["taken"]) for arm in branch["arms"]] == [
        ("If", True),
        ("All other cases", False),
    ]
    [tag] = branch["arms"][0]["steps"]
    assert (tag["name"], tag["ran"], tag["worked"]) == ("tag_vip", True, "400 ms")
    [condition] = branch["conditions"]
    assert (condition["field"], condition["actual"], condition["matched"]) == (
        "trigger.data.object.amount",
        "$2,500.00",
        True,
    )
    # Time working is apart from time waiting for the retry, and from the queue.
    assert (timeline["worked"], timeline["waited"], timeline["queued"]) == (
        "2.1 s",
        "30.0 s",
        "2.0 s",
    )
    html = response.content.decode()
    assert "The conditions hold: it took “If”." in html
    assert "waited 30.0 s to retry" in html
    assert "$2,500.00" in html and "$2,000.00" in html


def test_the_email_shows_as_an_email_with_its_label_and_value_rows(client, vip_run):
    client.force_login(staff_user("viewer"))

    html = client.get(f"/admin/automations/run/{vip_run.pk}/change/").content.decode()

    assert "<dt>From</dt><dd>kanri@example.test</dd>" in html
    assert "<dt>To</dt><dd>ops@example.test</dd>" in html
    assert '<dd class="kanri-email-subject">Large order pi_1: add a hand-written note</dd>' in html
    assert "A customer just paid $2,500.00.<br><br>Please add a note." in html
    assert '<tr><th scope="row">Amount</th><td>$2,500.00</td></tr>' in html


def test_json_is_pretty_printed_json_with_money_beside_amounts(client, vip_run):
    client.force_login(staff_user("viewer"))

    html = client.get(f"/admin/automations/run/{vip_run.pk}/change/").content.decode()

    assert "OrderedDict" not in html
    assert "{&#x27;" not in html  # no Python dict repr
    assert "  &quot;metadata&quot;: {\n    &quot;Tier&quot;: &quot;VIP&quot;\n  }" in html
    assert (
        '&quot;amount&quot;: 250000, <span class="kanri-money-note" title="As money">$2,500.00'
        in html
    )


def test_json_lines_note_money_only_beside_a_currency():
    assert json_lines({"amount": 1500, "currency": "jpy", "n": [1, {}]}) == [
        {"text": "{", "note": ""},
        {"text": '  "amount": 1500,', "note": "¥1,500"},
        {"text": '  "currency": "jpy",', "note": ""},
        {"text": '  "n": [', "note": ""},
        {"text": "    1,", "note": ""},
        {"text": "    {}", "note": ""},
        {"text": "  ]", "note": ""},
        {"text": "}", "note": ""},
    ]
    assert json_lines({"amount": 1500}) == [
        {"text": "{", "note": ""},
        {"text": '  "amount": 1500', "note": ""},
        {"text": "}", "note": ""},
    ]


def test_a_slack_post_shows_as_a_slack_message(client, db):
    workflow = create_workflow(
        {
            "name": "Cancelled",
            "trigger": {"kind": "stripe_event", "event_type": "customer.subscription.deleted"},
            "conditions": [],
            "steps": [
                {
                    "name": "tell_ops",
                    "kind": "slack.post_message",
                    "config": {"channel": "#ops", "text": "Cancelled"},
                }
            ],
        },
        status=Workflow.Status.ACTIVE,
    )
    run = Run.objects.create(
        workflow=workflow, version=workflow.active_version, trigger_key="evt_1", trigger_data={}
    )
    RunStep.objects.create(
        run=run,
        step_name="tell_ops",
        kind="slack.post_message",
        status=RunStep.Status.SUCCEEDED,
        input={"channel": "#ops", "text": "<!here> Taro &amp; Hana &lt;VIP&gt; cancelled"},
        output={"channel": "C1", "ts": "1.2"},
        started_at=T0,
        finished_at=T0,
    )
    client.force_login(staff_user("viewer"))

    html = client.get(f"/admin/automations/run/{run.pk}/change/").content.decode()

    assert '<div class="kanri-slack-channel">#ops</div>' in html
    assert '<div class="kanri-slack-text">@here Taro &amp; Hana &lt;VIP&gt; cancelled</div>' in html


def test_a_step_not_reached_and_an_arm_not_taken_say_so(client, db):
    workflow = create_workflow(tag_vip_customers(), status="active")
    run = Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key="evt_2",
        trigger_data={},
        status=Run.Status.FAILED,
    )
    RunStep.objects.create(
        run=run,
        step_name="notify_team",
        kind="email.send",
        status=RunStep.Status.FAILED,
        error="SMTP 554: rejected",
        input={"to": ["ops@example.test"]},
        started_at=T0,
        finished_at=T0,
    )
    client.force_login(staff_user("viewer"))

    response = client.get(f"/admin/automations/run/{run.pk}/change/")

    notify, branch = response.context["timeline"]["steps"]
    assert (notify["status"], branch["ran"], branch["taken"]) == ("failed", False, True)
    assert "not reached" in response.content.decode()


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0 ms"),
        (250, "250 ms"),
        (1500, "1.5 s"),
        (125000, "2 min 5 s"),
        (4_200_000, "1 h 10 min"),
    ],
)
def test_durations_read_as_people_say_them(ms, text):
    assert duration_text(ms) == text


def test_slack_escapes_and_mentions_read_as_slack_shows_them():
    assert slack_text("<!channel> <@U123> <https://x.test|the run> a &amp; b") == (
        "@channel @U123 the run a & b"
    )


def test_a_preview_shows_the_email_as_an_email_and_amounts_as_money(client, db):
    from tests.builders import stored_event

    client.force_login(staff_user("editor"))
    workflow = create_workflow(tag_vip_customers(team="ops@example.test"))
    stored_event(
        event("payment_intent.succeeded", payment_intent_dict(250000, "usd", customer="cus_vip"))
    )

    response = client.get(f"/admin/automations/workflow/{workflow.pk}/preview/")

    [condition] = response.context["result"]["conditions"]
    assert (condition["actual"], condition["test"]) == ("$2,500.00", "is greater than $1,000.00")
    html = response.content.decode()
    assert '<dd class="kanri-email-subject">Large order ' in html
    assert "A customer just paid $2,500.00.<br><br>" in html
    assert "{&#x27;" not in html
    assert "&quot;Tier&quot;: &quot;VIP&quot;" in html
