"""Money as people read and type it, across zero-, two- and three-decimal currencies: one
table for display and input (automations/money.py), and the editor showing a refused
amount next to its field."""

import pytest
from django.utils import translation

from automations.money import MoneyError, format_input, format_money, to_minor

# (currency, minor units, shown, typed as people type it)
TABLE = [
    # zero-decimal
    (
        "jpy",
        1500,
        "¥1,500",
        ["1500", "1,500", "¥1,500", "1500円", "１，５００", "￥１５００", "1,500 JPY"],  # noqa: RUF001
    ),
    ("krw", 250000, "₩250,000", ["250000", "250,000", "₩250,000", "KRW 250,000"]),
    ("jpy", 0, "¥0", ["0"]),
    ("jpy", -1500, "-¥1,500", ["-1,500", "-¥1,500"]),
    # two-decimal
    (
        "usd",
        100000,
        "$1,000.00",
        ["1000", "1,000", "$1,000.00", "1000.00", "1,000 USD", "USD 1000"],
    ),
    ("usd", 100050, "$1,000.50", ["1,000.50", "1000.5", "$1,000.50", "１，０００．５０"]),  # noqa: RUF001
    ("eur", 1500, "€15.00", ["15", "15.00", "€15", "15 EUR", "15 eur"]),
    ("gbp", 99, "£0.99", ["0.99", "£0.99"]),
    ("chf", 1500, "CHF 15.00", ["15", "CHF 15.00", "15.00 chf"]),
    ("cad", 1500, "CA$15.00", ["15", "CA$15.00"]),
    # three-decimal
    ("kwd", 12345, "KWD 12.345", ["12.345", "KWD 12.345", "12.345 KWD"]),
    ("bhd", 1000, "BHD 1.000", ["1", "1.000", "1.0"]),
    ("jod", 1500000, "JOD 1,500.000", ["1500", "1,500.000", "1,500"]),
    ("omr", 5, "OMR 0.005", ["0.005"]),
    ("tnd", 100, "TND 0.100", ["0.1", "0.100"]),
]


@pytest.mark.parametrize(("currency", "minor", "shown", "typed"), TABLE)
def test_an_amount_shows_with_its_currency_and_reads_back_as_typed(currency, minor, shown, typed):
    assert format_money(minor, currency) == shown
    for text in typed:
        assert to_minor(text, currency) == minor, text
    # What a form shows for editing reads back to the same amount.
    assert to_minor(format_input(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "code", "message"),
    [
        # "1.000" is one thousand in much of Europe: refused where it could mean either.
        (
            "1.000",
            "jpy",
            "ambiguous_decimals",
            "“1.000” is ambiguous: type 1,000 for 1,000 JPY (a comma between thousands, a "
            "point before decimals); JPY amounts have 0 decimals.",
        ),
        (
            "1.500",
            "usd",
            "ambiguous_decimals",
            "“1.500” is ambiguous: type 1,500 for 1,500 USD (a comma between thousands, a "
            "point before decimals); USD amounts have 2 decimals.",
        ),
        (
            "1.000.000",
            "krw",
            "ambiguous_grouping",
            "“1.000.000” is ambiguous: use a comma only between thousands (1,000) and a "
            "point for decimals (1,000.50).",
        ),
        (
            "1,00",
            "eur",
            "ambiguous_grouping",
            "“1,00” is ambiguous: use a comma only between thousands (1,000) and a point "
            "for decimals (1,000.50).",
        ),
        ("10.5", "jpy", "too_many_decimals", "10.5 has more decimals than JPY allows (0)."),
        ("1.0001", "kwd", "too_many_decimals", "1.0001 has more decimals than KWD allows (3)."),
        ("1.50", "jpy", "too_many_decimals", "1.50 has more decimals than JPY allows (0)."),
        ("$1,000", "jpy", "other_currency", "“$1,000” is not in JPY."),
        ("1000円", "usd", "other_currency", "“1000円” is not in USD."),
        ("15 EUR", "usd", "other_currency", "“15 EUR” is not in USD."),
        ("ten", "usd", "not_amount", "'ten' is not an amount."),
        ("1e3", "usd", "not_amount", "'1e3' is not an amount."),
        ("", "usd", "not_amount", "'' is not an amount."),
        ("10", "", "no_currency", "An amount needs a currency."),
    ],
)
def test_an_ambiguous_or_impossible_amount_is_refused_with_its_reason(
    typed, currency, code, message
):
    with pytest.raises(MoneyError) as refused:
        to_minor(typed, currency)
    assert refused.value.code == code
    assert str(refused.value) == message


def test_a_refusal_reads_in_the_readers_language_from_its_code():
    with pytest.raises(MoneyError) as refused:
        to_minor("1.000", "jpy")
    # Stored or passed on as a code and parameters; the sentence is made when read.
    assert refused.value.params == {
        "text": "1.000",
        "grouped": "1,000",
        "currency": "JPY",
        "places": 0,
    }
    with translation.override("en"):
        assert str(refused.value).startswith("“1.000” is ambiguous")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_ambiguous_amount_is_refused_next_to_its_field_at_1400_px(
    page, live_server, screenshots
):
    from playwright.sync_api import expect

    from automations.models import Workflow
    from tests.admin_helpers import staff_user
    from tests.test_browser import add_condition, log_in

    staff_user("editor")
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server, "editor")
    page.goto(f"{live_server.url}/admin/automations/workflow/add/")
    page.fill("#id_name", "Large yen orders")
    page.select_option("#id_trigger", "stripe_event:payment_intent.succeeded")
    add_condition(page, 0, "trigger.data.object.amount", "gt", "1.000", "jpy")
    page.click('input[name="_continue"]')

    error = page.locator("#conditions-group .errorlist").first
    expect(error).to_contain_text("“1.000” is ambiguous: type 1,000 for 1,000 JPY")
    field = page.locator('input[name="conditions-0-value_text"]')
    box, beside = error.bounding_box(), field.bounding_box()
    page.screenshot(path=str(screenshots / "editor-money-error.png"), full_page=True)
    # On screen, and next to the field it is about (not a table's width away).
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1400
    assert abs(box["x"] - beside["x"]) < 300
    assert not Workflow.objects.filter(name="Large yen orders").exists()


@pytest.mark.parametrize(
    ("typed", "minor", "currency"),
    [
        ("1,000 USD", 100000, "usd"),
        ("USD 1,000", 100000, "usd"),
        ("¥1,000", 1000, "jpy"),
        ("1000円", 1000, "jpy"),
        ("１，０００円", 1000, "jpy"),  # noqa: RUF001
        ("€15", 1500, "eur"),
        ("CA$15", 1500, "cad"),
        ("12.345 KWD", 12345, "kwd"),
    ],
)
def test_an_amount_typed_with_its_currency_says_which(typed, minor, currency):
    from automations.money import parse_money

    assert parse_money(typed) == (minor, currency)


def test_an_amount_without_a_currency_is_refused_where_one_is_needed():
    from automations.money import parse_money

    with pytest.raises(MoneyError) as refused:
        parse_money("1,000")
    assert refused.value.code == "no_currency"
    with pytest.raises(MoneyError) as ambiguous:
        parse_money("¥1.000")
    assert ambiguous.value.code == "ambiguous_decimals"


def test_money_caps_may_be_typed_as_people_write_them(client, db):
    from tests.admin_helpers import staff_user, workflow_form
    from tests.test_editor import ADD_URL

    client.force_login(staff_user("approver"))
    steps = [
        {
            "name": "refund",
            "kind": "stripe.create_refund",
            "config": {
                "charge": "{{trigger.data.object.latest_charge}}",
                "amount": "１４．５０",  # noqa: RUF001
                "amount_currency": "usd",
            },
        }
    ]

    response = client.post(
        ADD_URL,
        workflow_form(
            steps=steps,
            per_run="¥1,500\n$15",
            per_day="１０，０００円\n1,000 USD",  # noqa: RUF001
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    from automations.models import Workflow

    assert Workflow.objects.get().steps.get().config["amount"] == 1450
    assert Workflow.objects.get().limits == {
        "per_run": {"jpy": 1500, "usd": 1500},
        "per_day": {"jpy": 10000, "usd": 100000},
    }
