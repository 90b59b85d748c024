"""Money as Stripe sends it: integer minor units plus a currency.

The one place that converts between what staff type ("1,000" USD, full-width digits,
"1000円") and what Stripe sends (100000), and that shows an amount to a person
("$1,000.00", "¥1,500"). Every screen, message and export goes through it.
https://docs.stripe.com/currencies#zero-decimal

Display keeps the currency on every amount: the symbol where it names one currency in
English use (CLDR's "en" symbols: "$" is USD, "CA$" is CAD), else the ISO code
("CHF 15.00"). Babel's Japanese output (full-width "￥") is deliberately not used.

Input is refused rather than guessed when it may mean two things: "1.000" is one
thousand in much of Europe and one in the US, so for a currency with fewer than three
decimals it is refused, as is a comma that does not group thousands ("1,00").
"""

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_noop

from automations.problems import CodedError

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

# CLDR "en" narrow-enough symbols that name exactly one currency; others show their code.
SYMBOLS = {
    "usd": "$",
    "eur": "€",
    "jpy": "¥",
    "gbp": "£",
    "krw": "₩",
    "inr": "₹",
    "ils": "₪",
    "vnd": "₫",
    "php": "₱",
    "cny": "CN¥",
    "cad": "CA$",
    "aud": "A$",
    "nzd": "NZ$",
    "hkd": "HK$",
    "mxn": "MX$",
    "twd": "NT$",
    "brl": "R$",
}
# What people also type beside an amount in these currencies (compared in lower case).
EXTRA_MARKS = {
    "jpy": {"円"},
    "cny": {"¥", "元"},
    "krw": {"원"},
}

# Problem codes -> messages; parameters are filled in when the message is read, in the
# reader's language.
MESSAGES = {
    "no_currency": gettext_noop("An amount needs a currency."),
    "not_amount": gettext_noop("%(text)s is not an amount."),
    "too_many_decimals": gettext_noop(
        "%(text)s has more decimals than %(currency)s allows (%(places)d)."
    ),
    "ambiguous_decimals": gettext_noop(
        "“%(text)s” is ambiguous: type %(grouped)s for %(grouped)s %(currency)s (a comma "
        "between thousands, a point before decimals); %(currency)s amounts have %(places)d "
        "decimals."
    ),
    "ambiguous_grouping": gettext_noop(
        "“%(text)s” is ambiguous: use a comma only between thousands (1,000) and a point "
        "for decimals (1,000.50)."
    ),
    "other_currency": gettext_noop("“%(text)s” is not in %(currency)s."),
}


class MoneyError(CodedError):
    """An amount refused, as a code and parameters (the message is rendered when read)."""

    messages = MESSAGES


def decimals(currency):
    currency = (currency or "").lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def _marks(currency):
    """Return what may stand beside an amount in `currency`: its code and symbols."""
    marks = {currency, SYMBOLS.get(currency, currency).lower()}
    return marks | EXTRA_MARKS.get(currency, set())


def _all_marks():
    marks = {m.lower() for m in SYMBOLS.values()} | {"円", "元", "원"}
    return marks


_AMOUNT = re.compile(
    r"(?P<sign>[-+]?)\s*(?P<pre>[^\d\s.,+\-]*)\s*(?P<sign2>[-+]?)\s*"
    r"(?P<number>[\d.,_]+)\s*(?P<post>[^\d\s.,+\-]*)"
)
_GROUPED = re.compile(r"\d{1,3}(,\d{3})+")


def to_minor(amount, currency):
    """Return integer minor units for what a person typed: ("1,000", "usd") -> 100000.

    Accepts full-width digits, the currency's symbol or code before or after the number
    ("¥1,000", "1000円", "1,000 USD"), commas between thousands and a decimal point.
    Raises MoneyError, with a code, for anything else or anything ambiguous.
    """
    if not currency:
        raise MoneyError("no_currency")
    currency = str(currency).lower()
    shown = str(amount).strip()
    # NFKC turns full-width digits, commas, points and the yen sign into their ASCII forms.
    text = unicodedata.normalize("NFKC", shown).replace("\u2212", "-").strip()
    match = _AMOUNT.fullmatch(text)
    if not match or (match["sign"] and match["sign2"]):
        raise MoneyError("not_amount", text=repr(shown))
    for mark in (match["pre"].lower(), match["post"].lower()):
        if not mark or mark in _marks(currency):
            continue
        if mark in _all_marks() or (len(mark) == 3 and mark.isalpha()):
            raise MoneyError("other_currency", text=shown, currency=currency.upper())
        raise MoneyError("not_amount", text=repr(shown))
    number = match["number"].replace("_", "")
    whole, point, fraction = number.partition(".")
    places = decimals(currency)
    if "." in fraction or "," in fraction or not whole or (point and not fraction):
        raise MoneyError("ambiguous_grouping", text=shown)
    if "," in whole:
        if not _GROUPED.fullmatch(whole):
            raise MoneyError("ambiguous_grouping", text=shown)
        whole = whole.replace(",", "")
    elif len(fraction) == 3 and places < 3:
        # "1.000": one thousand with a European separator, or one with three decimals?
        grouped = f"{int(whole + fraction):,}"
        raise MoneyError(
            "ambiguous_decimals",
            text=shown,
            grouped=grouped,
            currency=currency.upper(),
            places=places,
        )
    if len(fraction) > places:
        raise MoneyError("too_many_decimals", text=shown, currency=currency.upper(), places=places)
    try:
        value = Decimal(f"{whole}.{fraction or '0'}")
    except InvalidOperation:
        raise MoneyError("not_amount", text=repr(shown)) from None
    minor = int(value.scaleb(places))
    sign = match["sign"] or match["sign2"]
    return -minor if sign == "-" else minor


# A symbol that names one currency when typed alone (CA$, A$… are in SYMBOLS already).
TYPED_SYMBOLS = {
    "¥": "jpy",
    "円": "jpy",
    "$": "usd",
    "€": "eur",
    "£": "gbp",
    "₩": "krw",
    "원": "krw",
}


def parse_money(text):
    """Return (minor units, currency) for an amount typed with its currency: "1,000 USD",
    "USD 1,000", "¥1,000", "1000円", "€15". Raises MoneyError when no currency is named."""
    normal = unicodedata.normalize("NFKC", str(text)).strip()
    match = _AMOUNT.fullmatch(normal.replace("\u2212", "-"))
    if not match:
        raise MoneyError("not_amount", text=repr(str(text).strip()))
    by_symbol = {v.lower(): k for k, v in SYMBOLS.items()} | TYPED_SYMBOLS
    number = (match["sign"] or match["sign2"]) + match["number"]
    for mark in (match["pre"].lower(), match["post"].lower()):
        currency = mark if len(mark) == 3 and mark.isalpha() else by_symbol.get(mark)
        if currency:
            return to_minor(number, currency), currency
    raise MoneyError("no_currency")


def from_minor(minor, currency):
    """Return the major-unit Decimal for integer minor units: (100000, "usd") -> 1000.00."""
    places = decimals(currency)
    return Decimal(int(minor)).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_amount(minor, currency):
    """Return the number as a person types it back: "1,000.00" for (100000, "usd")."""
    places = decimals(currency)
    return f"{from_minor(minor, currency):,.{places}f}"


def format_input(minor, currency):
    """Return "1,000.00 USD": the amount and its code, as a form field shows it for editing."""
    return f"{format_amount(minor, currency)} {(currency or '').upper()}"


def format_money(minor, currency):
    """Return an amount as a person reads it: "$1,000.00", "¥1,500", "€15.00", "CHF 15.00"."""
    code = (currency or "").lower()
    number = format_amount(abs(int(minor)), code)
    sign = "-" if int(minor) < 0 else ""
    symbol = SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{code.upper()} {number}".strip()


def format_totals(amounts):
    """Return "$15.00, ¥1,500" for {currency: minor units}, currencies in code order."""
    return ", ".join(format_money(amounts[c], c) for c in sorted(amounts or {}))


def export_amount(minor, currency):
    """Return the major-unit text for a CSV cell beside its currency column: "1000.00".

    Spreadsheets read this as a number; the currency column says what it is."""
    return str(from_minor(minor, currency))
