"""Conditions: typed comparisons on the run context, grouped as (A and B) or (C).

A condition is a plain dict:
    {"field": "trigger.data.object.amount", "op": "gt", "value": 100000, "currency": "usd"}
With a currency it compares money: the field must be an integer amount whose sibling
`currency` (Stripe keeps one beside every amount) is that currency, so 1,500 EUR never
passes a test written for USD. `value` is in minor units, as Stripe sends amounts.

Conditions are a list of groups; each group is a list of conditions. A group matches when
all its conditions do; the whole matches when any group does, or when there are none.
"""

from decimal import Decimal, InvalidOperation

from automations.engine.references import RenderError, lookup
from automations.money import format_amount, format_money

OPERATORS = {
    "eq": "equals",
    "ne": "does not equal",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "contains": "contains",
    "in": "is one of",
    "not_in": "is none of",
    "is_set": "is set",
    "is_blank": "is blank",
}
ORDERING = {"gt", "gte", "lt", "lte"}
UNARY = {"is_set", "is_blank"}


class ConditionError(ValueError):
    pass


def matches(groups, context):
    """Return (matched, explanation): whether any group matches, and each condition's result."""
    if not groups:
        return True, []
    explanation = []
    matched = False
    for number, group in enumerate(groups, start=1):
        results = [evaluate(condition, context) for condition in group]
        explanation.extend({**result, "group": number} for result in results)
        if all(result["matched"] for result in results):
            matched = True
    return matched, explanation


def evaluate(condition, context):
    """Return {field, op, value, actual, matched, reason} for one condition."""
    field, op = condition["field"], condition["op"]
    expected, currency = condition.get("value"), (condition.get("currency") or "").lower()
    result = {"field": field, "op": op, "value": expected, "currency": currency}
    try:
        actual = lookup(field, context)
    except RenderError:
        actual = None  # an absent field is blank, and compares as nothing
    result["actual"] = actual
    try:
        result["matched"], result["reason"] = _compare(
            op, actual, expected, currency, field, context
        )
    except ConditionError as e:
        result["matched"], result["reason"] = False, str(e)
    return result


def _blank(value):
    return value is None or value == "" or value == [] or value == {}


def _compare(op, actual, expected, currency, field, context):
    if op not in OPERATORS:
        raise ConditionError(f"Unknown operator {op!r}.")
    if op == "is_set":
        return not _blank(actual), ""
    if op == "is_blank":
        return _blank(actual), ""
    if actual is None:
        return False, f"{field} is not set"

    if currency:
        actual_currency = _sibling_currency(field, context)
        if actual_currency != currency:
            return False, f"currency is {actual_currency or 'not set'}, not {currency}"
        if not isinstance(actual, int) or isinstance(actual, bool):
            raise ConditionError(f"{field} is not an amount")
        reason = f"{format_money(actual, currency)} {OPERATORS[op]} "
        if op in ("in", "not_in"):
            reason += ", ".join(format_money(int(v), currency) for v in expected)
            return _membership(op, actual, [int(v) for v in expected]), reason
        return _ordered(op, actual, int(expected)), reason + format_money(int(expected), currency)

    if op == "contains":
        if isinstance(actual, str):
            return str(expected).lower() in actual.lower(), ""
        if isinstance(actual, list | dict):
            return expected in actual, ""
        raise ConditionError(f"{field} is not text or a list")
    if op in ("in", "not_in"):
        if not isinstance(expected, list):
            raise ConditionError("'is one of' needs a list of values")
        return _membership(op, _normal(field, actual), [_normal(field, v) for v in expected]), ""
    if isinstance(expected, bool) or isinstance(actual, bool):
        if op not in ("eq", "ne"):
            raise ConditionError(f"{field} is true/false and cannot be ordered")
        return _ordered(op, actual, _as_bool(expected)), ""
    if isinstance(expected, int | float | Decimal) or op in ORDERING:
        return _ordered(op, _number(actual, field), _number(expected, "the value")), ""
    return _ordered(op, _normal(field, actual), _normal(field, expected)), ""


def _sibling_currency(field, context):
    parent = field.rsplit(".", 1)[0]
    try:
        currency = lookup(parent, context).get("currency")
    except (RenderError, AttributeError):
        return ""
    return (currency or "").lower()


def _normal(field, value):
    # Stripe sends currency codes in lower case; staff often type them in upper case.
    if field.endswith("currency") and isinstance(value, str):
        return value.lower()
    return value


def _number(value, name):
    if isinstance(value, bool):
        raise ConditionError(f"{name} is not a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ConditionError(f"{name} is not a number") from None


def _as_bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def _membership(op, actual, values):
    return (actual in values) == (op == "in")


def _ordered(op, actual, expected):
    return {
        "eq": actual == expected,
        "ne": actual != expected,
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }[op]


def display_value(value, currency=""):
    """Show a stored condition value the way staff typed it: 100000 USD as "1,000.00"."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(display_value(v, currency) for v in value)
    if currency and isinstance(value, int) and not isinstance(value, bool):
        return format_amount(value, currency)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe(condition):
    """Return a condition's test as staff would say it: "is greater than 1,000.00 USD"."""
    op = condition["op"]
    currency = (condition.get("currency") or "").lower()
    if op in UNARY:
        return OPERATORS.get(op, op)
    shown = display_value(condition.get("value"), currency)
    return " ".join(p for p in (OPERATORS.get(op, op), shown, currency.upper()) if p)
