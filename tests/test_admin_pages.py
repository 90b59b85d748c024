"""Preview, activation, history, runs and the inventory, and who may do what."""

import pytest
from django.contrib.admin.models import LogEntry

from automations.models import Run, RunStep, Workflow
from automations.templates import refund_early_fraud_warnings, tag_vip_customers
from automations.workflows import activate
from automations.workflows import draft as snapshot
from tests.admin_helpers import staff_user
from tests.builders import (
    create_payment_intent,
    create_workflow,
    early_fraud_warning,
    event,
    payment_intent_dict,
    stored_event,
)

WF = "/admin/automations/workflow"


def login(client, role):
    user = staff_user(role)
    client.force_login(user)
    return user


# ---------------------------------------------------------------- preview


def test_preview_shows_the_branch_taken_and_the_exact_request_without_sending(
    client, db, smtp_server, fake_stripe
):
    login(client, "editor")
    workflow = create_workflow(tag_vip_customers(team="ops@example.test"))
    sent = event("payment_intent.succeeded", payment_intent_dict(250000, "usd", customer="cus_vip"))
    stored_event(sent)

    response = client.get(f"{WF}/{workflow.pk}/preview/")

    result = response.context["result"]
    assert result["matched"] is True
    assert [(s["name"], s.get("arm")) for s in result["steps"]] == [
        ("notify_team", None),
        ("is_vip", "then"),
        ("tag_vip", None),
    ]
    email, _, tag = result["steps"]
    assert email["request"]["to"] == ["ops@example.test"]
    assert email["request"]["body"].startswith("A customer just paid $2,500.00.")
    assert tag["request"] == {
        "method": "post",
        "path": "/v1/customers/cus_vip",
        "params": {
            "metadata": {"Tier": "VIP", "kanri_run": "", "kanri_step": "kanri-preview-tag_vip"}
        },
        "idempotency_key": "kanri-preview-tag_vip",
    }
    assert (email["sent"], tag["sent"]) == (False, False)
    assert smtp_server.messages == []
    assert fake_stripe.requests() == []
    assert not Run.objects.exists()
    assert "The conditions match: a run would start." in response.content.decode()


def test_preview_reads_from_stripe_when_a_step_only_reads(client, db, fake_stripe):
    login(client, "editor")
    workflow = create_workflow(refund_early_fraud_warnings())
    intent = create_payment_intent(amount=1000, currency="usd")
    warning = early_fraud_warning(intent["latest_charge"], intent["id"])
    fake_stripe.seed(warning)
    stored = stored_event(event("radar.early_fraud_warning.created", warning))

    result = client.get(f"{WF}/{workflow.pk}/preview/?event={stored.id}").context["result"]

    charge, branch, refund = result["steps"]
    assert (charge["sent"], charge["output"]["amount"]) == (True, 1000)
    assert branch["arm"] == "then"
    assert refund["request"]["params"]["amount"] == 1000
    assert refund["sent"] is False
    assert fake_stripe.requests(path="/v1/refunds") == []


def test_preview_says_when_the_conditions_do_not_match(client, db):
    login(client, "editor")
    workflow = create_workflow(tag_vip_customers())
    stored = stored_event(event("payment_intent.succeeded", payment_intent_dict(150000, "eur")))

    result = client.get(f"{WF}/{workflow.pk}/preview/?event={stored.id}").context["result"]

    assert (result["matched"], result["steps"]) == (False, [])
    assert result["conditions"][0]["reason"] == "currency_mismatch"
    assert result["conditions"][0]["why"] == "currency is eur, not usd"


# ---------------------------------------------------------------- activation and roles


@pytest.mark.parametrize(
    ("role", "template", "allowed"),
    [
        ("viewer", tag_vip_customers, False),
        ("editor", tag_vip_customers, True),
        ("editor", refund_early_fraud_warnings, False),  # it moves money
        ("approver", refund_early_fraud_warnings, True),
        (None, tag_vip_customers, False),
    ],
)
def test_who_may_activate_what(client, db, role, template, allowed):
    login(client, role)
    workflow = create_workflow(template())

    response = client.post(f"{WF}/{workflow.pk}/activate/")

    workflow.refresh_from_db()
    assert (response.status_code, workflow.status == Workflow.Status.ACTIVE) == (
        (302, True) if allowed else (403, False)
    )


def test_activation_asks_first_showing_the_changes_and_logs_who_did_it(client, db):
    user = login(client, "editor")
    workflow = create_workflow(tag_vip_customers())

    page = client.get(f"{WF}/{workflow.pk}/activate/")
    assert page.status_code == 200
    assert '+  "name": "Tag VIP customers",' in page.context["diff"]
    assert Workflow.objects.get().status == Workflow.Status.DRAFT

    client.post(f"{WF}/{workflow.pk}/activate/")
    workflow.refresh_from_db()
    assert (workflow.status, workflow.active_version.number) == (Workflow.Status.ACTIVE, 1)
    assert workflow.active_version.created_by == user
    assert LogEntry.objects.get().get_change_message() == "Activated version 1."


def test_history_shows_each_version_with_what_changed_and_can_restore_one(client, db):
    login(client, "editor")
    workflow = create_workflow(tag_vip_customers())
    activate(workflow)
    first = snapshot(workflow)
    workflow.steps.filter(name="tag_vip").update(
        config={"customer": "{{trigger.data.object.customer}}", "metadata": {"Tier": "Gold"}}
    )
    activate(workflow)

    page = client.get(f"{WF}/{workflow.pk}/versions/")
    versions = page.context["versions"]
    assert [v["number"] for v in versions] == [2, 1]
    assert '-              "Tier": "VIP"' in versions[0]["diff"]
    assert '+              "Tier": "Gold"' in versions[0]["diff"]

    client.post(f"{WF}/{workflow.pk}/restore/1/")
    assert snapshot(workflow) == first
    workflow.refresh_from_db()
    assert workflow.active_version.number == 2  # restoring edits the draft only


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            "viewer",
            {
                "runs": 200,
                "run": 200,
                "inventory": 200,
                "workflow": 200,
                "preview": 403,
                "edit": 403,
            },
        ),
        (
            "editor",
            {
                "runs": 200,
                "run": 200,
                "inventory": 200,
                "workflow": 200,
                "preview": 200,
                "edit": 302,
            },
        ),
        (
            None,
            {
                "runs": 403,
                "run": 403,
                "inventory": 403,
                "workflow": 403,
                "preview": 403,
                "edit": 403,
            },
        ),
    ],
)
def test_the_permission_matrix(client, db, role, expected, stripe_account):
    login(client, role)
    workflow = create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)
    run = Run.objects.create(
        workflow=workflow, version=workflow.active_version, trigger_key="evt_1", trigger_data={}
    )
    from tests.admin_helpers import workflow_form

    seen = {
        "runs": client.get("/admin/automations/run/").status_code,
        "run": client.get(f"/admin/automations/run/{run.pk}/change/").status_code,
        "inventory": client.get(f"{WF}/inventory/").status_code,
        "workflow": client.get(f"{WF}/{workflow.pk}/change/").status_code,
        "preview": client.get(f"{WF}/{workflow.pk}/preview/").status_code,
        "edit": client.post(f"{WF}/add/", workflow_form("New")).status_code,
    }
    assert seen == expected


# ---------------------------------------------------------------- runs


@pytest.fixture
def failed_run(db):
    workflow = create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)
    run = Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key="evt_failed",
        event_type="payment_intent.succeeded",
        status=Run.Status.FAILED,
        attempt=1,  # a worker took it once: that attempt wrote the step below
        error="Step 'notify_team' failed: SMTP 554: rejected",
        trigger_data=event("payment_intent.succeeded", payment_intent_dict(150000, "usd")),
    )
    from django.utils import timezone

    now = timezone.now()
    RunStep.objects.create(
        run=run,
        step_name="notify_team",
        kind="email.send",
        attempt=1,
        status="failed",
        input={"to": ["ops@example.test"]},
        error="SMTP 554: rejected",
        started_at=now,
        finished_at=now,
        duration_ms=12,
        idempotency_key="kanri-1-1-notify_team",
    )
    return run


def test_the_run_page_shows_each_step_with_what_was_sent_and_what_failed(client, failed_run):
    login(client, "viewer")

    response = client.get(f"/admin/automations/run/{failed_run.pk}/change/")

    assert response.context["steps"] == [
        {
            "name": "notify_team",
            "kind": "email.send",
            "attempt": 1,
            "status": "failed",
            "status_label": "Failed",
            "input": {"to": ["ops@example.test"]},
            "output": None,
            "error": "SMTP 554: rejected",
            "idempotency_key": "kanri-1-1-notify_team",
            "started_at": failed_run.steps.get().started_at,
            "duration_ms": 12,
            "decision": "",
            "decided_by": "",
            "undecided": False,
        }
    ]
    assert "Step &#x27;notify_team&#x27; failed: SMTP 554: rejected" in response.content.decode()


def test_retrying_failed_runs_asks_first_then_queues_them(
    client, failed_run, smtp_server, django_capture_on_commit_callbacks
):
    login(client, "editor")
    data = {"action": "retry_runs", "_selected_action": [failed_run.pk]}

    confirm = client.post("/admin/automations/run/", data)
    assert confirm.status_code == 200
    assert [r["label"] for r in confirm.context["rows"]] == [
        f"Run {failed_run.pk}: {failed_run.workflow.name} for evt_failed"
    ]
    failed_run.refresh_from_db()
    assert failed_run.status == Run.Status.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/automations/run/", {**data, "post": "yes"})

    failed_run.refresh_from_db()
    assert (failed_run.status, failed_run.error) == (Run.Status.SUCCEEDED, "")
    assert list(failed_run.steps.values_list("attempt", "status")) == [
        (1, "failed"),
        (2, "succeeded"),
        (1, "succeeded"),
    ]
    assert len(smtp_server.messages) == 1


def test_a_viewer_cannot_retry_or_cancel(client, failed_run):
    login(client, "viewer")

    response = client.get("/admin/automations/run/")

    assert "retry_runs" not in response.content.decode()
    client.post(
        "/admin/automations/run/",
        {"action": "retry_runs", "post": "yes", "_selected_action": [failed_run.pk]},
    )
    failed_run.refresh_from_db()
    assert failed_run.status == Run.Status.FAILED


def test_cancelling_stops_only_waiting_runs(client, failed_run):
    login(client, "editor")
    waiting = Run.objects.create(
        workflow=failed_run.workflow,
        version=failed_run.version,
        trigger_key="evt_wait",
        status=Run.Status.RETRYING,
        trigger_data={},
    )

    client.post(
        "/admin/automations/run/",
        {"action": "cancel_runs", "post": "yes", "_selected_action": [failed_run.pk, waiting.pk]},
    )

    assert dict(Run.objects.values_list("trigger_key", "status")) == {
        "evt_failed": "failed",
        "evt_wait": "cancelled",
    }


def test_the_run_list_filters_by_status_workflow_and_trigger(client, failed_run):
    login(client, "viewer")
    Run.objects.create(
        workflow=failed_run.workflow,
        version=failed_run.version,
        trigger_key="evt_ok",
        event_type="payment_intent.succeeded",
        status=Run.Status.SUCCEEDED,
        trigger_data={},
    )

    def listed(query):
        response = client.get(f"/admin/automations/run/?{query}")
        return sorted(r.trigger_key for r in response.context["cl"].result_list)

    assert listed("status__in=failed") == ["evt_failed"]
    assert listed("status__in=failed,succeeded") == ["evt_failed", "evt_ok"]
    assert listed(f"workflow__id__exact={failed_run.workflow_id}") == ["evt_failed", "evt_ok"]
    assert listed("event_type=payment_intent.succeeded") == ["evt_failed", "evt_ok"]


# ---------------------------------------------------------------- inventory


def test_the_inventory_says_what_automates_what(client, failed_run):
    user = login(client, "viewer")
    workflow = failed_run.workflow
    workflow.owner = user
    workflow.save()
    Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key="evt_2",
        status=Run.Status.SUCCEEDED,
        trigger_data={},
    )
    create_workflow(refund_early_fraud_warnings())

    rows = client.get(f"{WF}/inventory/").context["rows"]

    assert [
        (
            r["name"],
            r["providers"],
            r["moves_money"],
            r["status"],
            r["owner"],
            r["runs_30d"],
            r["failure_rate"],
        )
        for r in rows
    ] == [
        ("Act on Radar early fraud warnings", ["Email", "Stripe"], True, "Draft", "", 0, None),
        ("Tag VIP customers", ["Email", "Stripe"], False, "Active", "viewer", 2, 0.5),
    ]
    assert rows[1]["actions"] == ["Email: send a message", "Stripe: update customer metadata"]
    assert rows[1]["last_run_status"] == "succeeded"


def test_the_change_page_says_when_the_draft_differs_from_the_active_version(client, db):
    login(client, "editor")
    workflow = create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)
    url = f"{WF}/{workflow.pk}/change/"
    assert client.get(url).context["kanri"]["unactivated_changes"] is False

    workflow.steps.filter(name="notify_team").update(
        config={**workflow.steps.get(name="notify_team").config, "subject": "Edited"}
    )
    page = client.get(url)

    assert page.context["kanri"]["unactivated_changes"] is True
    assert "Discard them" in page.content.decode()
    client.post(f"{WF}/{workflow.pk}/restore/1/")
    assert client.get(url).context["kanri"]["unactivated_changes"] is False


def test_a_viewer_reads_the_whole_definition_but_gets_no_editor(client, db):
    login(client, "viewer")
    workflow = create_workflow(tag_vip_customers())

    page = client.get(f"{WF}/{workflow.pk}/change/")

    assert page.context["inline_admin_formsets"] == []
    body = page.content.decode()
    assert body.count("What it does (draft)") == 1
    assert "&quot;Tier&quot;: &quot;VIP&quot;" in body
    assert "Preview on a stored event" not in body


def test_deleting_a_draft_in_the_admin_goes_through_the_service(client, db):
    from django.contrib.admin.models import DELETION, LogEntry

    from automations.models import Workflow
    from automations.templates import refund_early_fraud_warnings, tag_vip_customers
    from tests.admin_helpers import staff_user
    from tests.builders import create_workflow

    draft = create_workflow(tag_vip_customers())
    money = create_workflow(refund_early_fraud_warnings())
    client.force_login(staff_user("editor"))

    done = client.post(f"/admin/automations/workflow/{draft.pk}/delete/", {"post": "yes"})
    refused = client.post(f"/admin/automations/workflow/{money.pk}/delete/", {"post": "yes"})

    assert done.status_code == 302
    assert refused.status_code == 403  # it moves money: an approver deletes it
    assert list(Workflow.objects.values_list("pk", flat=True)) == [money.pk]
    assert list(
        LogEntry.objects.filter(action_flag=DELETION).values_list("object_id", flat=True)
    ) == [str(draft.pk)]
