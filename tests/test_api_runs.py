"""The runs API: the list with the admin's filters, each run with its attempts, and retry,
cancel, decide, approve and reject through the workflow service, for every role."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone
from rest_framework.test import APIClient

from automations.models import Approval, Run, RunStep, TriggerKind, Workflow
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow, event, payment_intent_dict

API = "/api/runs/"
NOW = timezone.now()


@pytest.fixture
def workflow(db):
    return create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)


@pytest.fixture
def make_run(workflow):
    def make(key, status=Run.Status.SUCCEEDED, age=timedelta(minutes=1), **fields):
        return Run.objects.create(
            workflow=fields.pop("workflow", workflow),
            version=fields.pop("version", workflow.active_version),
            trigger_key=key,
            event_type=fields.pop("event_type", "payment_intent.succeeded"),
            status=status,
            trigger_data=fields.pop("trigger_data", {}),
            created_at=NOW - age,
            **fields,
        )

    return make


@pytest.fixture
def held_for_approval(make_run):
    """A refund run held above the per-run cap, started by a colleague."""
    starter = staff_user("editor", username="starter")
    run = make_run(
        "evt_big_refund",
        Run.Status.HELD,
        hold_reason=Run.HoldReason.APPROVAL,
        started_by=starter,
        trigger_kind=TriggerKind.MANUAL,
    )
    Approval.objects.create(
        run=run,
        step_name="refund",
        amount=250000,
        currency="usd",
        exceeded=[{"cap": "per_run", "limit": 200000, "total": 250000}],
    )
    return run


@pytest.fixture
def held_outcome_unknown(make_run):
    run = make_run("evt_unknown", Run.Status.HELD, hold_reason=Run.HoldReason.OUTCOME_UNKNOWN)
    RunStep.objects.create(
        run=run,
        step_name="notify_team",
        kind="email.send",
        status=RunStep.Status.UNKNOWN,
        started_at=NOW,
    )
    return run


def client_for(role):
    """An API client signed in as a staff user in this role ("nobody": no role; None: anonymous)."""
    client = APIClient()
    if role is not None:
        client.force_authenticate(staff_user(None if role == "nobody" else role, username=role))
    return client


def ids(response):
    return [row["id"] for row in response.json()["results"]]


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("nobody", 403), ("viewer", 200), ("editor", 200), ("approver", 200)],
)
def test_who_may_list_and_read_runs(make_run, role, expected):
    run = make_run("evt_1")
    client = client_for(role)

    assert client.get(API).status_code == expected
    assert client.get(f"{API}{run.pk}/").status_code == expected


def test_anonymous_clients_are_asked_for_a_token(make_run):
    response = APIClient().get(API)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_list_is_newest_first_with_plain_rows(make_run, workflow):
    older = make_run("evt_old", Run.Status.FAILED, age=timedelta(hours=2), error="SMTP 554")
    newer = make_run("evt_new", age=timedelta(minutes=5))

    response = client_for("viewer").get(API)

    assert response.status_code == 200
    assert ids(response) == [newer.pk, older.pk]
    assert response.json()["results"][1] == {
        "id": older.pk,
        "workflow": workflow.pk,
        "workflow_name": "Tag VIP customers",
        "version": 1,
        "trigger_kind": "stripe_event",
        "trigger_key": "evt_old",
        "event_type": "payment_intent.succeeded",
        "status": "failed",
        "hold_reason": "",
        "attempt": 0,
        "error": "SMTP 554",
        "started_by": None,
        "batch": None,
        "created_at": older.created_at.isoformat().replace("+00:00", "Z"),
        "started_at": None,
        "finished_at": None,
        "next_attempt_at": None,
    }


@pytest.fixture
def assorted(make_run, workflow):
    other = create_workflow({**tag_vip_customers(), "name": "Other"}, status="active")
    return {
        "failed": make_run("evt_f", Run.Status.FAILED, age=timedelta(days=3)),
        "held": make_run(
            "evt_h", Run.Status.HELD, hold_reason=Run.HoldReason.APPROVAL, age=timedelta(days=2)
        ),
        "ok": make_run("evt_s", Run.Status.SUCCEEDED, age=timedelta(hours=1)),
        "manual": make_run(
            "man_1",
            trigger_kind=TriggerKind.MANUAL,
            event_type="",
            age=timedelta(minutes=30),
        ),
        "other": make_run(
            "evt_o",
            Run.Status.FAILED,
            workflow=other,
            version=other.active_version,
            event_type="charge.refunded",
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__in=failed,held", ["other", "held", "failed"]),
        ("status=succeeded", ["manual", "ok"]),
        ("hold_reason=approval", ["held"]),
        ("trigger_kind=manual", ["manual"]),
        ("event_type=charge.refunded", ["other"]),
        ("status__in=failed&event_type=payment_intent.succeeded", ["failed"]),
    ],
)
def test_the_list_takes_the_admins_filters(assorted, query, expected):
    response = client_for("viewer").get(f"{API}?{query}")

    assert response.status_code == 200
    assert ids(response) == [assorted[name].pk for name in expected]


def test_a_creation_time_in_another_offset_is_the_same_instant(assorted):
    until = (NOW - timedelta(minutes=45)).astimezone(timezone.get_fixed_timezone(14 * 60))

    response = client_for("viewer").get(API, {"created_at__lt": until.isoformat()})

    assert ids(response) == [assorted[name].pk for name in ("ok", "held", "failed")]


def test_the_list_filters_by_workflow_and_creation_time(assorted, workflow):
    client = client_for("viewer")
    since = (NOW - timedelta(days=2, hours=1)).isoformat()
    until = (NOW - timedelta(minutes=45)).isoformat()

    by_workflow = client.get(API, {"workflow": assorted["other"].workflow_id})
    in_range = client.get(API, {"created_at__gte": since, "created_at__lt": until})

    assert ids(by_workflow) == [assorted["other"].pk]
    assert ids(in_range) == [assorted["ok"].pk, assorted["held"].pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status__in=failed,lost", "status__in"),
        ("workflow=999999", "workflow"),
        ("created_at__gte=yesterday", "created_at__gte"),
        # Found by Schemathesis on PostgreSQL, which refuses offsets beyond ±15:59 (a 500).
        ("created_at__lt=0482-04-06T08:53:01.83%2B20:31", "created_at__lt"),
        ("created_at__gte=0001-01-01T00:00:00%2B01:00", "created_at__gte"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(assorted, query, field):
    response = client_for("viewer").get(f"{API}?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_the_list_pages_with_a_cursor_and_loses_no_run_between_pages(make_run):
    made = [make_run(f"evt_{i}", age=timedelta(seconds=i // 2)) for i in range(53)]
    client = client_for("viewer")

    first = client.get(API).json()
    second = client.get(first["next"]).json()

    assert len(first["results"]) == 50
    assert first["previous"] is None
    assert second["next"] is None
    seen = [row["id"] for row in first["results"] + second["results"]]
    # Newest first; runs created at the same instant, highest id first.
    expected = sorted(made, key=lambda r: (r.created_at, r.pk), reverse=True)
    assert seen == [r.pk for r in expected]


def test_a_bad_cursor_is_a_404(make_run):
    response = client_for("viewer").get(API, {"cursor": "not-a-cursor"})

    assert response.status_code == 404


def test_a_run_shows_its_attempts_with_secrets_redacted(make_run):
    run = make_run(
        "evt_pi",
        Run.Status.FAILED,
        error="Stripe said: invalid key sk_test_51abcDEF",
        trigger_data=event(
            "payment_intent.succeeded",
            payment_intent_dict(150000, "usd", client_secret="pi_123_secret_456"),
        ),
    )
    first = RunStep.objects.create(
        run=run,
        step_name="tag_vip",
        kind="stripe.update_customer_metadata",
        attempt=1,
        status=RunStep.Status.RETRYING,
        input={"customer": "cus_1", "headers": {"Authorization": "Bearer sk_live_999zzz"}},
        output=None,
        error="Stripe 500",
        idempotency_key=f"kanri-{run.workflow_id}-{run.pk}-tag_vip",
        started_at=NOW - timedelta(seconds=30),
        finished_at=NOW - timedelta(seconds=29),
        duration_ms=812,
    )
    RunStep.objects.create(
        run=run,
        step_name="tag_vip",
        kind="stripe.update_customer_metadata",
        attempt=2,
        status=RunStep.Status.FAILED,
        input={"customer": "cus_1"},
        output={"error": {"message": "No such customer; whsec_abcdef"}},
        error="No such customer",
        idempotency_key=first.idempotency_key,
        started_at=NOW,
        duration_ms=95,
    )

    body = client_for("viewer").get(f"{API}{run.pk}/").json()

    assert body["error"] == "Stripe said: invalid key [redacted]"
    assert body["trigger_data"]["data"]["object"]["client_secret"] == "[redacted]"
    assert body["trigger_data"]["data"]["object"]["amount"] == 150000
    assert body["pending_approval"] is None
    assert [(s["name"], s["attempt"], s["status"]) for s in body["steps"]] == [
        ("tag_vip", 1, "retrying"),
        ("tag_vip", 2, "failed"),
    ]
    assert body["steps"][0] == {
        "name": "tag_vip",
        "kind": "stripe.update_customer_metadata",
        "attempt": 1,
        "status": "retrying",
        "input": {"customer": "cus_1", "headers": {"Authorization": "Bearer [redacted]"}},
        "output": None,
        "error": "Stripe 500",
        "idempotency_key": f"kanri-{run.workflow_id}-{run.pk}-tag_vip",
        "started_at": first.started_at.isoformat().replace("+00:00", "Z"),
        "finished_at": first.finished_at.isoformat().replace("+00:00", "Z"),
        "duration_ms": 812,
        "amount": None,
        "currency": "",
        "decision": "",
        "decided_by": None,
        "decided_at": None,
        "undecided": False,
    }
    assert body["steps"][1]["output"] == {"error": {"message": "No such customer; [redacted]"}}
    assert "sk_test_51abcDEF" not in str(body) and "pi_123_secret_456" not in str(body)


def test_a_run_held_for_approval_says_what_it_waits_for(held_for_approval):
    body = client_for("viewer").get(f"{API}{held_for_approval.pk}/").json()

    assert body["status"] == "held"
    assert body["hold_reason"] == "approval"
    assert body["started_by"] == "starter"
    assert body["pending_approval"] == {
        "step": "refund",
        "amount": 250000,
        "currency": "usd",
        "exceeded": [{"cap": "per_run", "limit": 200000, "total": 250000}],
        "requested_at": Approval.objects.get().requested_at.isoformat().replace("+00:00", "Z"),
    }


def test_an_unknown_run_is_a_404(db):
    client = client_for("viewer")

    assert client.get(f"{API}424242/").status_code == 404
    assert client.get(f"{API}abc/").status_code == 404


def test_runs_cannot_be_created_changed_or_deleted(make_run):
    run = make_run("evt_1")
    client = client_for("approver")

    assert client.post(API, {}, format="json").status_code == 405
    assert client.put(f"{API}{run.pk}/", {}, format="json").status_code == 405
    assert client.patch(f"{API}{run.pk}/", {}, format="json").status_code == 405
    assert client.delete(f"{API}{run.pk}/").status_code == 405
    assert Run.objects.filter(pk=run.pk, status=Run.Status.SUCCEEDED).exists()


# ---------------------------------------------------------------- retry and cancel


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("nobody", 403), ("viewer", 403), ("editor", 200), ("approver", 200)],
)
def test_who_may_retry_a_failed_run(make_run, role, expected, django_capture_on_commit_callbacks):
    run = make_run("evt_f", Run.Status.FAILED, error="SMTP 554")

    with django_capture_on_commit_callbacks() as queued:
        response = client_for(role).post(f"{API}{run.pk}/retry/")

    assert response.status_code == expected
    run.refresh_from_db()
    if expected == 200:
        assert response.json()["status"] == "queued"
        assert (run.status, run.error, len(queued)) == ("queued", "", 1)
        log = LogEntry.objects.get(object_id=str(run.pk))
        assert (log.user.username, log.change_message) == (role, "Retried.")
    else:
        assert (run.status, len(queued)) == ("failed", 0)


def test_retrying_a_run_that_has_not_failed_is_a_409(make_run):
    run = make_run("evt_ok", Run.Status.SUCCEEDED)

    response = client_for("editor").post(f"{API}{run.pk}/retry/")

    assert response.status_code == 409
    assert response.json()["code"] == "not_failed"
    assert Run.objects.get(pk=run.pk).status == "succeeded"


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("nobody", 403), ("viewer", 403), ("editor", 200), ("approver", 200)],
)
def test_who_may_cancel_a_waiting_run(make_run, role, expected):
    run = make_run("evt_q", Run.Status.RETRYING, next_attempt_at=NOW)

    response = client_for(role).post(f"{API}{run.pk}/cancel/")

    assert response.status_code == expected
    run.refresh_from_db()
    assert run.status == ("cancelled" if expected == 200 else "retrying")
    if expected == 200:
        assert response.json()["status"] == "cancelled"
        assert run.finished_at is not None and run.next_attempt_at is None


def test_cancelling_a_finished_run_is_a_409(make_run):
    run = make_run("evt_ok", Run.Status.SUCCEEDED)

    response = client_for("editor").post(f"{API}{run.pk}/cancel/")

    assert (response.status_code, response.json()["code"]) == (409, "not_waiting")


# ---------------------------------------------------------------- decide


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("nobody", 403), ("viewer", 403), ("editor", 200), ("approver", 200)],
)
def test_who_may_settle_a_step_whose_outcome_is_unknown(
    held_outcome_unknown, role, expected, django_capture_on_commit_callbacks
):
    run = held_outcome_unknown
    with django_capture_on_commit_callbacks() as queued:
        response = client_for(role).post(
            f"{API}{run.pk}/decide/", {"step": "notify_team", "decision": "skip"}, format="json"
        )

    assert response.status_code == expected
    step = RunStep.objects.get(run=run)
    run.refresh_from_db()
    if expected == 200:
        assert (run.status, run.hold_reason, len(queued)) == ("queued", "", 1)
        assert (step.decision, step.decided_by.username) == ("skip", role)
        assert response.json()["steps"][0]["decision"] == "skip"
        assert response.json()["steps"][0]["undecided"] is False
    else:
        assert (run.status, step.decision, len(queued)) == ("held", "", 0)


def test_a_decision_on_a_step_the_run_does_not_wait_on_is_a_409(held_outcome_unknown):
    response = client_for("editor").post(
        f"{API}{held_outcome_unknown.pk}/decide/",
        {"step": "tag_vip", "decision": "send_again"},
        format="json",
    )

    assert (response.status_code, response.json()["code"]) == (409, "not_waiting_on_step")
    assert RunStep.objects.get(run=held_outcome_unknown).decision == ""


def test_an_unknown_decision_is_a_400(held_outcome_unknown):
    response = client_for("editor").post(
        f"{API}{held_outcome_unknown.pk}/decide/",
        {"step": "notify_team", "decision": "ignore"},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()) == ["decision"]
    assert Run.objects.get(pk=held_outcome_unknown.pk).status == "held"


# ---------------------------------------------------------------- approve and reject


@pytest.mark.parametrize(
    ("role", "expected", "code"),
    [
        (None, 401, None),
        ("nobody", 403, None),
        ("viewer", 403, "approve_permission"),
        ("editor", 403, "approve_permission"),
        ("approver", 200, None),
    ],
)
def test_who_may_approve_a_run_held_above_a_money_cap(
    held_for_approval, role, expected, code, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = client_for(role).post(f"{API}{held_for_approval.pk}/approve/")

    assert response.status_code == expected
    if code:
        assert response.json()["code"] == code
    approval = Approval.objects.get()
    held_for_approval.refresh_from_db()
    if expected == 200:
        assert (held_for_approval.status, len(queued)) == ("queued", 1)
        assert (approval.decision, approval.decided_by.username) == ("approved", "approver")
        assert response.json()["pending_approval"] is None
    else:
        assert (held_for_approval.status, approval.decision, len(queued)) == ("held", "", 0)


def test_an_approver_cannot_approve_a_run_they_started(held_for_approval):
    starter = staff_user("approver", username="starting_approver")
    Run.objects.filter(pk=held_for_approval.pk).update(started_by=starter)
    client = APIClient()
    client.force_authenticate(starter)

    response = client.post(f"{API}{held_for_approval.pk}/approve/")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "You started this run: another approver must decide it.",
        "code": "approve_own_run",
    }
    assert Approval.objects.get().decision == ""


def test_approving_a_run_that_is_not_waiting_for_approval_is_refused(held_outcome_unknown):
    response = client_for("approver").post(f"{API}{held_outcome_unknown.pk}/approve/")

    assert (response.status_code, response.json()["code"]) == (403, "approve_not_waiting")


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), ("nobody", 403), ("viewer", 403), ("editor", 403), ("approver", 200)],
)
def test_who_may_reject_a_held_run(
    held_for_approval, role, expected, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = client_for(role).post(f"{API}{held_for_approval.pk}/reject/")

    assert response.status_code == expected
    held_for_approval.refresh_from_db()
    approval = Approval.objects.get()
    if expected == 200:
        assert response.json()["status"] == "cancelled"
        assert (held_for_approval.status, approval.decision, len(queued)) == (
            "cancelled",
            "rejected",
            0,
        )
    else:
        assert (held_for_approval.status, approval.decision) == ("held", "")


def test_acting_on_an_unknown_run_is_a_404(db):
    client = client_for("approver")

    for name in ("retry", "cancel", "decide", "approve", "reject"):
        assert client.post(f"{API}424242/{name}/").status_code == 404, name
