"""Money as Stripe sends it: integer minor units plus a currency.

The one place that converts between what staff type ("1,000" USD) and what Stripe sends
(100000). https://docs.stripe.com/currencies#zero-decimal
"""

from decimal import Decimal, InvalidOperation

ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
# Stripe takes these in thousandths (the last digit must be 0 for most API calls).
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])


class MoneyError(ValueError):
    pass


def decimals(currency):
    currency = (currency or "").lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def to_minor(amount, currency):
    """Return integer minor units for a major-unit amount: ("1,000", "usd") -> 100000."""
    if not currency:
        raise MoneyError("An amount needs a currency.")
    text = str(amount).strip().replace(",", "").replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MoneyError(f"{amount!r} is not an amount.") from None
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not an amount.")
    places = decimals(currency)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise MoneyError(f"{amount} has more decimals than {currency.upper()} allows ({places}).")
    return int(minor)


def from_minor(minor, currency):
    """Return the major-unit Decimal for integer minor units: (100000, "usd") -> 1000.00."""
    places = decimals(currency)
    return Decimal(int(minor)).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_amount(minor, currency):
    """Return "1,000.00" for (100000, "usd") and "1,500" for (1500, "jpy")."""
    places = decimals(currency)
    return f"{from_minor(minor, currency):,.{places}f}"


def format_money(minor, currency):
    """Return "1,000.00 USD" for (100000, "usd")."""
    return f"{format_amount(minor, currency)} {(currency or '').upper()}"
