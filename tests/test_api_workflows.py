"""The workflows API: drafts, activation under the money rules, versions and diffs, dry-runs,
backtests and manual runs, for every role, and hostile bodies answered with a 400."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.core.cache import cache
from django.utils import timezone
from djstripe.models import Event
from rest_framework.test import APIClient

from automations import workflows
from automations.api.workflows import WorkflowCursor
from automations.models import Batch, Run, Workflow, WorkflowVersion
from automations.templates import refund_early_fraud_warnings, tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow, event, payment_intent_dict, stored_event
from tests.test_manual_runs import THANK_YOU, stored_charges

URL = "/api/workflows/"

TELL_OPS = {
    "name": "Tell ops about payments",
    "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
    "conditions": [
        [{"field": "trigger.data.object.amount", "op": "gte", "value": 1000, "currency": "usd"}]
    ],
    "steps": [
        {
            "name": "tell",
            "kind": "slack.post_message",
            "config": {"channel": "C0OPS", "text": "Paid {{trigger.data.object.id}}"},
        }
    ],
}


def url(workflow, action=""):
    return f"{URL}{workflow.pk}/" + (f"{action}/" if action else "")


@pytest.fixture(autouse=True)
def fresh_throttle():
    # The write throttle counts per user id in the cache, and ids come back after rollback.
    cache.clear()


@pytest.fixture
def api():
    """Return an APIClient signed in as a new user in the role (None: anonymous)."""

    def client(role=None, username=None):
        c = APIClient()
        if role:
            c.force_authenticate(staff_user(role, username))
        return c

    return client


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def put(client, path, body):
    return client.put(path, json.dumps(body), content_type="application/json")


# ------------------------------------------------------------------ reading


def test_the_list_shows_each_workflow_newest_change_first_with_its_trigger_and_money(db, api):
    owner = staff_user("editor", "hanako")
    tell = create_workflow(TELL_OPS, owner=owner, status="active")
    refund = create_workflow(refund_early_fraud_warnings())

    response = api("viewer").get(URL)

    assert response.status_code == 200
    assert response.data["previous"] is None and response.data["next"] is None
    assert [dict(r) for r in response.data["results"]] == [
        {
            "id": refund.pk,
            "name": "Act on Radar early fraud warnings",
            "status": "draft",
            "trigger": workflows.trigger_label(refund_early_fraud_warnings()["trigger"]),
            "active_version": None,
            "moves_money": True,
            "owner": None,
            "updated_at": response.data["results"][0]["updated_at"],
        },
        {
            "id": tell.pk,
            "name": "Tell ops about payments",
            "status": "active",
            "trigger": workflows.trigger_label(TELL_OPS["trigger"]),
            "active_version": 1,
            "moves_money": False,
            "owner": "hanako",
            "updated_at": response.data["results"][1]["updated_at"],
        },
    ]


def test_the_list_pages_with_a_cursor(db, api, monkeypatch):
    monkeypatch.setattr(WorkflowCursor, "page_size", 2)
    made = [create_workflow({**TELL_OPS, "name": f"W{i}"}) for i in range(3)]
    client = api("viewer")

    first = client.get(URL)
    second = client.get(first.data["next"])

    names = [r["name"] for r in first.data["results"] + second.data["results"]]
    assert sorted(names) == sorted(w.name for w in made)
    assert second.data["next"] is None


def test_the_detail_shows_the_draft_its_problems_and_unactivated_changes(db, api):
    workflow = create_workflow(TELL_OPS, status="active")
    workflow.steps.filter(name="tell").update(
        config={"channel": "C0OPS", "text": "Paid {{trigger.data.object.amout}}"}
    )

    response = api("viewer").get(url(workflow))

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("id", "name", "status", "owner", "active_version")} == {
        "id": workflow.pk,
        "name": "Tell ops about payments",
        "status": "active",
        "owner": None,
        "active_version": 1,
    }
    assert body["unactivated_changes"] is True
    assert body["definition"] == workflows.draft(workflow)
    assert body["definition"]["steps"][0]["config"]["text"] == "Paid {{trigger.data.object.amout}}"
    assert body["problems"] == [
        {
            "where": "steps.0.config.text",
            "code": "reference_field_unknown",
            "params": {
                "path": "trigger.data.object.amout",
                "source": "payment_intent.succeeded events",
            },
            "message": (
                "{{trigger.data.object.amout}} is not a field of payment_intent.succeeded events."
            ),
        }
    ]


def test_an_unknown_workflow_is_a_404(db, api):
    client = api("approver")

    assert client.get(f"{URL}999999/").status_code == 404
    assert client.get(f"{URL}99999999999999999/").status_code == 404
    assert client.get(f"{URL}abc/").status_code == 404


@pytest.mark.parametrize("role", [None, "nobody"])
def test_anonymous_callers_and_users_without_a_role_read_nothing(db, api, role):
    workflow = create_workflow(TELL_OPS)
    client = APIClient()
    if role:
        client.force_authenticate(staff_user())

    answers = [
        client.get(URL),
        client.get(url(workflow)),
        client.get(url(workflow, "versions")),
        client.get(url(workflow, "diff")),
        post(client, URL, {"definition": TELL_OPS}),
        put(client, url(workflow), {"definition": TELL_OPS}),
        client.delete(url(workflow)),
        post(client, url(workflow, "activate"), {}),
        post(client, url(workflow, "pause"), {}),
        post(client, url(workflow, "dry-run"), {"event_id": "evt_1"}),
        post(client, url(workflow, "backtest"), {"days": 7}),
        post(client, url(workflow, "run"), {"object_ids": ["ch_1"]}),
    ]

    expected = {401, 403} if role is None else {403}
    assert [a.status_code in expected for a in answers] == [True] * len(answers)
    assert Workflow.objects.count() == 1
    assert Workflow.objects.get().status == "draft"


# ------------------------------------------------------------------ drafts


def test_an_editor_creates_a_draft_they_own_and_the_change_is_logged(db, api):
    client = api("editor", "hanako")

    response = post(client, URL, {"definition": TELL_OPS})

    assert response.status_code == 201
    workflow = Workflow.objects.get()
    assert (workflow.name, workflow.status, workflow.owner.username) == (
        "Tell ops about payments",
        "draft",
        "hanako",
    )
    assert workflow.edited_by.username == "hanako"
    assert response.json()["id"] == workflow.pk
    assert response.json()["definition"] == workflows.draft(workflow)
    assert response.json()["problems"] == []
    assert LogEntry.objects.get().get_change_message() == "Created."


def test_a_draft_can_be_created_for_another_owner_by_username(db, api):
    staff_user("viewer", "taro")

    response = post(api("editor"), URL, {"definition": TELL_OPS, "owner": "taro"})
    unknown = post(api("approver"), URL, {"definition": TELL_OPS, "owner": "nobody-here"})

    assert response.status_code == 201
    assert response.json()["owner"] == "taro"
    assert unknown.status_code == 400
    assert unknown.json() == {"owner": ["There is no user with this username."]}
    assert Workflow.objects.count() == 1


def test_a_viewer_cannot_create_change_or_delete_a_draft(db, api):
    workflow = create_workflow(TELL_OPS)
    client = api("viewer")

    created = post(client, URL, {"definition": TELL_OPS})
    changed = put(client, url(workflow), {"definition": {**TELL_OPS, "name": "Renamed"}})
    deleted = client.delete(url(workflow))

    assert (created.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert list(Workflow.objects.values_list("name", flat=True)) == ["Tell ops about payments"]


def test_a_bad_definition_is_refused_with_the_problems_the_admin_shows(db, api):
    bad = tag_vip_customers()
    bad["steps"][0]["config"]["subject"] = "Paid {{trigger.data.object.amout}}"
    bad["steps"][1]["then"][0]["name"] = "Tag-VIP"

    response = post(api("editor"), URL, {"definition": bad})

    assert response.status_code == 400
    assert [(p["where"], p["code"]) for p in response.json()["problems"]] == [
        ("steps.0.config.subject", "reference_field_unknown"),
        ("steps.1.then.0.name", "step_name_invalid"),
    ]
    assert response.json()["problems"][0]["message"] == (
        "{{trigger.data.object.amout}} is not a field of payment_intent.succeeded events."
    )
    assert not Workflow.objects.exists()


@pytest.mark.parametrize(
    "definition, where, code",
    [
        ("not an object", "", "definition_invalid"),
        ([1, 2, 3], "", "definition_invalid"),
        ({**TELL_OPS, "steps": "tell"}, "steps", "steps_invalid"),
        ({**TELL_OPS, "trigger": "payment_intent.succeeded"}, "trigger", "trigger_invalid"),
        ({**TELL_OPS, "name": ""}, "name", "name_required"),
        ({**TELL_OPS, "name": {"en": "Tell"}}, "name", "name_required"),
        ({**TELL_OPS, "name": "x" * 201}, "name", "name_too_long"),
        ({**TELL_OPS, "description": ["a"]}, "description", "description_invalid"),
        ({**TELL_OPS, "trigger": {"kind": ["stripe_event"]}}, "trigger.kind", "trigger_invalid"),
        (
            {**TELL_OPS, "trigger": {"kind": "stripe_event", "event_type": {"a": 1}}},
            "trigger.event_type",
            "trigger_invalid",
        ),
        (
            {**THANK_YOU, "trigger": {"kind": "manual", "object": ["charge"]}},
            "trigger.object",
            "trigger_invalid",
        ),
        (
            {**TELL_OPS, "conditions": [[{"field": "trigger.data.object.amount", "op": {}}]]},
            "conditions.0.0.op",
            "operator_unknown",
        ),
        (
            {**TELL_OPS, "steps": [{**TELL_OPS["steps"][0], "name": {"a": 1}}]},
            "steps.0.name",
            "step_name_invalid",
        ),
        (
            {**TELL_OPS, "steps": [{**TELL_OPS["steps"][0], "kind": [1]}]},
            "steps.0.kind",
            "action_unknown",
        ),
    ],
)
def test_a_definition_of_the_wrong_type_is_located_problems(db, api, definition, where, code):
    response = post(api("editor"), URL, {"definition": definition})

    assert response.status_code == 400
    assert (where, code) in [(p["where"], p["code"]) for p in response.json()["problems"]]
    assert not Workflow.objects.exists()


def test_updating_an_active_workflow_changes_its_draft_not_its_active_version(db, api):
    workflow = create_workflow(TELL_OPS, status="active")
    changed = {**TELL_OPS, "name": "Tell ops, loudly"}
    changed["steps"] = [
        {**TELL_OPS["steps"][0], "config": {"channel": "C0OPS", "text": "PAID {{run.id}}"}}
    ]

    response = put(api("editor", "hanako"), url(workflow), {"definition": changed})

    assert response.status_code == 200
    assert response.json()["unactivated_changes"] is True
    assert response.json()["active_version"] == 1
    workflow.refresh_from_db()
    assert workflow.name == "Tell ops, loudly"
    assert workflow.edited_by.username == "hanako"
    assert workflow.status == "active"
    assert workflow.active_version.definition["steps"][0]["config"]["text"] == (
        "Paid {{trigger.data.object.id}}"
    )
    assert workflows.draft(workflow)["steps"][0]["config"]["text"] == "PAID {{run.id}}"
    assert LogEntry.objects.get().get_change_message() == "Draft saved through the API."


def test_a_bad_update_leaves_the_draft_as_it_was(db, api):
    workflow = create_workflow(TELL_OPS)
    bad = {**TELL_OPS, "steps": [{**TELL_OPS["steps"][0], "kind": "fax.send"}]}

    response = put(api("editor"), url(workflow), {"definition": bad})

    assert response.status_code == 400
    assert [(p["where"], p["code"]) for p in response.json()["problems"]] == [
        ("steps.0.kind", "action_unknown")
    ]
    assert workflows.draft(workflow)["steps"][0]["kind"] == "slack.post_message"


def test_patch_is_not_offered(db, api):
    workflow = create_workflow(TELL_OPS)

    response = api("editor").patch(url(workflow), {"definition": TELL_OPS}, format="json")

    assert response.status_code == 405


def test_an_editor_deletes_a_draft_never_activated_and_it_is_logged(db, api):
    workflow = create_workflow(TELL_OPS)

    response = api("editor", "hanako").delete(url(workflow))

    assert response.status_code == 204
    assert not Workflow.objects.exists()
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.user.username, entry.object_repr) == (
        DELETION,
        "hanako",
        "Tell ops about payments",
    )


def test_a_draft_that_moves_money_is_deleted_only_by_an_approver(db, api):
    workflow = create_workflow(refund_early_fraud_warnings())

    refused = api("editor").delete(url(workflow))
    deleted = api("approver").delete(url(workflow))

    assert (refused.status_code, refused.json()["code"]) == (403, "delete_money_approver")
    assert deleted.status_code == 204
    assert not Workflow.objects.exists()


def test_a_workflow_that_was_ever_activated_cannot_be_deleted(db, api):
    workflow = create_workflow(TELL_OPS, status="active")
    workflows.pause(workflow)

    response = api("approver").delete(url(workflow))

    assert response.status_code == 409
    assert response.json() == {
        "detail": "This workflow has been activated; pause it instead of deleting it.",
        "code": "has_versions",
    }
    assert Workflow.objects.filter(pk=workflow.pk).exists()


# ------------------------------------------------------------------ activation


def test_an_editor_activates_a_workflow_that_moves_no_money(db, api):
    workflow = create_workflow(TELL_OPS)

    response = post(api("editor", "hanako"), url(workflow, "activate"), {})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["active_version"]) == ("active", 1)
    version = WorkflowVersion.objects.get()
    assert (version.workflow_id, version.number, version.created_by.username) == (
        workflow.pk,
        1,
        "hanako",
    )
    assert version.definition == workflows.draft(workflow)


def test_an_editor_may_not_activate_a_refund_workflow_and_an_approver_may(db, api):
    workflow = create_workflow(refund_early_fraud_warnings())

    refused = post(api("editor"), url(workflow, "activate"), {})
    detail = api("editor", "jiro").get(url(workflow))
    allowed = post(api("approver"), url(workflow, "activate"), {})

    assert refused.status_code == 403
    assert refused.json() == {
        "detail": (
            "This workflow moves money (it refunds or credits): an approver must activate it."
        ),
        "code": "money_approver",
    }
    assert (detail.json()["can_activate"], detail.json()["activate_reason"]) == (
        False,
        "money_approver",
    )
    assert allowed.status_code == 200
    assert allowed.json()["status"] == "active"
    assert WorkflowVersion.objects.get().created_by.username == "approver"


def test_a_viewer_may_neither_activate_nor_pause(db, api):
    draft = create_workflow(TELL_OPS)
    active = create_workflow({**TELL_OPS, "name": "Active"}, status="active")
    client = api("viewer")

    assert post(client, url(draft, "activate"), {}).status_code == 403
    assert post(client, url(active, "pause"), {}).status_code == 403
    assert not WorkflowVersion.objects.filter(workflow=draft).exists()
    active.refresh_from_db()
    assert active.status == "active"


def test_a_draft_with_problems_is_not_activated(db, api):
    workflow = create_workflow(TELL_OPS)
    workflow.steps.update(config={"channel": "C0OPS", "text": "{{run.__class__}}"})

    response = post(api("editor"), url(workflow, "activate"), {})

    assert response.status_code == 400
    assert [(p["where"], p["code"]) for p in response.json()["problems"]] == [
        ("steps.0.config.text", "reference_private")
    ]
    assert not WorkflowVersion.objects.exists()


def test_pausing_stops_new_runs_and_pausing_again_changes_nothing(db, api):
    workflow = create_workflow(TELL_OPS, status="active")
    client = api("editor")

    first = post(client, url(workflow, "pause"), {})
    again = post(client, url(workflow, "pause"), {})

    assert (first.status_code, first.json()["status"]) == (200, "paused")
    assert (again.status_code, again.json()["status"]) == (200, "paused")
    assert [e.get_change_message() for e in LogEntry.objects.all()] == ["Paused."]


# ------------------------------------------------------------------ versions and diffs


def versioned_workflow():
    """A workflow with versions 1 and 2 (active) and a draft that differs from both."""
    workflow = create_workflow(TELL_OPS, owner=staff_user("editor", "hanako"))
    workflows.activate(workflow, staff_user("approver", "sachiko"))
    workflow.refresh_from_db()  # the service saves the instance it is given
    workflows.save_draft(workflow, {**TELL_OPS, "name": "Second"})
    workflows.activate(workflow)
    workflow.refresh_from_db()
    workflows.save_draft(workflow, {**TELL_OPS, "name": "Third"})
    return workflow


def test_versions_list_newest_first_with_who_made_them_and_what_changed(db, api):
    workflow = versioned_workflow()

    response = api("viewer").get(url(workflow, "versions"))

    assert response.status_code == 200
    body = response.json()
    assert [(v["number"], v["created_by"], v["active"]) for v in body["versions"]] == [
        (2, "", True),
        (1, "sachiko", False),
    ]
    assert '-  "name": "Tell ops about payments",' in body["versions"][0]["diff"]
    assert '+  "name": "Second",' in body["versions"][0]["diff"]
    assert '+  "name": "Third",' in body["unactivated"]


def test_the_diff_between_two_versions_and_from_the_active_version_to_the_draft(db, api):
    workflow = versioned_workflow()
    client = api("viewer")

    between = client.get(url(workflow, "diff"), {"from": 1, "to": 2})
    to_draft = client.get(url(workflow, "diff"))
    unknown = client.get(url(workflow, "diff"), {"from": 7})
    bad = client.get(url(workflow, "diff"), {"to": "two"})

    assert between.status_code == 200
    assert between.json()["to_draft"] is False
    assert between.json()["lines"] == workflows.diff(
        workflow.versions.get(number=1).definition, workflow.versions.get(number=2).definition
    )
    assert '+  "name": "Second",' in between.json()["lines"]
    assert to_draft.json()["to_draft"] is True
    assert '-  "name": "Second",' in to_draft.json()["lines"]
    assert '+  "name": "Third",' in to_draft.json()["lines"]
    assert (unknown.status_code, bad.status_code) == (404, 400)


# ------------------------------------------------------------------ dry-runs and backtests


def test_a_dry_run_on_a_stored_event_shows_the_request_and_sends_nothing(
    db, api, fake_stripe, fake_slack
):
    workflow = create_workflow(TELL_OPS)
    intent = payment_intent_dict(150000, "usd", client_secret="pi_x_secret_abc123")
    stored = stored_event(event("payment_intent.succeeded", intent))

    response = post(api("editor"), url(workflow, "dry-run"), {"event_id": stored.id})

    assert response.status_code == 200
    body = response.json()
    assert (body["matched"], body["trigger_matches"]) == (True, True)
    assert body["event"]["id"] == stored.id
    assert [(s["name"], s["request"], s["sent"]) for s in body["steps"]] == [
        ("tell", {"channel": "C0OPS", "text": f"Paid {intent['id']}"}, False)
    ]
    assert fake_slack.calls == []
    assert fake_stripe.requests() == []
    assert not Run.objects.exists()


def test_a_dry_run_on_a_posted_payload_redacts_secrets_and_explains_unmet_conditions(
    db, api, fake_slack
):
    workflow = create_workflow(
        {
            **TELL_OPS,
            "steps": [
                {
                    "name": "tell",
                    "kind": "slack.post_message",
                    "config": {"channel": "C0OPS", "text": "{{trigger.data.object.description}}"},
                }
            ],
        }
    )
    payload = event(
        "payment_intent.succeeded",
        payment_intent_dict(500, "usd", description="key sk_test_abcdef123"),
    )

    client = api("editor")

    small = post(client, url(workflow, "dry-run"), {"payload": payload})
    payload["data"]["object"]["amount"] = 5000
    large = post(client, url(workflow, "dry-run"), {"payload": payload})

    assert small.status_code == 200
    assert (small.json()["matched"], small.json()["steps"]) == (False, [])
    assert small.json()["conditions"][0]["matched"] is False
    assert large.json()["steps"][0]["request"]["text"] == "key [redacted]"
    assert "sk_test_abcdef123" not in large.content.decode()
    assert fake_slack.calls == []


def test_a_dry_run_of_a_manual_workflow_uses_a_stored_object(
    db, api, fake_stripe, stripe_account, fake_slack
):
    workflow = create_workflow(THANK_YOU)
    [charge] = stored_charges([2500])

    response = post(api("editor"), url(workflow, "dry-run"), {"event_id": charge.id})

    assert response.status_code == 200
    assert response.json()["steps"][0]["request"] == {
        "channel": "C0OPS",
        "text": f"Thank {charge.id}: $25.00",
    }
    assert fake_slack.calls == []


def test_a_dry_run_needs_a_known_event_and_an_event_shaped_payload(db, api):
    workflow = create_workflow(TELL_OPS)
    client = api("editor")

    unknown = post(client, url(workflow, "dry-run"), {"event_id": "evt_nowhere"})
    neither = post(client, url(workflow, "dry-run"), {})
    both = post(client, url(workflow, "dry-run"), {"event_id": "evt_1", "payload": {}})
    shapeless = post(client, url(workflow, "dry-run"), {"payload": {"data": 5}})
    listed = post(client, url(workflow, "dry-run"), {"payload": [1]})

    assert unknown.status_code == 400
    assert unknown.json()["code"] == "subject_unknown"
    assert [r.status_code for r in (neither, both, shapeless, listed)] == [400] * 4


def test_a_viewer_may_not_dry_run_or_backtest(db, api):
    workflow = create_workflow(TELL_OPS)
    client = api("viewer")

    assert post(client, url(workflow, "dry-run"), {"event_id": "evt_1"}).status_code == 403
    assert post(client, url(workflow, "backtest"), {"days": 7}).status_code == 403


def store_events(*events):
    for e in events:
        Event.objects.create(
            id=e["id"],
            type=e["type"],
            livemode=False,
            created=datetime.fromtimestamp(e["created"], tz=UTC),
            data=e["data"],
            stripe_data=e,
        )


def test_a_backtest_counts_what_the_draft_would_have_done_over_the_days(
    db, api, fake_stripe, fake_slack
):
    workflow = create_workflow(TELL_OPS)
    now = timezone.now()
    days_ago = [1, 2, 3, 10]
    amounts = [5000, 500, 2000, 9000]
    store_events(
        *(
            event(
                "payment_intent.succeeded",
                payment_intent_dict(amount, "usd", id=f"pi_bt{i}"),
                event_id=f"evt_bt{i}",
                created=int((now - timedelta(days=days)).timestamp()),
            )
            for i, (amount, days) in enumerate(zip(amounts, days_ago, strict=True))
        )
    )

    response = post(api("editor"), url(workflow, "backtest"), {"days": 7})

    assert response.status_code == 200
    body = response.json()
    assert (body["event_type"], body["considered"], body["matched"]) == (
        "payment_intent.succeeded",
        3,
        2,
    )
    assert sorted(r["request"]["text"] for r in body["requests"]) == ["Paid pi_bt0", "Paid pi_bt2"]
    assert (body["events_more"], body["requests_more"]) == (0, 0)
    assert fake_slack.calls == []
    assert fake_stripe.requests() == []
    assert not Run.objects.exists()


def test_a_backtest_over_a_period_and_its_refusals(db, api):
    workflow = create_workflow(TELL_OPS)
    manual = create_workflow(THANK_YOU)
    client = api("editor")

    period = post(
        client,
        url(workflow, "backtest"),
        {"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
    )
    other_kind = post(client, url(manual, "backtest"), {"days": 7})
    bad = [
        post(client, url(workflow, "backtest"), body)
        for body in (
            {},
            {"days": 0},
            {"days": 91},
            {"days": "a week"},
            {"days": 7, "since": "2026-01-01T00:00:00Z"},
            {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            {"since": "yesterday"},
        )
    ]

    assert period.status_code == 200
    assert (period.json()["considered"], period.json()["since"]) == (0, "2026-01-01T00:00:00Z")
    assert (other_kind.status_code, other_kind.json()["code"]) == (400, "backtest_kind")
    assert [r.status_code for r in bad] == [400] * len(bad)


# ------------------------------------------------------------------ manual runs


@pytest.fixture
def manual_world(db, fake_stripe, stripe_account, fake_slack):
    return {"workflow": create_workflow(THANK_YOU, status="active"), "slack": fake_slack}


def test_an_editor_runs_a_manual_workflow_on_charges_once_per_request_token(
    api, manual_world, django_capture_on_commit_callbacks
):
    charges = stored_charges([1500, 500])
    client = api("editor")
    body = {"object_ids": [c.id for c in charges] + ["ch_nowhere"], "request_token": "tok_abc123"}

    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, url(manual_world["workflow"], "run"), body)
    with django_capture_on_commit_callbacks(execute=True):
        again = post(client, url(manual_world["workflow"], "run"), body)

    run = Run.objects.get()
    batch = Batch.objects.get()
    assert first.status_code == 200
    assert first.json() == {
        "started": [run.pk],
        "not_started": 1,
        "missing": ["ch_nowhere"],
        "request_token": "tok_abc123",
        "batch": batch.pk,
    }
    assert again.json() == {**first.json(), "started": [], "not_started": 2}
    assert (run.status, run.started_by.username) == (Run.Status.SUCCEEDED, "editor")
    assert manual_world["slack"].messages() == [
        {"channel": "C0OPS", "text": f"Thank {charges[0].id}: $15.00"}
    ]


def test_a_viewer_may_not_run_a_manual_workflow(api, manual_world):
    [charge] = stored_charges([1500])

    response = post(
        api("viewer"), url(manual_world["workflow"], "run"), {"object_ids": [charge.id]}
    )

    assert response.status_code == 403
    assert not Run.objects.exists()


def test_only_an_approver_runs_a_workflow_that_moves_money(
    api, db, fake_stripe, stripe_account, django_capture_on_commit_callbacks
):
    refund = {
        "name": "Refund selected",
        "trigger": {"kind": "manual", "object": "charge"},
        "conditions": [],
        "limits": {"per_run": {"usd": 100}, "per_day": {"usd": 1000}},
        "steps": [
            {
                "name": "refund",
                "kind": "stripe.create_refund",
                "config": {
                    "charge": "{{trigger.data.object.id}}",
                    "amount": 100,
                    "currency": "{{trigger.data.object.currency}}",
                },
            }
        ],
    }
    workflow = create_workflow(refund, status="active")
    [charge] = stored_charges([1500])

    refused = post(api("editor"), url(workflow, "run"), {"object_ids": [charge.id]})
    with django_capture_on_commit_callbacks(execute=True):
        allowed = post(api("approver"), url(workflow, "run"), {"object_ids": [charge.id]})

    assert refused.status_code == 403
    assert refused.json()["code"] == "money_run_approver"
    assert allowed.status_code == 200
    assert len(allowed.json()["started"]) == 1
    [sent] = fake_stripe.requests(path="/v1/refunds", method="POST")
    assert (sent["params"]["charge"], sent["params"]["amount"]) == (charge.id, "100")


def test_running_an_event_workflow_or_a_draft_is_refused(db, api):
    event_workflow = create_workflow(TELL_OPS, status="active")
    draft = create_workflow(THANK_YOU)
    client = api("approver")

    answers = [
        post(client, url(w, "run"), {"object_ids": ["ch_1"]}) for w in (event_workflow, draft)
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, "not_manual")] * 2


def test_a_run_request_of_the_wrong_shape_is_a_400(db, api, manual_world):
    client = api("editor")
    path = url(manual_world["workflow"], "run")

    answers = [
        post(client, path, body)
        for body in (
            {},
            {"object_ids": []},
            {"object_ids": "ch_1"},
            {"object_ids": [{"id": "ch_1"}]},
            {"object_ids": ["ch_" + "x" * 200]},
            {"object_ids": ["ch_1"] * 1001},
            {"object_ids": ["ch_1"], "request_token": "no spaces allowed"},
        )
    ]

    assert [a.status_code for a in answers] == [400] * len(answers)
    assert not Batch.objects.exists()


# ------------------------------------------------------------------ hostile bodies


def raw(client, path, body, method="post"):
    return getattr(client, method)(path, body, content_type="application/json")


def test_a_body_nested_ten_thousand_deep_is_a_400(db, api):
    workflow = create_workflow(TELL_OPS)
    client = api("editor")
    deep_list = "[" * 10_000 + "]" * 10_000
    deep_definition = '{"definition": ' + '{"a": ' * 5_000 + "1" + "}" * 5_001

    answers = [
        raw(client, URL, deep_list),
        raw(client, URL, deep_definition),
        raw(client, url(workflow), deep_definition, "put"),
        raw(client, url(workflow, "dry-run"), '{"payload": ' + deep_list + "}"),
    ]

    assert [a.status_code for a in answers] == [400] * 4
    assert answers[0].json() == {"detail": "The JSON is nested too deeply."}
    assert Workflow.objects.count() == 1


def test_nesting_that_parses_but_is_deeper_than_any_definition_is_a_400(db, api):
    body = {"definition": {**TELL_OPS, "description": json.loads("[" * 500 + "]" * 500)}}

    response = post(api("editor"), URL, body)

    assert response.status_code == 400
    assert response.json() == {"detail": "The JSON is nested too deeply."}


def test_a_huge_body_is_a_400_before_it_is_parsed(db, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    huge = {"definition": {**TELL_OPS, "description": "x" * 20_000}}

    response = post(api("editor"), URL, huge)

    assert response.status_code == 400
    assert response.json() == {"detail": "The body is larger than 10000 bytes."}
    assert not Workflow.objects.exists()


def test_too_many_steps_are_the_validators_problem(db, api):
    steps = [{**TELL_OPS["steps"][0], "name": f"tell_{i}"} for i in range(501)]

    response = post(api("editor"), URL, {"definition": {**TELL_OPS, "steps": steps}})

    assert response.status_code == 400
    assert [(p["where"], p["code"]) for p in response.json()["problems"]] == [
        ("steps", "steps_too_many")
    ]


@pytest.mark.parametrize(
    "body",
    [
        '{"definition": {"name": "Trunc',
        "",
        "not json",
        "[]",
        '"a string"',
        "42",
        "null",
        '{"definition": NaN}',
        b"\xff\xfe{}",
    ],
)
def test_truncated_invalid_and_non_object_bodies_are_a_400(db, api, body):
    workflow = create_workflow(TELL_OPS)
    client = api("approver")

    answers = [
        raw(client, URL, body),
        raw(client, url(workflow), body, "put"),
        raw(client, url(workflow, "dry-run"), body),
        raw(client, url(workflow, "backtest"), body),
        raw(client, url(workflow, "run"), body),
    ]

    assert [a.status_code for a in answers] == [400] * len(answers)
    assert Workflow.objects.count() == 1


def test_a_form_encoded_body_is_refused(db, api):
    response = api("editor").post(URL, {"definition": "x"})

    assert response.status_code == 415
    assert not Workflow.objects.exists()


def test_the_schema_documents_every_workflow_endpoint(db, api):
    response = api("viewer").get("/api/schema/", {"format": "json"})

    paths = response.json()["paths"]
    assert {p for p in paths if p.startswith("/api/workflows/")} == {
        "/api/workflows/",
        "/api/workflows/{id}/",
        "/api/workflows/{id}/activate/",
        "/api/workflows/{id}/pause/",
        "/api/workflows/{id}/versions/",
        "/api/workflows/{id}/diff/",
        "/api/workflows/{id}/dry-run/",
        "/api/workflows/{id}/backtest/",
        "/api/workflows/{id}/run/",
    }
    create = paths["/api/workflows/"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WorkflowCreate"
    }
    assert set(create["responses"]) == {"201", "400", "401", "403", "404"}
