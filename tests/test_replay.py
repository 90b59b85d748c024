"""replay_events: stored events through the live entry again (skipping pairs that already
ran), its --dry-run and report, and the admin's Backtest page, which share one service."""

import csv
import io
import json
import re
import time
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from djstripe.models import Event

from automations.models import Run, RunStep, TriggerKind, Workflow
from automations.triggers import start_runs, stripe_event
from tests.admin_helpers import staff_user
from tests.builders import create_workflow

NOW = int(time.time())
TEAM = "ops@example.test"
CAPS = {
    "per_run": {"usd": 10_000_000, "jpy": 10_000_000},
    "per_day": {"usd": 10_000_000, "jpy": 10_000_000},
}


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("replay_events", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def store(events):
    """Store events as dj-stripe's Event rows, in one statement."""
    Event.objects.bulk_create(
        Event(
            id=e["id"],
            type=e["type"],
            livemode=False,
            created=datetime.fromtimestamp(e["created"], tz=UTC),
            data=e["data"],
            stripe_data=e,
        )
        for e in events
    )


def stripe_event_dict(event_id, event_type, obj, created, idempotency_key=None):
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": False,
        "api_version": "2026-08-26.dahlia",
        "request": {"id": None, "idempotency_key": idempotency_key},
        "data": {"object": obj},
    }


def money(field, op, value, currency):
    return {"field": f"trigger.data.object.{field}", "op": op, "value": value, "currency": currency}


def slack(name, text="{{trigger.data.object.id}}"):
    return {"name": name, "kind": "slack.post_message", "config": {"channel": "#ops", "text": text}}


def email(name):
    return {
        "name": name,
        "kind": "email.send",
        "config": {
            "recipient": "team",
            "to": TEAM,
            "subject": "About {{trigger.data.object.id}}",
            "body": "See {{trigger.data.object.id}}.",
        },
    }


def refund(name="refund"):
    return {
        "name": name,
        "kind": "stripe.create_refund",
        "config": {
            "charge": "{{trigger.data.object.id}}",
            "amount": "{{trigger.data.object.amount}}",
            "currency": "{{trigger.data.object.currency}}",
        },
    }


def definition(name, event_type, conditions=(), steps=(), limits=None):
    data = {
        "name": name,
        "trigger": {"kind": "stripe_event", "event_type": event_type},
        "conditions": list(conditions),
        "steps": list(steps),
    }
    if limits:
        data["limits"] = limits
    return data


def branch(name, conditions, then, otherwise):
    return {
        "name": name,
        "kind": "branch",
        "conditions": conditions,
        "then": then,
        "else": otherwise,
    }


TEN_WORKFLOWS = [
    definition(
        "Refund small USD charges",
        "charge.succeeded",
        [[money("amount", "lt", 1000, "usd")]],
        [refund()],
        CAPS,
    ),
    definition(
        "Refund small JPY charges",
        "charge.succeeded",
        [[money("amount", "lt", 2000, "jpy")]],
        [refund()],
        CAPS,
    ),
    definition(
        "Big charges to Slack",
        "charge.succeeded",
        steps=[
            branch(
                "is_big", [[money("amount", "gt", 5000, "usd")]], [slack("post")], [email("mail")]
            )
        ],
    ),
    definition(
        "EUR charges",
        "charge.succeeded",
        [[{"field": "trigger.data.object.currency", "op": "eq", "value": "eur"}]],
        [
            branch(
                "small", [[money("amount", "lte", 2000, "eur")]], [email("mail")], [slack("post")]
            )
        ],
    ),
    definition(
        "Large USD payments",
        "payment_intent.succeeded",
        [[money("amount", "gt", 5000, "usd")]],
        [email("mail")],
    ),
    definition(
        "Large payments, USD or JPY",
        "payment_intent.succeeded",
        [[money("amount", "gt", 5000, "usd")], [money("amount", "gt", 3000, "jpy")]],
        [slack("post")],
    ),
    definition("Welcome", "customer.created", steps=[email("mail")]),
    definition(
        "Japanese customers",
        "customer.created",
        [[{"field": "trigger.data.object.email", "op": "contains", "value": "example.jp"}]],
        [slack("post")],
    ),
    definition(
        "Failed invoices",
        "invoice.payment_failed",
        steps=[branch("due_big", [[money("amount_due", "gte", 4000, "usd")]], [slack("post")], [])],
    ),
    definition(
        "Refund USD and JPY charges",
        "charge.succeeded",
        [[{"field": "trigger.data.object.currency", "op": "in", "value": ["usd", "jpy"]}]],
        [refund()],
        CAPS,
    ),
]
TYPES = [
    "charge.succeeded",
    "charge.succeeded",
    "payment_intent.succeeded",
    "customer.created",
    "invoice.payment_failed",
]
CURRENCIES = ["usd", "jpy", "eur"]


def thousand_events(own_workflow_id):
    """1,000 events of the last three days, and 20 older ones no replay of 7 days sees."""
    events = []
    for i in range(1020):
        event_type = TYPES[i % 5]
        currency = CURRENCIES[i % 3]
        amount = (i * 37) % 9000 + 100
        created = NOW - 3 * 86400 + i if i < 1000 else NOW - 30 * 86400 + i
        key = None
        if event_type == "charge.succeeded":
            obj = {"id": f"ch_{i:06d}", "object": "charge", "amount": amount, "currency": currency}
            if i % 50 == 1:  # caused by the last workflow's own refund
                key = f"kanri-{own_workflow_id}-{i}-refund"
        elif event_type == "payment_intent.succeeded":
            obj = {"id": f"pi_{i:06d}", "object": "payment_intent", "amount": amount}
            obj["currency"] = currency
        elif event_type == "customer.created":
            domain = "example.jp" if i % 4 == 0 else "example.com"
            obj = {"id": f"cus_{i:06d}", "object": "customer", "email": f"c{i}@{domain}"}
        else:
            obj = {"id": f"in_{i:06d}", "object": "invoice", "amount_due": amount}
            obj["currency"] = currency
        events.append(stripe_event_dict(f"evt_{i:06d}", event_type, obj, created, key))
    return events


def expectation(events, own_workflow_id):
    """What each of the ten workflows would do, computed from the data directly."""
    recent = [e for e in events if e["created"] > NOW - 7 * 86400]

    def of(event_type):
        return [e["data"]["object"] for e in recent if e["type"] == event_type]

    charges = of("charge.succeeded")
    own = [
        e["data"]["object"]
        for e in recent
        if (e["request"]["idempotency_key"] or "").startswith(f"kanri-{own_workflow_id}-")
    ]
    not_own = [c for c in charges if c not in own]
    intents, customers, invoices = (
        of("payment_intent.succeeded"),
        of("customer.created"),
        of("invoice.payment_failed"),
    )

    def total(objs, currency):
        return sum(o["amount"] for o in objs if o["currency"] == currency)

    small_usd = [c for c in charges if c["currency"] == "usd" and c["amount"] < 1000]
    small_jpy = [c for c in charges if c["currency"] == "jpy" and c["amount"] < 2000]
    eur = [c for c in charges if c["currency"] == "eur"]
    big_usd = [c for c in charges if c["currency"] == "usd" and c["amount"] > 5000]
    refund_all = [c for c in not_own if c["currency"] in ("usd", "jpy")]
    return [
        {"matched": len(small_usd), "of": len(charges), "money": {"usd": total(small_usd, "usd")}},
        {"matched": len(small_jpy), "of": len(charges), "money": {"jpy": total(small_jpy, "jpy")}},
        {
            "matched": len(charges),
            "of": len(charges),
            "branches": {"is_big": (len(big_usd), len(charges) - len(big_usd))},
        },
        {
            "matched": len(eur),
            "of": len(charges),
            "branches": {
                "small": (
                    sum(c["amount"] <= 2000 for c in eur),
                    sum(c["amount"] > 2000 for c in eur),
                )
            },
        },
        {
            "matched": sum(i["currency"] == "usd" and i["amount"] > 5000 for i in intents),
            "of": len(intents),
        },
        {
            "matched": sum(
                (i["currency"] == "usd" and i["amount"] > 5000)
                or (i["currency"] == "jpy" and i["amount"] > 3000)
                for i in intents
            ),
            "of": len(intents),
        },
        {"matched": len(customers), "of": len(customers)},
        {"matched": sum("example.jp" in c["email"] for c in customers), "of": len(customers)},
        {
            "matched": len(invoices),
            "of": len(invoices),
            "branches": {
                "due_big": (
                    sum(i["currency"] == "usd" and i["amount_due"] >= 4000 for i in invoices),
                    sum(not (i["currency"] == "usd" and i["amount_due"] >= 4000) for i in invoices),
                )
            },
        },
        {
            "matched": len(refund_all),
            "of": len(charges),
            "own": len(own),
            "money": {"jpy": total(refund_all, "jpy"), "usd": total(refund_all, "usd")},
        },
    ]


def shown(amount, currency):
    """Money as the report shows it, written out by hand: $1,234.56, ¥1,500."""
    if currency == "jpy":
        return f"¥{amount:,}"
    return f"${amount // 100:,}.{amount % 100:02d}"


def block(workflow, expected):
    """The dry run's lines for one workflow, as the expectation says."""
    lines = [
        f"Workflow {workflow.pk} “{workflow.name}” ({workflow.event_type})",
        f"  events matched: {expected['matched']} of {expected['of']}",
    ]
    if expected.get("own"):
        lines.append(f"  caused by its own Stripe writes (skipped): {expected['own']}")
    for name, (then, otherwise) in expected.get("branches", {}).items():
        lines.append(f"  branch {name}: then {then}, else {otherwise}")
    moved = {c: a for c, a in expected.get("money", {}).items()}
    if moved:
        text = ", ".join(shown(moved[c], c) for c in sorted(moved))
        lines.append(f"  money that would move: {text}")
        lines.append(f"    Would have refunded {expected['matched']} charges, {text}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def ten_workflows(db):
    return [create_workflow(d, status=Workflow.Status.ACTIVE) for d in TEN_WORKFLOWS]


def test_a_dry_run_over_1000_events_and_10_workflows_prints_the_hand_computed_totals(
    ten_workflows, fake_stripe, fake_slack, smtp_server, tmp_path
):
    events = thousand_events(ten_workflows[-1].pk)
    store(events)
    expected = expectation(events, ten_workflows[-1].pk)
    report = tmp_path / "would.json"
    started = time.monotonic()

    out, err = run_command("--since", "7d", "--dry-run", "--report", str(report))

    assert time.monotonic() - started < 20
    assert err == ""
    for workflow, want in zip(ten_workflows, expected, strict=True):
        assert block(workflow, want) in out
    usd = sum(w.get("money", {}).get("usd", 0) for w in expected)
    jpy = sum(w.get("money", {}).get("jpy", 0) for w in expected)
    runs = sum(w["matched"] for w in expected)
    assert out.splitlines()[-1] == (
        f"Dry run: 1000 stored event(s), 10 workflow(s), {runs} run(s) would start, "
        f"{shown(jpy, 'jpy')}, {shown(usd, 'usd')} would move; nothing was sent or written; "
        f"report written to {report}."
    )
    # Every matched run's every step is in the report, and nothing happened anywhere.
    rows = json.loads(report.read_text())
    steps_per_run = [1, 1, 1, 1, 1, 1, 1, 1, 0, 1]
    due_big_then = expected[8]["branches"]["due_big"][0]
    assert (
        len(rows)
        == sum(w["matched"] * n for w, n in zip(expected, steps_per_run, strict=True))
        + due_big_then
    )
    assert Run.objects.count() == 0 and RunStep.objects.count() == 0
    assert fake_stripe.requests() == []
    assert fake_slack.messages() == []
    assert smtp_server.messages == []


def test_the_dry_run_reports_every_request_as_csv_and_json(db, tmp_path):
    workflow = create_workflow(TEN_WORKFLOWS[0], status=Workflow.Status.ACTIVE)
    store(
        [
            stripe_event_dict(
                "evt_small",
                "charge.succeeded",
                {"id": "ch_small", "object": "charge", "amount": 500, "currency": "usd"},
                NOW - 60,
            ),
            stripe_event_dict(
                "evt_large",
                "charge.succeeded",
                {"id": "ch_large", "object": "charge", "amount": 5000, "currency": "usd"},
                NOW - 30,
            ),
        ]
    )
    request = {
        "method": "post",
        "path": "/v1/refunds",
        "params": {
            "charge": "ch_small",
            "amount": 500,
            "metadata": {"kanri_run": "", "kanri_step": "kanri-preview-refund"},
        },
        "idempotency_key": "kanri-preview-refund",
        "currency": "usd",
    }

    run_command("--since", "1d", "--dry-run", "--report", str(tmp_path / "r.json"))
    run_command("--since", "1d", "--dry-run", "--report", str(tmp_path / "r.csv"))

    assert json.loads((tmp_path / "r.json").read_text()) == [
        {
            "workflow_id": workflow.pk,
            "workflow": "Refund small USD charges",
            "event": "evt_small",
            "event_type": "charge.succeeded",
            "step": "refund",
            "kind": "stripe.create_refund",
            "request": request,
        }
    ]
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["workflow_id", "workflow", "event", "event_type", "step", "kind", "request"],
        [
            str(workflow.pk),
            "Refund small USD charges",
            "evt_small",
            "charge.succeeded",
            "refund",
            "stripe.create_refund",
            json.dumps(request, sort_keys=True),
        ],
    ]


def test_a_dry_run_of_a_named_draft_rehearses_its_draft(db):
    draft = create_workflow(TEN_WORKFLOWS[0])  # never activated
    store(
        [
            stripe_event_dict(
                "evt_1",
                "charge.succeeded",
                {"id": "ch_1", "object": "charge", "amount": 250, "currency": "usd"},
                NOW - 60,
            )
        ]
    )

    out, _ = run_command("--workflow", draft.name, "--dry-run")

    assert f"Workflow {draft.pk} “Refund small USD charges” (charge.succeeded)\n" in out
    assert "  events matched: 1 of 1\n" in out
    assert "    Would have refunded 1 charge, $2.50\n" in out
    assert not Run.objects.exists()


# ---------------------------------------------------------------- the real replay


@pytest.fixture
def slack_on_charges(db):
    return create_workflow(
        definition(
            "Charges to Slack",
            "charge.succeeded",
            [[money("amount", "gte", 1000, "usd")]],
            [slack("post", "Charge {{trigger.data.object.id}}")],
        ),
        status=Workflow.Status.ACTIVE,
    )


def charge_events(count):
    return [
        stripe_event_dict(
            f"evt_c{i}",
            "charge.succeeded",
            {"id": f"ch_c{i}", "object": "charge", "amount": 1000 + i, "currency": "usd"},
            NOW - 600 + i,
        )
        for i in range(count)
    ]


def test_a_replay_runs_the_events_that_never_ran_once_and_skips_those_that_did(
    slack_on_charges, fake_slack, django_capture_on_commit_callbacks
):
    events = charge_events(5)
    store(events)
    with django_capture_on_commit_callbacks(execute=True):  # two ran live before the outage
        for event in events[:2]:
            start_runs(stripe_event.from_event(event))
    assert len(fake_slack.messages()) == 2

    with django_capture_on_commit_callbacks(execute=True):
        out, err = run_command("--since", "1d")

    assert err == ""
    assert out.splitlines()[-1] == (
        "Replayed 5 stored event(s): 3 run(s) started, 2 (workflow, event) pair(s) had already run."
    )
    assert f"Workflow {slack_on_charges.pk} “Charges to Slack”: 3 run(s) started\n" in out
    assert sorted(Run.objects.values_list("trigger_key", "trigger_kind", "status")) == [
        ("evt_c0", TriggerKind.STRIPE_EVENT, "succeeded"),
        ("evt_c1", TriggerKind.STRIPE_EVENT, "succeeded"),
        ("evt_c2", TriggerKind.REPLAY, "succeeded"),
        ("evt_c3", TriggerKind.REPLAY, "succeeded"),
        ("evt_c4", TriggerKind.REPLAY, "succeeded"),
    ]
    assert [m["text"] for m in fake_slack.messages()] == [f"Charge ch_c{i}" for i in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run_command("--since", "1d")

    assert out.splitlines()[-1] == (
        "Replayed 5 stored event(s): 0 run(s) started, 5 (workflow, event) pair(s) had already run."
    )
    assert Run.objects.count() == 5
    assert len(fake_slack.messages()) == 5


def test_a_replay_keeps_to_the_workflows_types_ids_and_period_asked(
    slack_on_charges, fake_slack, django_capture_on_commit_callbacks
):
    other = create_workflow(
        definition("Also charges", "charge.succeeded", steps=[slack("post")]),
        status=Workflow.Status.ACTIVE,
    )
    events = charge_events(4)
    events[3]["created"] = NOW - 10 * 86400  # outside --since 7d
    store(events)

    with django_capture_on_commit_callbacks(execute=True):
        run_command(
            "--since", "7d", "--ids", "evt_c0", "evt_c1", "evt_c3", "--workflow", other.name
        )
        run_command("--since", "7d", "--type", "customer.created")

    assert sorted(Run.objects.values_list("workflow_id", "trigger_key")) == [
        (other.pk, "evt_c0"),
        (other.pk, "evt_c1"),
    ]


def test_a_replay_never_starts_a_workflow_on_its_own_stripe_writes(
    slack_on_charges, fake_slack, django_capture_on_commit_callbacks
):
    [event] = charge_events(1)
    event["request"]["idempotency_key"] = f"kanri-{slack_on_charges.pk}-7-refund"
    store([event])

    with django_capture_on_commit_callbacks(execute=True):
        run_command("--since", "1d")

    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workflow", "No such workflow"], "No workflow 'No such workflow'."),
        (
            ["--since", "yesterday"],
            "'yesterday' is neither a period (7d, 24h, 30m) nor an ISO date.",
        ),
        (["--report", "out.csv"], "--report goes with --dry-run."),
        (["--dry-run", "--report", "out.txt"], "--report must name a .csv or .json file."),
    ],
)
def test_it_exits_non_zero_on_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run_command(*args)


def test_replaying_a_paused_workflow_is_refused_but_a_dry_run_of_it_is_not(slack_on_charges):
    slack_on_charges.status = Workflow.Status.PAUSED
    slack_on_charges.save()

    with pytest.raises(CommandError, match="is not active"):
        run_command("--workflow", str(slack_on_charges.pk))
    out, _ = run_command("--workflow", str(slack_on_charges.pk), "--dry-run")
    assert "events matched: 0 of 0" in out


def test_no_progress_bar_is_drawn_when_stdout_is_not_a_terminal(slack_on_charges):
    store(charge_events(3))

    out, _ = run_command("--since", "1d", "--dry-run")

    assert "Rehearsing: 3/3\n" in out
    assert "\r" not in out and "it/s" not in out


# ---------------------------------------------------------------- the admin's Backtest


def test_the_backtest_page_shows_what_a_draft_would_have_done_over_the_last_days(
    db, client, fake_stripe, fake_slack
):
    editor = staff_user("approver")
    workflow = create_workflow(
        definition(
            "Refund small charges",
            "charge.succeeded",
            [[money("amount", "lt", 1000, "usd")]],
            [branch("tiny", [[money("amount", "lt", 300, "usd")]], [refund()], [slack("post")])],
            CAPS,
        )
    )
    store(
        [
            stripe_event_dict(
                f"evt_b{i}",
                "charge.succeeded",
                {"id": f"ch_b{i}", "object": "charge", "amount": amount, "currency": "usd"},
                NOW - 86400 * days,
            )
            for i, (amount, days) in enumerate([(100, 1), (250, 2), (900, 3), (5000, 1), (200, 10)])
        ]
    )
    client.force_login(editor)

    change = client.get(reverse("admin:automations_workflow_change", args=[workflow.pk]))
    url = reverse("admin:automations_workflow_backtest", args=[workflow.pk])
    assert f'href="{url}"' in change.content.decode()
    form = client.get(url)
    assert form.status_code == 200
    assert 'name="days"' in form.content.decode() and 'value="7"' in form.content.decode()
    assert "kanri-backtest-verdict" not in form.content.decode()

    page = client.get(url, {"days": "7"})

    html = page.content.decode()
    assert page.context["result"]["matched"] == 3
    assert page.context["result"]["considered"] == 4
    assert "3 of 4 stored events would have started a run." in html
    assert "Would have refunded 2 charges, $3.50" in html
    assert page.context["result"]["branches"] == [{"name": "tiny", "then": 2, "else": 1}]
    assert [e["id"] for e in page.context["result"]["events"]] == ["evt_b2", "evt_b1", "evt_b0"]
    assert "/v1/refunds" in html and "ch_b0" in html
    assert fake_stripe.requests() == [] and fake_slack.messages() == []
    assert not Run.objects.exists()

    wider = client.get(url, {"days": "30"})
    assert wider.context["result"]["matched"] == 4
    assert "Would have refunded 3 charges, $5.50" in wider.content.decode()


def test_the_backtest_page_refuses_bad_days_and_explains_other_triggers(db, client):
    client.force_login(staff_user("editor"))
    workflow = create_workflow(TEN_WORKFLOWS[6])
    manual = create_workflow(
        {
            "name": "On selected charges",
            "trigger": {"kind": "manual", "object": "charge"},
            "conditions": [],
            "steps": [slack("post")],
        }
    )

    bad = client.get(
        reverse("admin:automations_workflow_backtest", args=[workflow.pk]), {"days": "0"}
    )
    other = client.get(reverse("admin:automations_workflow_backtest", args=[manual.pk]))

    assert bad.context["result"] is None
    assert "errorlist" in bad.content.decode()
    assert other.context["unsupported"] is True
    assert "only a workflow started by a Stripe event can be" in other.content.decode()
    assert "kanri-backtest-form" not in other.content.decode()


def test_a_viewer_cannot_open_the_backtest(db, client):
    client.force_login(staff_user("viewer"))
    workflow = create_workflow(TEN_WORKFLOWS[6])

    response = client.get(reverse("admin:automations_workflow_backtest", args=[workflow.pk]))

    assert response.status_code == 403


def test_events_older_than_the_run_retention_are_not_replayed(
    slack_on_charges, fake_slack, settings, django_capture_on_commit_callbacks
):
    # Their runs may have been pruned: Kanri can no longer tell whether they already ran.
    settings.KANRI_RUN_RETENTION_DAYS = 30
    events = charge_events(3)
    events[0]["created"] = NOW - 31 * 86400
    store(events)

    with django_capture_on_commit_callbacks(execute=True):
        out, err = run_command("--since", "60d")

    assert err.startswith("1 event(s) older than the run retention period (30 days)")
    assert out.splitlines()[-1].startswith("Replayed 2 stored event(s): 2 run(s) started")
    assert sorted(Run.objects.values_list("trigger_key", flat=True)) == ["evt_c1", "evt_c2"]
