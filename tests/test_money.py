from decimal import Decimal

import pytest

from automations.money import MoneyError, format_money, from_minor, to_minor


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("1,000", "usd", 100000),
        ("999.99", "USD", 99999),
        ("1000", "jpy", 1000),
        ("1,500", "krw", 1500),
        ("12.345", "kwd", 12345),
        ("0.5", "eur", 50),
    ],
)
def test_staff_amounts_become_stripe_minor_units(typed, currency, minor):
    assert to_minor(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "message"),
    [
        ("10.5", "jpy", "more decimals than JPY allows (0)"),
        ("1.0001", "usd", "more decimals than USD allows (2)"),
        ("ten", "usd", "'ten' is not an amount"),
        ("NaN", "usd", "'NaN' is not an amount"),
        ("10", "", "An amount needs a currency"),
    ],
)
def test_impossible_amounts_are_refused_with_a_reason(typed, currency, message):
    with pytest.raises(MoneyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_minor(typed, currency)


def test_minor_units_display_as_staff_typed_them():
    assert from_minor(100000, "usd") == Decimal("1000.00")
    assert format_money(100000, "usd") == "$1,000.00"
    assert format_money(1500, "jpy") == "¥1,500"
    assert format_money(99999, "usd") == "$999.99"
