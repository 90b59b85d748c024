"""Scenario C, bulk refund to store credit: staff select charges (the Payments list, or a CSV
of charge ids for `manage.py store_credit`) and each charge's customer gets store credit
worth it, once, with a report of what happened to every charge.

Charges and customers are mirror rows (tests/stripe_objects.py); the fake Stripe holds the
customers the actions write to, and the charges as seeded objects (the workflow marks
them), so fifty charges take a second, not a minute.
"""

# Japanese text uses full-width brackets and colons, which is what customers read.
# ruff: noqa: RUF001

import csv
import io
import time
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from time_machine import travel

from automations import store_credit, workflows
from automations.engine import keys
from automations.engine.runner import RETRY_DELAYS
from automations.models import Batch, Run, RunStep
from automations.tasks import retry_due_runs
from integrations import stripe_client
from integrations.stripe_events import as_dict
from tests import stripe_objects
from tests.admin_helpers import staff_user
from tests.builders import create_customer, create_workflow

HEADER = [
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
# Tokyo business time: 2027-03-01 10:00 JST. 365 days later is 2028-02-29 (a leap year),
# and a code is valid to the end of that day, 23:59:59 JST.
NOW = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
LAST_DAY = "2028-02-29"
EXPIRES_AT = int(datetime(2028, 2, 29, 14, 59, 59, tzinfo=UTC).timestamp())


def buyer(email, locales=("en-US",), name="Taro Yamada"):
    """A customer in the fake Stripe and in the mirror, under the same id."""
    made = create_customer(email=email, name=name, preferred_locales=list(locales))
    return stripe_objects.customer(
        email=email, name=name, id=made["id"], preferred_locales=list(locales)
    )


def paid(amount, currency, customer, booking):
    return stripe_objects.charge(
        amount, currency, customer=customer, metadata={"booking_id": booking}
    )


def seed(fake_stripe, charges):
    """Put the charges in the fake Stripe too, where the workflow marks them."""
    fake_stripe.seed(*(charge.stripe_data for charge in charges))


def active(form="balance"):
    return create_workflow(store_credit.preset(form=form), status="active")


def report_csv(batch):
    out = io.StringIO()
    store_credit.write_csv(store_credit.report(batch), out)
    return list(csv.reader(io.StringIO(out.getvalue())))


def balance_transactions(customer_id):
    page = stripe_client.get_client().v1.customers.balance_transactions.list(
        customer_id, params={"limit": 100}
    )
    return as_dict(page)["data"]


def credit_posts(fake_stripe):
    return [
        r
        for r in fake_stripe.requests(path="/v1/customers/", method="POST")
        if r["path"].endswith("/balance_transactions")
    ]


@pytest.fixture
def run_now(django_capture_on_commit_callbacks):
    """Call `fn` and carry out the runs it queues, as the worker would."""

    def call(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


@pytest.fixture
def tokyo(settings):
    settings.TIME_ZONE = "Asia/Tokyo"


# ---------------------------------------------------------------- fifty charges


def test_fifty_charges_are_credited_once_skipping_one_without_a_customer_and_retrying_one(
    db, fake_stripe, smtp_server, run_now
):
    customers = [buyer(f"buyer{n}@example.test") for n in range(49)]
    charges = [paid(1000 + n, "jpy", customer, f"B-{n}") for n, customer in enumerate(customers)]
    nobody = stripe_objects.charge(2000, "jpy", metadata={"booking_id": "B-none"})
    selected = [*charges[:20], nobody, *charges[20:]]
    seed(fake_stripe, selected)
    flaky = customers[7]
    fake_stripe.fail(f"/v1/customers/{flaky.id}/balance_transactions", status=500, times=1)
    workflow = active("balance")

    result = run_now(workflows.run_on, workflow, [c.id for c in selected])

    assert (len(result["started"]), result["not_started"], result["missing"]) == (49, 1, [])
    waiting = Run.objects.get(status=Run.Status.RETRYING)
    assert waiting.snapshot["data"]["object"]["id"] == charges[7].id
    batch = Batch.objects.get(pk=result["batch"])
    assert report_csv(batch)[8] == [
        charges[7].id,
        flaky.id,
        flaky.email,
        str(charges[7].stripe_data["amount"]),
        "jpy",
        "",
        "",
        "",
        "pending",
        "Step 'credit' failed (attempt 1): Stripe 500 APIError: Injected failure",
    ]
    later = time.time() + RETRY_DELAYS[0] + 1
    with travel(later, tick=False):
        assert run_now(retry_due_runs) == 1
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.SUCCEEDED}

    # One balance transaction per customer; the flaky one was asked twice, answered once.
    posts = credit_posts(fake_stripe)
    assert len(posts) == 50
    assert [p.get("fault") for p in posts if flaky.id in p["path"]] == [500, None]
    credits = {}
    for charge, customer in zip(charges, customers, strict=True):
        [made] = balance_transactions(customer.id)
        run = Run.objects.get(trigger_key=keys.manual_key(charge.id))
        key = keys.step_key(workflow.pk, run.pk, "credit")
        assert (made["amount"], made["currency"], made["description"]) == (
            -charge.stripe_data["amount"],
            "jpy",
            f"Store credit for {charge.id}",
        )
        assert made["metadata"] == {
            "booking_id": charge.stripe_data["metadata"]["booking_id"],
            "kanri_charge": charge.id,
            "kanri_run": str(run.pk),
            "kanri_step": key,
        }
        assert made["ending_balance"] == -charge.stripe_data["amount"]
        credits[charge.id] = made["id"]
    flaky_keys = [p["idempotency_key"] for p in posts if flaky.id in p["path"]]
    flaky_run = Run.objects.get(trigger_key=keys.manual_key(charges[7].id))
    assert flaky_keys == [keys.step_key(workflow.pk, flaky_run.pk, "credit") + "-balance"] * 2
    assert len(smtp_server.messages) == 49

    expected = [HEADER]
    for charge in selected:
        if charge is nobody:
            expected.append(
                [nobody.id, "", "", "2000", "jpy", "", "", "", "skipped", "no customer"]
            )
            continue
        expected.append(
            [
                charge.id,
                charge.customer_id,
                charge.customer.email,
                str(charge.stripe_data["amount"]),
                "jpy",
                "balance",
                credits[charge.id],
                "",
                "credited",
                "",
            ]
        )
    assert report_csv(batch) == expected

    # Asked again: nothing is credited, and every charge says why.
    sent_before = len(fake_stripe.requests(method="POST"))
    again = run_now(workflows.run_on, workflow, [c.id for c in selected])

    assert again["started"] == []
    assert len(fake_stripe.requests(method="POST")) == sent_before
    assert len(smtp_server.messages) == 49
    rows = report_csv(Batch.objects.get(pk=again["batch"]))
    assert rows[0] == HEADER
    assert rows[21] == [nobody.id, "", "", "2000", "jpy", "", "", "", "skipped", "no customer"]
    for row, charge in zip(rows[1:], selected, strict=True):
        if charge is nobody:
            continue
        first = Run.objects.get(trigger_key=keys.manual_key(charge.id))
        assert row == [
            charge.id,
            charge.customer_id,
            charge.customer.email,
            str(charge.stripe_data["amount"]),
            "jpy",
            "balance",
            credits[charge.id],
            "",
            "skipped",
            f"already credited (run {first.pk})",
        ]


def test_a_credit_failing_for_good_is_reported_with_the_runs_error(
    db, fake_stripe, smtp_server, run_now
):
    customer = buyer("hana@example.test")
    charge = paid(1500, "jpy", customer, "B-1")
    seed(fake_stripe, [charge])
    fake_stripe.fail(
        f"/v1/customers/{customer.id}/balance_transactions",
        status=400,
        type="invalid_request_error",
        code="invalid_currency",
        message="This customer's balance is kept in usd.",
    )

    result = run_now(workflows.run_on, active("balance"), [charge.id, "ch_not_in_the_mirror"])

    rows = report_csv(Batch.objects.get(pk=result["batch"]))
    assert rows[1] == [
        charge.id,
        customer.id,
        "hana@example.test",
        "1500",
        "jpy",
        "",
        "",
        "",
        "failed",
        "Step 'credit' failed: Stripe 400 InvalidRequestError (invalid_currency): "
        "This customer's balance is kept in usd.",
    ]
    assert rows[2] == [
        "ch_not_in_the_mirror",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "failed",
        "charge not found",
    ]
    assert smtp_server.messages == []


def test_a_retry_of_a_credit_whose_answer_was_lost_replays_it_instead_of_crediting_twice(
    db, fake_stripe, smtp_server, run_now
):
    customer = buyer("hana@example.test")
    charge = paid(1500, "jpy", customer, "B-1")
    seed(fake_stripe, [charge])
    # Stripe credited, but the answer never arrived.
    fake_stripe.fail(f"/v1/customers/{customer.id}/balance_transactions", after=True)

    run_now(workflows.run_on, active("balance"), [charge.id])
    with travel(time.time() + RETRY_DELAYS[0] + 1, tick=False):
        run_now(retry_due_runs)

    assert Run.objects.get().status == Run.Status.SUCCEEDED
    assert len(balance_transactions(customer.id)) == 1
    posts = credit_posts(fake_stripe)
    assert [(p.get("fault"), p.get("replayed", False)) for p in posts] == [
        (500, False),
        (None, True),
    ]


def test_a_step_resumed_after_the_idempotency_window_finds_its_credit_instead_of_crediting_again(
    db, fake_stripe, smtp_server, run_now
):
    customer = buyer("hana@example.test")
    charge = paid(1500, "jpy", customer, "B-1")
    seed(fake_stripe, [charge])
    fake_stripe.fail(f"/v1/customers/{customer.id}/balance_transactions", after=True)

    run_now(workflows.run_on, active("balance"), [charge.id])
    with travel(time.time() + 25 * 3600, tick=False):
        run_now(retry_due_runs)

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    [made] = balance_transactions(customer.id)
    credit = run.steps.get(step_name="credit", status=RunStep.Status.SUCCEEDED)
    assert credit.output["credit_id"] == made["id"]
    # It listed the customer's credits and found its own: no second POST.
    assert len(credit_posts(fake_stripe)) == 1


# ---------------------------------------------------------------- promotion codes and email


def test_a_promotion_code_resumed_after_the_idempotency_window_keeps_its_coupon(
    db, fake_stripe, smtp_server, run_now
):
    customer = buyer("hana@example.test")
    charge = paid(1500, "jpy", customer, "B-1")
    seed(fake_stripe, [charge])
    fake_stripe.fail("/v1/promotion_codes", status=500)  # the coupon was made, the code not

    run_now(workflows.run_on, active("promotion_code"), [charge.id])
    with travel(time.time() + 25 * 3600, tick=False):
        run_now(retry_due_runs)

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    key = keys.step_key(run.workflow_id, run.pk, "credit")
    writes = [
        (r["path"], r.get("fault"))
        for r in fake_stripe.requests(method="POST")
        if r["path"] in ("/v1/coupons", "/v1/promotion_codes")
    ]
    # The coupon was found by its id (the step's key) and not asked for again.
    assert writes == [
        ("/v1/coupons", None),
        ("/v1/promotion_codes", 500),
        ("/v1/promotion_codes", None),
    ]
    assert fake_stripe.requests(path=f"/v1/coupons/{key}", method="GET") != []
    codes = stripe_client.get_client().v1.promotion_codes.list(params={"coupon": key})
    assert len(codes.data) == 1


def test_the_promotion_code_form_makes_a_one_time_coupon_and_a_code_for_the_customer_only(
    db, fake_stripe, smtp_server, run_now, tokyo
):
    customer = buyer("hana@example.test")
    charge = paid(1500, "jpy", customer, "B-7")
    seed(fake_stripe, [charge])
    workflow = active("promotion_code")

    with travel(NOW, tick=False):
        result = run_now(workflows.run_on, workflow, [charge.id])

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    key = keys.step_key(workflow.pk, run.pk, "credit")
    client = stripe_client.get_client()
    coupon = as_dict(client.v1.coupons.retrieve(key))
    assert {
        k: coupon[k] for k in ("amount_off", "currency", "duration", "max_redemptions", "redeem_by")
    } == {
        "amount_off": 1500,
        "currency": "jpy",
        "duration": "once",
        "max_redemptions": 1,
        "redeem_by": EXPIRES_AT,
    }
    assert coupon["metadata"]["booking_id"] == "B-7"
    [code] = as_dict(client.v1.promotion_codes.list(params={"coupon": key}))["data"]
    assert {
        k: code[k] for k in ("active", "customer", "expires_at", "max_redemptions", "promotion")
    } == {
        "active": True,
        "customer": customer.id,
        "expires_at": EXPIRES_AT,
        "max_redemptions": 1,
        "promotion": {"type": "coupon", "coupon": key},
    }
    assert code["metadata"] == {
        "booking_id": "B-7",
        "kanri_charge": charge.id,
        "kanri_run": str(run.pk),
        "kanri_step": key,
    }
    writes = [
        (r["path"], r["idempotency_key"])
        for r in fake_stripe.requests(method="POST")
        if r["path"] in ("/v1/coupons", "/v1/promotion_codes")
    ]
    assert writes == [
        ("/v1/coupons", f"{key}-coupon"),
        ("/v1/promotion_codes", f"{key}-promotion_code"),
    ]
    marked = as_dict(client.v1.charges.retrieve(charge.id))["metadata"]
    assert (marked["booking_id"], marked["kanri_credit"], marked["kanri_credit_code"]) == (
        "B-7",
        code["id"],
        code["code"],
    )
    assert report_csv(Batch.objects.get(pk=result["batch"]))[1] == [
        charge.id,
        customer.id,
        "hana@example.test",
        "1500",
        "jpy",
        "promotion_code",
        code["code"],
        "2028-02-29T14:59:59+00:00",
        "credited",
        "",
    ]
    credit = run.steps.get(step_name="credit")
    assert (credit.amount, credit.currency) == (1500, "jpy")  # counted against the caps


def test_the_customer_is_emailed_the_amount_code_and_expiry_in_japanese_or_english(
    db, fake_stripe, smtp_server, run_now, tokyo
):
    hanako = buyer("hanako@example.test", locales=["ja-JP"], name="佐藤 花子")
    john = buyer("john@example.test", locales=[], name="John Smith")
    in_yen = paid(1500, "jpy", hanako, "B-1")
    in_dollars = paid(2000, "usd", john, "B-2")
    unreachable = paid(3000, "usd", buyer(None, name="No Mail"), "B-3")
    seed(fake_stripe, [in_yen, in_dollars, unreachable])

    with travel(NOW, tick=False):
        result = run_now(
            workflows.run_on,
            active("promotion_code"),
            [in_yen.id, in_dollars.id, unreachable.id],
        )

    codes = {
        run.snapshot["data"]["object"]["id"]: run.steps.get(step_name="credit").output["code"]
        for run in Run.objects.all()
    }
    mail = {rcpts[0]: message for _sender, rcpts, message in smtp_server.messages}
    assert sorted(mail) == ["hanako@example.test", "john@example.test"]
    japanese, english = mail["hanako@example.test"], mail["john@example.test"]
    # A long encoded subject is folded onto the next line; unfolded, it starts with the
    # fold's space, which mail clients do not show.
    assert japanese["Subject"].lstrip() == "ストアクレジット（¥1,500）のお知らせ"
    assert japanese.get_content() == (
        "いつもご利用いただきありがとうございます。\n"
        "\n"
        "お支払い（¥1,500）について、カードへの返金に代えて、¥1,500分のストア"
        "クレジットをご用意しました。\n"
        "\n"
        f"クーポンコード：{codes[in_yen.id]}\n"
        f"ご利用期限：{LAST_DAY}\n"
        "\n"
        "このコードはお客様ご本人のみ、1回に限りご利用いただけます。\n"
        "\n"
        "ご理解のほど、よろしくお願いいたします。\n"
    )
    assert english["Subject"] == "Your store credit of $20.00"
    assert english.get_content() == (
        "Hello,\n"
        "\n"
        "Instead of a refund to your card, we have given you store credit of $20.00 for "
        "your payment of $20.00.\n"
        "\n"
        f"Your code: {codes[in_dollars.id]}\n"
        f"Use it by: {LAST_DAY}\n"
        "\n"
        "Only you can use this code, once.\n"
        "\n"
        "Thank you for your patience.\n"
    )
    # A customer without an address keeps the credit; the report shows no address.
    [row] = [r for r in report_csv(Batch.objects.get(pk=result["batch"])) if r[0] == unreachable.id]
    assert (row[2], row[5], row[6], row[8]) == (
        "",
        "promotion_code",
        codes[unreachable.id],
        "credited",
    )


def test_the_template_installs_as_a_draft_that_an_approver_activates(db):
    from automations.models import Workflow

    call_command("install_templates", "refund_as_store_credit", stdout=io.StringIO())
    workflow = Workflow.objects.get(name="Refund as store credit")

    assert workflow.status == Workflow.Status.DRAFT
    assert workflows.status(workflow)["problems"] == []
    with pytest.raises(workflows.NotAllowed):
        workflows.activate(workflow, staff_user("editor"))
    approver = staff_user("approver")
    workflows.activate(workflow, approver)
    workflow.refresh_from_db()
    assert store_credit.credit_workflows() == [{"id": workflow.pk, "name": workflow.name}]
    client = Client()
    client.force_login(approver)
    editor = client.get(f"/admin/automations/workflow/{workflow.pk}/change/")
    assert editor.status_code == 200
    assert "stripe.store_credit" in editor.content.decode()


# ---------------------------------------------------------------- the admin action


class FormFields(HTMLParser):
    """The fields a browser would submit from one form of a page."""

    def __init__(self, form_id):
        super().__init__()
        self.form_id, self.inside, self.select = form_id, False, None
        self.fields = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        elif self.inside and tag == "input" and attrs.get("name"):
            if attrs.get("type") not in ("submit", "checkbox") or "checked" in attrs:
                self.fields.append((attrs["name"], attrs.get("value", "")))
        elif self.inside and tag == "select":
            self.select = attrs.get("name")
        elif self.inside and tag == "option" and self.select and "selected" in attrs:
            self.fields.append((self.select, attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def submitted(response, form_id="kanri-confirm-form"):
    parser = FormFields(form_id)
    parser.feed(response.content.decode())
    data = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    return data


def choose(client, charges):
    return client.post(
        "/admin/djstripe/charge/",
        {"action": "refund_as_store_credit", "_selected_action": [c.pk for c in charges]},
    )


def test_an_approver_credits_selected_charges_through_the_confirmation_and_downloads_the_csv(
    client, db, fake_stripe, smtp_server, run_now
):
    hanako = buyer("hanako@example.test", locales=["ja"])
    john = buyer("john@example.test")
    charges = [paid(1500, "jpy", hanako, "B-1"), paid(2500, "jpy", john, "B-2")]
    nobody = stripe_objects.charge(900, "jpy")
    seed(fake_stripe, [*charges, nobody])
    active("balance")
    client.force_login(staff_user("approver"))

    confirm = choose(client, [*charges, nobody])

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Refund 2 charge(s) as store credit?" in page
    assert "for 2 charge(s): ¥4,000 in all" in page
    assert confirm.context["skipped"] == [{"label": nobody.id, "detail": "¥900 · no customer"}]
    assert [r["object_id"] for r in confirm.context["rehearsals"]] == [c.id for c in charges]
    rehearsed = confirm.context["rehearsals"][0]["steps"][0]
    assert rehearsed["request"]["writes"][0]["params"]["amount"] == -1500
    assert credit_posts(fake_stripe) == []  # the confirmation sent nothing

    done = run_now(client.post, "/admin/djstripe/charge/", submitted(confirm))

    batch = Batch.objects.get()
    assert (done.status_code, done["Location"]) == (302, f"/admin/kanri/store-credit/{batch.pk}/")
    assert [len(balance_transactions(c.customer_id)) for c in charges] == [1, 1]
    assert set(Run.objects.values_list("started_by__username", flat=True)) == {"approver"}
    result = client.get(done["Location"])
    assert result.status_code == 200
    assert [(r["charge"], r["status"]) for r in result.context["rows"]] == [
        (charges[0].id, "credited"),
        (charges[1].id, "credited"),
        (nobody.id, "skipped"),
    ]
    assert "Download CSV" in result.content.decode()
    download = client.get(result.context["csv_url"])
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows == report_csv(batch)
    assert [row[8] for row in rows[1:]] == ["credited", "credited", "skipped"]
    assert "sk_test" not in download.content.decode() + result.content.decode()

    # Selected again: nothing is left to credit, and the page says why.
    again = choose(client, [*charges, nobody])
    runs = {r.snapshot["data"]["object"]["id"]: r.pk for r in Run.objects.all()}
    assert "Refund 0 charge(s) as store credit?" in again.content.decode()
    assert again.context["skipped"] == [
        {"label": charges[0].id, "detail": f"¥1,500 · hanako@example.test · already run "
         f"(run {runs[charges[0].id]})"},
        {"label": charges[1].id, "detail": f"¥2,500 · john@example.test · already run "
         f"(run {runs[charges[1].id]})"},
        {"label": nobody.id, "detail": "¥900 · no customer"},
    ]  # fmt: skip
    assert 'id="kanri-confirm"' not in again.content.decode()  # nothing to confirm


def test_an_editor_may_not_credit_and_a_viewer_is_not_offered_the_action(client, db, fake_stripe):
    charge = paid(1500, "jpy", buyer("hana@example.test"), "B-1")
    workflow = active("balance")
    client.force_login(staff_user("editor"))

    refused = choose(client, [charge])
    client.post(
        "/admin/djstripe/charge/",
        {
            "action": "refund_as_store_credit",
            "_selected_action": [charge.pk],
            "workflow": workflow.pk,
            "post": "yes",
        },
    )
    client.force_login(staff_user("viewer"))
    listing = client.get("/admin/djstripe/charge/")

    assert refused.status_code == 302
    assert not Run.objects.exists() and not Batch.objects.exists()
    assert "refund_as_store_credit" not in listing.content.decode()


def test_the_result_page_and_its_csv_are_for_staff_with_access_to_batches(client, db):
    batch = Batch.objects.create(
        workflow=active("balance"), token="t", object_type="charge", items=[]
    )
    urls = [f"/admin/kanri/store-credit/{batch.pk}/", f"/admin/kanri/store-credit/{batch.pk}/csv/"]

    anonymous = [client.get(url).status_code for url in urls]
    client.force_login(staff_user())
    nobody = [client.get(url).status_code for url in urls]
    client.force_login(staff_user("viewer"))
    viewer = [client.get(url).status_code for url in urls]

    assert (anonymous, nobody, viewer) == ([302, 302], [403, 403], [200, 200])


def test_a_confirmation_for_a_workflow_paused_since_runs_no_other(client, db, fake_stripe):
    charge = paid(1500, "jpy", buyer("hana@example.test"), "B-1")
    confirmed = active("balance")
    create_workflow(store_credit.preset(form="balance", name="Another"), status="active")
    workflows.pause(confirmed)
    client.force_login(staff_user("approver"))

    response = client.post(
        "/admin/djstripe/charge/",
        {
            "action": "refund_as_store_credit",
            "_selected_action": [charge.pk],
            "workflow": confirmed.pk,
            "kanri_token": "t1",
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert not Run.objects.exists() and not Batch.objects.exists()


def test_without_a_store_credit_workflow_the_action_says_how_to_get_one(client, db):
    charge = stripe_objects.charge(1500, "jpy")
    client.force_login(staff_user("approver"))

    response = choose(client, [charge])

    assert response.status_code == 302
    shown = [str(m) for m in response.wsgi_request._messages]
    assert shown == [
        "No active workflow gives store credit. Install the “Refund as store credit” "
        "template (manage.py install_templates); an approver activates it."
    ]


# ---------------------------------------------------------------- the command


def test_the_command_credits_a_csv_of_charges_and_writes_the_report(
    transactional_db, fake_stripe, smtp_server, tmp_path
):
    customer = buyer("hana@example.test")
    charges = [paid(1500, "jpy", customer, "B-1"), stripe_objects.charge(900, "jpy")]
    seed(fake_stripe, charges)
    workflow = active("balance")
    staff_user("approver", username="hana")
    ids = tmp_path / "charges.csv"
    ids.write_text(f"charge,note\n{charges[0].id},first\n{charges[1].id},no customer\n")
    report = tmp_path / "report.csv"
    out = io.StringIO()

    call_command(
        "store_credit",
        "--workflow",
        workflow.name,
        "--csv",
        str(ids),
        "--report",
        str(report),
        "--wait",
        "5",
        "--user",
        "hana",
        stdout=out,
    )

    assert out.getvalue() == (
        f"1 credited, 1 skipped, 0 failed, 0 pending; report written to {report}\n"
    )
    [made] = balance_transactions(customer.id)
    rows = list(csv.reader(report.open()))
    assert rows == [
        HEADER,
        [charges[0].id, customer.id, "hana@example.test", "1500", "jpy", "balance", made["id"],
         "", "credited", ""],
        [charges[1].id, "", "", "900", "jpy", "", "", "", "skipped", "no customer"],
    ]  # fmt: skip
    assert Run.objects.get().started_by.username == "hana"

    # The same file again, by id and without a header: nothing more is credited.
    ids.write_text(f"{charges[0].id}\n{charges[1].id}\n")
    again = io.StringIO()
    call_command(
        "store_credit",
        "--workflow",
        str(workflow.pk),
        "--csv",
        str(ids),
        "--report",
        str(report),
        stdout=again,
    )
    assert again.getvalue().startswith("0 credited, 2 skipped, 0 failed, 0 pending;")
    assert len(balance_transactions(customer.id)) == 1


def test_the_command_exits_non_zero_when_a_charge_fails(
    transactional_db, fake_stripe, smtp_server, tmp_path
):
    workflow = active("balance")
    ids = tmp_path / "charges.csv"
    ids.write_text("charge\nch_unknown\n")
    report = tmp_path / "report.csv"

    with pytest.raises(CommandError) as raised:
        call_command(
            "store_credit",
            "--workflow",
            workflow.name,
            "--csv",
            str(ids),
            "--report",
            str(report),
            stdout=io.StringIO(),
        )

    assert str(raised.value) == f"1 charge(s) failed: see {report}."
    assert list(csv.reader(report.open()))[1] == [
        "ch_unknown", "", "", "", "", "", "", "", "failed", "charge not found"
    ]  # fmt: skip


def test_the_commands_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        call_command("store_credit", "--help")

    shown = capsys.readouterr().out
    assert "example:" in shown
    assert 'manage.py store_credit --workflow "Refund as store credit" --csv charges.csv' in shown


def test_a_recording_dry_run_of_store_credit_reads_nothing_from_stripe(db, fake_stripe):
    # Backtests, replays with --dry-run and the confirmation's dry-run send nothing at all:
    # not even the customer look-ups the credit and the email make when they run for real.
    hanako = buyer("hanako@example.test", locales=["ja"])
    charge = paid(1500, "jpy", hanako, "B-1")
    fake_stripe.reset()

    report = workflows.dry_run(
        store_credit.preset(form="balance"),
        {"id": "manual", "type": "manual.charge", "data": {"object": charge.stripe_data}},
    )

    assert fake_stripe.requests() == []
    # The mirror's copy of the customer stands in: a Japanese email to her address.
    assert [(s["name"], s.get("arm"), s.get("error")) for s in report["steps"]] == [
        ("credit", None, ""),
        ("mark_charge", None, ""),
        ("customer_has_email", "then", None),
        ("customer_language", "then", None),
        ("email_ja", None, ""),
    ]
    credit, email = report["steps"][0], report["steps"][4]
    assert credit["request"]["writes"][0]["params"]["amount"] == -1500
    assert email["request"]["to"] == ["hanako@example.test"]
