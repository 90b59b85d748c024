"""Conditions: typed comparisons on the run context, grouped as (A and B) or (C).

A condition is a plain dict:
    {"field": "trigger.data.object.amount", "op": "gt", "value": 100000, "currency": "usd"}
With a currency it compares money: the field must be an integer amount whose sibling
`currency` (Stripe keeps one beside every amount) is that currency, so 1,500 EUR never
passes a test written for USD. `value` is in minor units, as Stripe sends amounts.

Conditions are a list of groups; each group is a list of conditions. A group matches when
all its conditions do; the whole matches when any group does, or when there are none.

Each result says why with a code (`reason`) and its parameters (`reason_params`), never a
sentence: branch steps store results in the audit, and `explain` words them in the
reader's language when the run is read, so an old run reads in Japanese or English alike.
"""

from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy as _

from automations.engine.references import RenderError, lookup
from automations.money import format_amount, format_money

OPERATORS = {
    "eq": _("equals"),
    "ne": _("does not equal"),
    "gt": _("is greater than"),
    "gte": _("is at least"),
    "lt": _("is less than"),
    "lte": _("is at most"),
    "contains": _("contains"),
    "in": _("is one of"),
    "not_in": _("is none of"),
    "is_set": _("is set"),
    "is_blank": _("is blank"),
}
# A condition's test as staff say it (`describe`): word order differs between languages,
# so each operator has its own sentence around the value.
TESTS = {
    "eq": _("equals %(value)s"),
    "ne": _("does not equal %(value)s"),
    "gt": _("is greater than %(value)s"),
    "gte": _("is at least %(value)s"),
    "lt": _("is less than %(value)s"),
    "lte": _("is at most %(value)s"),
    "contains": _("contains %(value)s"),
    "in": _("is one of %(value)s"),
    "not_in": _("is none of %(value)s"),
}
# What a money comparison found (reason "money"): the actual amount against the value.
COMPARED = {
    "eq": _("%(actual)s equals %(value)s"),
    "ne": _("%(actual)s does not equal %(value)s"),
    "gt": _("%(actual)s is greater than %(value)s"),
    "gte": _("%(actual)s is at least %(value)s"),
    "lt": _("%(actual)s is less than %(value)s"),
    "lte": _("%(actual)s is at most %(value)s"),
    "in": _("%(actual)s is one of %(value)s"),
    "not_in": _("%(actual)s is none of %(value)s"),
}
REASONS = {
    "not_set": _("%(field)s is not set"),
    "currency_mismatch": _("currency is %(actual_currency)s, not %(currency)s"),
    "currency_missing": _("currency is not set, not %(currency)s"),
    "operator_unknown": _("Unknown operator %(op)s."),
    "not_amount": _("%(field)s is not an amount"),
    "not_text_or_list": _("%(field)s is not text or a list"),
    "list_required": _("“is one of” needs a list of values"),
    "not_orderable": _("%(field)s is true/false and cannot be ordered"),
    "not_number": _("%(field)s is not a number"),
    "value_not_number": _("the value is not a number"),
}
ORDERING = {"gt", "gte", "lt", "lte"}
UNARY = {"is_set", "is_blank"}


class ConditionError(ValueError):
    """A condition that cannot be evaluated: a reason code from REASONS."""

    def __init__(self, code):
        self.code = code
        super().__init__(code)


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
    """Return {field, op, value, currency, actual, matched, reason, reason_params}."""
    field, op = condition["field"], condition["op"]
    expected, currency = condition.get("value"), (condition.get("currency") or "").lower()
    result = {"field": field, "op": op, "value": expected, "currency": currency}
    try:
        actual = lookup(field, context)
    except RenderError:
        actual = None  # an absent field is blank, and compares as nothing
    result["actual"] = actual
    result["reason_params"] = {}
    try:
        result["matched"], result["reason"] = _compare(
            op, actual, expected, currency, field, context
        )
    except ConditionError as e:
        result["matched"], result["reason"] = False, e.code
    if result["reason"] == "currency_mismatch":
        result["reason_params"] = {"actual_currency": _sibling_currency(field, context)}
    return result


def _blank(value):
    return value is None or value == "" or value == [] or value == {}


def _compare(op, actual, expected, currency, field, context):
    if op not in OPERATORS:
        raise ConditionError("operator_unknown")
    if op == "is_set":
        return not _blank(actual), ""
    if op == "is_blank":
        return _blank(actual), ""
    if actual is None:
        return False, "not_set"

    if currency:
        actual_currency = _sibling_currency(field, context)
        if actual_currency != currency:
            return False, "currency_mismatch" if actual_currency else "currency_missing"
        if not isinstance(actual, int) or isinstance(actual, bool):
            raise ConditionError("not_amount")
        if op in ("in", "not_in"):
            return _membership(op, actual, [int(v) for v in expected]), "money"
        return _ordered(op, actual, int(expected)), "money"

    if op == "contains":
        if isinstance(actual, str):
            return str(expected).lower() in actual.lower(), ""
        if isinstance(actual, list | dict):
            return expected in actual, ""
        raise ConditionError("not_text_or_list")
    if op in ("in", "not_in"):
        if not isinstance(expected, list):
            raise ConditionError("list_required")
        return _membership(op, _normal(field, actual), [_normal(field, v) for v in expected]), ""
    if isinstance(expected, bool) or isinstance(actual, bool):
        if op not in ("eq", "ne"):
            raise ConditionError("not_orderable")
        return _ordered(op, actual, _as_bool(expected)), ""
    if isinstance(expected, int | float | Decimal) or op in ORDERING:
        return _ordered(
            op, _number(actual, "not_number"), _number(expected, "value_not_number")
        ), ""
    return _ordered(op, _normal(field, actual), _normal(field, expected)), ""


def _sibling_currency(field, context):
    parent = field.rsplit(".", 1)[0]
    try:
        currency = lookup(parent, context).get("currency")
    except (RenderError, AttributeError):
        return ""
    return currency.lower() if isinstance(currency, str) else ""  # a payload's own shape


def _normal(field, value):
    # Stripe sends currency codes in lower case; staff often type them in upper case.
    if field.endswith("currency") and isinstance(value, str):
        return value.lower()
    return value


def _number(value, code):
    if isinstance(value, bool):
        raise ConditionError(code)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ConditionError(code) from None


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
    """Return a condition's test as staff would say it: "is greater than $1,000.00"."""
    op = condition["op"]
    currency = (condition.get("currency") or "").lower()
    if op in UNARY or op not in TESTS:
        return str(OPERATORS.get(op, op))
    value = condition.get("value")
    if currency:  # money, through the one money helper
        values = value if isinstance(value, list) else [value]
        shown = ", ".join(_money_or_text(v, currency) for v in values)
    else:
        shown = display_value(value)
    return str(TESTS[op]) % {"value": shown}


def explain(result):
    """Return, in the active language, why a condition result (from `evaluate`) came out so.

    Results stored before reasons were codes hold an English sentence: it is shown as is.
    """
    reason = result.get("reason") or ""
    op, currency = result.get("op"), (result.get("currency") or "").lower()
    if reason == "money" and op in COMPARED:
        expected = result.get("value")
        values = expected if isinstance(expected, list) else [expected]
        shown = ", ".join(_money_or_text(v, currency) for v in values)
        return str(COMPARED[op]) % {
            "actual": _money_or_text(result.get("actual"), currency),
            "value": shown,
        }
    template = REASONS.get(reason)
    if template is None:
        return "" if reason == "money" else str(reason)
    params = {
        "field": result.get("field", ""),
        "op": op,
        "currency": currency,
        **(result.get("reason_params") or {}),
    }
    return str(template) % params


def readable(results):
    """Return condition results with their test and reason in words, for a screen or report."""
    return [{**r, "test": describe(r), "why": explain(r)} for r in results]


def _money_or_text(value, currency):
    try:
        return format_money(int(value), currency)
    except (TypeError, ValueError):
        return str(value)
