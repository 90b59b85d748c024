"""Kanri's lists of Stripe data: what staff see, what they cannot do, and filters in the
query string that narrow exactly (and say so when they cannot)."""

from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from djstripe.models import Charge

from automations.admin.stripe import LISTS
from automations.triggers import manual
from tests import stripe_objects as so
from tests.admin_helpers import staff_user

TOKYO = ZoneInfo("Asia/Tokyo")
LIST_NAMES = [model._meta.model_name for model in LISTS]


@pytest.fixture
def tokyo(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    return TOKYO


def url(model_name, query=""):
    return f"/admin/djstripe/{model_name}/" + (f"?{query}" if query else "")


def listed(client, model_name, query=""):
    """Return the ids a list shows for this query string (and check it rendered)."""
    response = client.get(url(model_name, query))
    assert response.status_code == 200
    return {obj.id for obj in response.context["cl"].result_list}


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def viewer(client, db):
    client.force_login(staff_user("viewer"))
    return client


# ---------------------------------------------------------------- what staff see

# What each list shows of the row every_list() builds: its money and its customer.
SHOWN = {
    "charge": ["$25.00", "Hanako Sato", "hanako@example.test", "booking_id=B-1"],
    "paymentintent": ["$25.00", "Hanako Sato", "hanako@example.test"],
    "customer": ["Hanako Sato", "hanako@example.test", "tier=vip"],
    "subscription": ["prod_Basic · $15.00 / month", "Hanako Sato"],
    "invoice": ["$15.00", "Hanako Sato", "hanako@example.test"],
    "refund": ["$5.00", "Hanako Sato", "hanako@example.test"],
    "dispute": ["$25.00", "Hanako Sato", "hanako@example.test"],
    "earlyfraudwarning": ["made_with_stolen_card", "Hanako Sato", "hanako@example.test"],
    "event": ["charge.succeeded", "$25.00", "Hanako Sato", "hanako@example.test"],
    "webhookeventtrigger": ["charge.succeeded"],
}


@pytest.mark.parametrize("model_name", LIST_NAMES)
def test_each_list_shows_a_viewer_money_the_customer_and_local_time_with_its_zone(
    viewer, tokyo, model_name
):
    rows = so.every_list(created=so.at(2026, 11, 30, 14, 5, tz=TOKYO))
    row = rows[model_name]

    response = viewer.get(url(model_name))

    page = response.content.decode()
    assert response.status_code == 200
    assert [obj.pk for obj in response.context["cl"].result_list] == [row.pk]
    assert str(row.id) in page
    assert "2026-11-30 14:05 JST" in page
    for text in SHOWN[model_name]:
        assert text in page


@pytest.mark.parametrize("model_name", LIST_NAMES)
def test_each_detail_page_opens_read_only_for_a_viewer(viewer, tokyo, model_name):
    row = so.every_list(created=so.at(2026, 11, 30, 14, 5, tz=TOKYO))[model_name]

    response = viewer.get(url(model_name) + f"{row.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert response.templates[0].name == "admin/kanri/stripe/detail.html"
    assert str(row.id) in page
    assert "2026-11-30 14:05 JST" in page
    assert "<form" not in page.split('id="content-main"')[1]  # nothing to submit


def test_a_payment_detail_lists_its_stripe_fields_and_links_to_its_customer(viewer, tokyo):
    rows = so.every_list(created=so.at(2026, 11, 30, 14, 5, tz=TOKYO))
    charge, buyer = rows["charge"], rows["customer"]

    response = viewer.get(url("charge") + f"{charge.pk}/change/")

    shown = {r["label"]: (r["value"], r["url"]) for r in response.context["stripe_object"]["rows"]}
    assert shown["Amount"] == ("$25.00", "")
    assert shown["Status"] == ("Succeeded", "")
    assert shown["Customer"] == (
        f"Hanako Sato · hanako@example.test · {buyer.id}",
        f"/admin/djstripe/customer/{buyer.pk}/change/",
    )
    assert shown["Card ending in"] == ("4242", "")
    assert (
        shown["Payment intent"][1]
        == f"/admin/djstripe/paymentintent/{charge.payment_intent.pk}/change/"
    )
    assert response.context["stripe_object"]["metadata"] == [{"key": "booking_id", "value": "B-1"}]
    assert "Djstripe owner account" not in response.content.decode()


def test_a_customer_page_links_to_that_customers_payments_and_they_filter(viewer):
    rows = so.every_list()
    so.paid_charge(900, customer=so.customer("other@example.test", "Other"))
    buyer = rows["customer"]

    links = viewer.get(url("customer") + f"{buyer.pk}/change/").context["stripe_object"]["links"]
    payments = links[0]["url"]

    assert payments == f"/admin/djstripe/charge/?customer__id__exact={buyer.id}"
    assert listed(viewer, "charge", payments.split("?")[1]) == {rows["charge"].id}


@pytest.mark.parametrize("model_name", ["charge", "earlyfraudwarning", "event", "refund"])
def test_a_page_of_rows_costs_the_same_queries_for_two_rows_as_for_eight(viewer, model_name):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(url(model_name)).status_code == 200
        return len(captured)

    for _ in range(2):
        so.every_list()
    two = queries()
    for _ in range(6):
        so.every_list()

    assert queries() == two


# ---------------------------------------------------------------- read-only


@pytest.mark.parametrize("model_name", LIST_NAMES)
def test_nothing_can_be_added_changed_or_deleted_even_by_a_superuser(client, db, model_name):
    row = so.every_list()[model_name]
    model = type(row)
    before = model.objects.values().get(pk=row.pk)
    user = staff_user(username="root")
    user.is_superuser = True
    user.save()
    client.force_login(user)

    listing = client.get(url(model_name))
    add = client.get(url(model_name) + "add/")
    change = client.post(url(model_name) + f"{row.pk}/change/", {"id": "x", "livemode": "on"})
    delete = client.post(url(model_name) + f"{row.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert url(model_name) + "add/" not in listing.content.decode()
    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert model.objects.values().get(pk=row.pk) == before


def test_the_stock_dj_stripe_customer_page_is_gone_and_shows_no_secret_key(
    client, db, stripe_account, settings
):
    buyer = so.customer()
    client.force_login(staff_user("viewer"))

    page = client.get(url("customer") + f"{buyer.pk}/change/").content.decode()

    assert settings.STRIPE_SECRET_KEY not in page
    assert "Default api key" not in page


# ---------------------------------------------------------------- actions and navigation


def test_lists_of_objects_workflows_run_on_keep_run_on_selected(db):
    kinds = {
        model._meta.label: getattr(admin.site.get_model_admin(model), "kanri_object", None)
        for model in LISTS
    }

    assert {label: kind for label, kind in kinds.items() if kind} == {
        dotted: name for name, dotted in manual.MODELS.items()
    }


@pytest.mark.parametrize(
    ("role", "model_name", "offered"),
    [
        ("viewer", "charge", set()),
        ("editor", "charge", {"run_workflow_on_selected", "refund_as_store_credit"}),
        ("editor", "customer", {"run_workflow_on_selected"}),
        ("editor", "invoice", {"run_workflow_on_selected"}),
        ("editor", "refund", set()),
        ("approver", "subscription", {"run_workflow_on_selected"}),
    ],
)
def test_actions_are_offered_only_to_people_who_may_run_workflows(
    client, db, role, model_name, offered
):
    so.every_list()
    client.force_login(staff_user(role))

    response = client.get(url(model_name))

    form = response.context["action_form"]  # None when no action is offered
    actions = {name for name, _label in form.fields["action"].choices} if form else set()
    assert actions - {""} == offered


def test_staff_see_one_stripe_data_section_and_none_of_dj_stripes_other_models(client, db):
    user = staff_user("editor")
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(user)

    apps = client.get("/admin/").context["app_list"]

    stripe = [app for app in apps if app["app_label"] == "djstripe"]
    assert [app["name"] for app in stripe] == ["Stripe data"]
    assert [m["name"] for m in stripe[0]["models"]] == [
        "Payments",
        "Payment intents",
        "Customers",
        "Subscriptions",
        "Invoices",
        "Refunds",
        "Disputes",
        "Early fraud warnings",
        "Events",
        "Webhook deliveries",
    ]
    assert client.get(url("charge")).context["title"] == "Payments"


def test_superusers_also_keep_dj_stripes_other_models_under_their_own_heading(admin_client):
    apps = admin_client.get("/admin/").context["app_list"]

    names = {app["name"]: [m["object_name"] for m in app["models"]] for app in apps}
    assert "Charge" in names["Stripe data"]
    assert "Product" in names["dj-stripe: every model"]
    assert "Charge" not in names["dj-stripe: every model"]


# ---------------------------------------------------------------- status


@pytest.fixture
def payments(db):
    """One payment in each dashboard status."""
    canceled_intent = so.payment_intent(status="canceled")
    return {
        "succeeded": so.charge(),
        "failed": so.charge(status="failed", outcome="issuer_declined", captured=False),
        "blocked": so.charge(status="failed", outcome="blocked", captured=False),
        # declined, then the merchant canceled the payment intent
        "canceled": so.charge(
            status="failed",
            outcome="issuer_declined",
            captured=False,
            payment_intent=canceled_intent,
        ),
        # authorized only; canceling released the authorization
        "canceled_authorization": so.charge(captured=False, refunded=True),
        "refunded": so.charge(refunded=True),
        "partially_refunded": so.charge(1000, amount_refunded=300),
        "disputed": so.charge(disputed=True),
        "pending": so.charge(status="pending", outcome="authorized"),
    }


def test_status_in_canceled_and_blocked_returns_exactly_those_payments(viewer, payments):
    shown = listed(viewer, "charge", "status__in=canceled,blocked")

    assert shown == {
        payments["blocked"].id,
        payments["canceled"].id,
        payments["canceled_authorization"].id,
    }


def test_each_payment_has_exactly_one_status_and_the_column_says_the_same(viewer, payments):
    expected = {p.id: name.replace("_authorization", "") for name, p in payments.items()}

    found = {}
    for status in sorted(set(expected.values())):
        for charge_id in listed(viewer, "charge", f"status__in={status}"):
            assert charge_id not in found
            found[charge_id] = status
    labels = {
        obj.id: obj.payment_status for obj in viewer.get(url("charge")).context["cl"].result_list
    }

    assert found == expected
    assert labels == expected


def test_repeated_status_parameters_combine_like_a_comma_list(viewer, payments):
    assert listed(viewer, "charge", "status__in=failed&status__in=pending") == {
        payments["failed"].id,
        payments["pending"].id,
    }


def test_status_links_toggle_values_in_the_url(viewer, payments):
    response = viewer.get(url("charge", "status__in=canceled"))

    status = next(s for s in response.context["cl"].filter_specs if s.title == "status")
    links = {c["display"]: c["query_string"] for c in status.choices(response.context["cl"])}
    assert links["Blocked"] == "?status__in=canceled%2Cblocked"
    assert links["Canceled"] == "?"


def test_show_counts_counts_payments_in_each_status(viewer, payments):
    response = viewer.get(url("charge", "_facets=True"))

    status = next(s for s in response.context["cl"].filter_specs if s.title == "status")
    shown = [c["display"] for c in status.choices(response.context["cl"])]
    assert "Canceled (2)" in shown
    assert "Blocked (1)" in shown
    assert "Disputed (1)" in shown


def test_other_lists_filter_their_own_status(viewer):
    buyer = so.customer()
    active = so.subscription(buyer, status="active")
    past_due = so.subscription(buyer, status="past_due")
    canceled = so.subscription(buyer, status="canceled")
    paid, void = so.invoice(buyer, status="paid"), so.invoice(buyer, status="void")

    assert listed(viewer, "subscription", "status__in=canceled,past_due") == {
        past_due.id,
        canceled.id,
    }
    assert listed(viewer, "subscription", "status__in=active") == {active.id}
    assert listed(viewer, "invoice", "status__in=void") == {void.id}
    assert paid.id in listed(viewer, "invoice", "status__in=paid,open")


# ---------------------------------------------------------------- amount


def test_an_amount_range_is_typed_as_people_read_it_in_its_currency(viewer):
    below, low, high, above = (so.charge(a, "usd") for a in (999, 1000, 10050, 10051))
    so.charge(5000, "eur")
    yen = so.charge(1500, "jpy")

    assert listed(viewer, "charge", "currency=usd&amount_min=10&amount_max=100.50") == {
        low.id,
        high.id,
    }
    assert listed(viewer, "charge", "currency=USD&amount_min=100.51") == {above.id}
    assert listed(viewer, "charge", "currency=usd&amount_max=9.99") == {below.id}
    # JPY has no minor unit: 1,500 yen is 1500
    assert listed(viewer, "charge", "currency=jpy&amount_min=1,500&amount_max=1500") == {yen.id}


def test_the_amount_of_an_invoice_is_its_total(viewer):
    buyer = so.customer()
    small, large = so.invoice(buyer, total=2000), so.invoice(buyer, total=50000)

    assert listed(viewer, "invoice", "currency=usd&amount_min=100") == {large.id}
    assert listed(viewer, "invoice", "currency=usd&amount_max=20") == {small.id}


# ---------------------------------------------------------------- created


def test_a_created_range_is_whole_days_in_the_current_time_zone(viewer, tokyo):
    so.charge(created=so.at(2026, 11, 29, 23, 59, tz=TOKYO))
    first = so.charge(created=so.at(2026, 11, 30, 0, 0, tz=TOKYO))
    last = so.charge(created=so.at(2026, 11, 30, 23, 59, tz=TOKYO))
    so.charge(created=so.at(2026, 12, 1, 0, 0, tz=TOKYO))

    shown = listed(
        viewer, "charge", "created__range__gte=2026-11-30&created__range__lte=2026-11-30"
    )

    assert shown == {first.id, last.id}


def test_created_yesterday_is_evaluated_in_the_current_time_zone_each_time_the_list_opens(
    viewer, tokyo
):
    # 2026-11-30 15:30 UTC is already 2026-12-01 00:30 in Tokyo.
    late = so.charge(created=so.at(2026, 11, 30, 23, 30, tz=TOKYO))
    early = so.charge(created=so.at(2026, 11, 30, 0, 10, tz=TOKYO))
    so.charge(created=so.at(2026, 11, 29, 23, 59, tz=TOKYO))
    today = so.charge(created=so.at(2026, 12, 1, 0, 20, tz=TOKYO))

    with time_machine.travel(so.at(2026, 12, 1, 0, 30, tz=TOKYO), tick=False):
        yesterday = listed(viewer, "charge", "created__period=yesterday")
        so_far_today = listed(viewer, "charge", "created__period=today")
    with time_machine.travel(so.at(2026, 12, 2, 9, 0, tz=TOKYO), tick=False):
        a_day_later = listed(viewer, "charge", "created__period=yesterday")
        last_7_days = listed(viewer, "charge", "created__period=last_7_days")

    assert yesterday == {late.id, early.id}
    assert so_far_today == {today.id}
    assert a_day_later == {today.id}
    assert late.id in last_7_days and today.id in last_7_days


def test_created_periods_also_filter_webhook_deliveries(viewer, tokyo):
    with time_machine.travel(so.at(2026, 12, 1, 9, 0, tz=TOKYO), tick=False):
        recent = so.webhook_delivery(created=so.at(2026, 11, 30, 12, 0, tz=TOKYO))
        so.webhook_delivery(created=so.at(2026, 11, 20, 12, 0, tz=TOKYO))

        assert {
            obj.pk
            for obj in viewer.get(url("webhookeventtrigger", "created__period=yesterday"))
            .context["cl"]
            .result_list
        } == {recent.pk}


# ---------------------------------------------------------------- customer, metadata, plan


@pytest.mark.parametrize(
    ("model_name", "build"),
    [
        ("charge", lambda c: so.charge(customer=c)),
        ("paymentintent", lambda c: so.payment_intent(customer=c)),
        ("customer", lambda c: c),
        ("subscription", lambda c: so.subscription(c)),
        ("invoice", lambda c: so.invoice(c)),
        ("refund", lambda c: so.refund(so.charge(customer=c))),
        ("dispute", lambda c: so.dispute(so.charge(customer=c))),
    ],
)
def test_customer_email_narrows_each_list_to_that_customer_in_any_case(viewer, model_name, build):
    wanted = build(so.customer("Hanako@Example.test"))
    build(so.customer("taro@example.test", "Taro Yamada"))

    assert listed(viewer, model_name, "customer_email=hanako@example.TEST") == {wanted.id}


def test_a_guest_payment_is_found_by_its_billing_email(viewer):
    guest = so.charge(billing_details={"email": "guest@example.test", "name": "Guest"})
    so.charge(customer=so.customer())

    assert listed(viewer, "charge", "customer_email=guest@example.test") == {guest.id}


def test_metadata_filters_by_key_and_value_or_by_key_alone(viewer):
    one = so.charge(metadata={"booking_id": "B-1"})
    two = so.charge(metadata={"booking_id": "B-2"})
    odd = so.charge(metadata={"order__ref": "R-1"})
    so.charge(metadata={})

    assert listed(viewer, "charge", "metadata_key=booking_id&metadata_value=B-1") == {one.id}
    assert listed(viewer, "charge", "metadata_key=booking_id") == {one.id, two.id}
    assert listed(viewer, "charge", "metadata_key=order__ref&metadata_value=R-1") == {odd.id}
    assert listed(viewer, "charge", "metadata_key=booking_id&metadata_value=B-3") == set()


def test_subscriptions_filter_by_product_or_price_in_any_item(viewer):
    basic = so.subscription(items=[so.subscription_item("price_A", "prod_X")])
    bundle = so.subscription(
        items=[
            so.subscription_item("price_B", "prod_Y"),
            so.subscription_item("price_C", "prod_X", unit_amount=500),
        ]
    )
    so.subscription(items=[so.subscription_item("price_D", "prod_Z")])

    assert listed(viewer, "subscription", "product=prod_X") == {basic.id, bundle.id}
    assert listed(viewer, "subscription", "price=price_C") == {bundle.id}
    assert listed(viewer, "subscription", "product=prod_X&price=price_A") == {basic.id}
    assert listed(viewer, "subscription", "product=prod_Q") == set()


def test_filters_combine(viewer, tokyo):
    buyer = so.customer("hanako@example.test")
    wanted = so.charge(
        5000, customer=buyer, metadata={"booking_id": "B-1"}, created=so.at(2026, 11, 30, 9)
    )
    so.charge(5000, customer=buyer, metadata={"booking_id": "B-1"}, status="failed")
    so.charge(500, customer=buyer, metadata={"booking_id": "B-1"}, created=so.at(2026, 11, 30, 9))

    shown = listed(
        viewer,
        "charge",
        "status__in=succeeded&currency=usd&amount_min=10&customer_email=hanako@example.test"
        "&metadata_key=booking_id&metadata_value=B-1"
        "&created__range__gte=2026-11-30&created__range__lte=2026-11-30",
    )

    assert shown == {wanted.id}


# ---------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("model_name", "query", "text"),
    [
        ("charge", "status__in=cancelled", "There is no status 'cancelled' in this list"),
        ("subscription", "status__in=blocked", "There is no status 'blocked' in this list"),
        ("charge", "amount_min=10", "An amount needs its currency"),
        ("charge", "currency=dollars&amount_min=10", "'dollars' is not a currency code"),
        ("charge", "currency=jpy&amount_min=10.5", "'10.5' is not an amount in JPY"),
        ("charge", "currency=usd&amount_min=ten", "'ten' is not an amount in USD"),
        ("charge", "currency=usd&amount_min=100&amount_max=10", "The lowest amount (100.00)"),
        ("charge", "created__period=last_week", "There is no period 'last_week'"),
        ("charge", "created__range__gte=30/11/2026", "'30/11/2026' is not a date"),
        (
            "charge",
            "created__range__gte=2026-12-01&created__range__lte=2026-11-01",
            "The range starts (2026-12-01) after it ends (2026-11-01).",
        ),
        ("customer", "customer_email=hanako", "'hanako' is not an email address."),
        ("charge", "metadata_value=B-1", "A metadata value needs its key"),
        ("subscription", "price=price%201", "'price 1' is not a Stripe price ID"),
        ("charge", "colour=red", "This list cannot be filtered by 'colour'."),
        ("charge", "created__gte=yesterday", "The filter created__gte=yesterday cannot be"),
        ("refund", "product=prod_X", "This list cannot be filtered by 'product'."),
    ],
)
def test_a_bad_filter_value_shows_a_message_and_no_rows_never_the_whole_list(
    viewer, model_name, query, text
):
    so.every_list()

    response = viewer.get(url(model_name, query))

    assert response.status_code == 200  # not a redirect to the unfiltered list
    assert response.context["cl"].result_count == 0
    assert any(m.startswith(text) for m in messages_of(response)), messages_of(response)


def test_a_bad_filter_evaluated_by_code_raises_instead_of_returning_nothing(db):
    so.charge()
    model_admin = admin.site.get_model_admin(Charge)
    request = RequestFactory().get(url("charge", "status__in=cancelled"))
    request.user = staff_user("viewer")

    with pytest.raises(IncorrectLookupParameters, match="There is no status 'cancelled'"):
        model_admin.get_changelist_instance(request)


def test_an_empty_filter_form_field_is_no_filter(viewer):
    charges = {so.charge().id, so.charge(status="failed").id}

    assert listed(viewer, "charge", "currency=&amount_min=&amount_max=&customer_email=") == charges


# ---------------------------------------------------------------- in a browser


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_viewer_narrows_payments_with_the_sidebar_as_a_person_does(
    page, live_server, screenshots
):
    from playwright.sync_api import expect

    staff_user("viewer")
    so.charge(999)
    wanted = so.charge(1500, metadata={"booking_id": "B-1"})
    blocked = so.charge(1500, status="failed", outcome="blocked", captured=False)
    so.charge(25000)
    so.charge(1500, "eur")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/djstripe/charge/")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(5)

    amount = page.locator('details[data-filter-title="amount"] form')
    amount.locator('input[name="currency"]').fill("usd")
    amount.locator('input[name="amount_min"]').fill("10")
    amount.locator('input[name="amount_max"]').fill("100.50")
    amount.locator('input[type="submit"]').click()

    expect(rows).to_have_count(2)
    assert "currency=usd" in page.url and "amount_max=100.50" in page.url
    page.locator('details[data-filter-title="status"] a', has_text="Blocked").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(blocked.id)
    assert "status__in=blocked" in page.url and "amount_min=10" in page.url
    page.screenshot(path=str(screenshots / "payments-filtered.png"), full_page=True)

    page.locator('details[data-filter-title="status"]').get_by_role(
        "link", name="All", exact=True
    ).click()
    metadata = page.locator('details[data-filter-title="metadata"] form')
    metadata.locator('input[name="metadata_key"]').fill("booking_id")
    metadata.locator('input[name="metadata_value"]').fill("B-1")
    metadata.locator('input[type="submit"]').click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(wanted.id)

    amount = page.locator('details[data-filter-title="amount"] form')
    amount.locator('input[name="amount_min"]').fill("ten")
    amount.locator('input[type="submit"]').click()
    expect(page.locator(".messagelist .error")).to_contain_text("'ten' is not an amount in USD")
    expect(rows).to_have_count(0)
