"""Stored data as people read it on the run page and in previews.

JSON is pretty-printed as JSON (never a Python repr such as `OrderedDict()` or `{'a': 1}`),
line by line, and every Stripe amount that sits beside its `currency` gets a note with the
amount as money ("1500" → "$15.00"), through the one money helper.
"""

import copy
import json

from automations.money import format_money

# Stripe's names for amounts in minor units; each sits in an object with a `currency`.
MONEY_KEYS = frozenset(
    [
        "amount",
        "amount_captured",
        "amount_due",
        "amount_off",
        "amount_paid",
        "amount_received",
        "amount_refunded",
        "amount_remaining",
        "amount_subtotal",
        "amount_total",
        "balance",
        "subtotal",
        "total",
        "unit_amount",
    ]
)


def _is_amount(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _scalar(value):
    return json.dumps(value, ensure_ascii=False, default=str)


def json_lines(data):
    """Return [{"text", "note"}]: `data` as indented JSON, one row per line, with money
    notes on the lines of amounts."""
    lines = []

    def emit(value, indent, prefix, suffix, note=""):
        pad = "  " * indent
        if isinstance(value, dict) and value:
            lines.append({"text": f"{pad}{prefix}{{", "note": ""})
            currency = value.get("currency") if isinstance(value.get("currency"), str) else ""
            items = list(value.items())
            for index, (key, item) in enumerate(items):
                comma = "," if index < len(items) - 1 else ""
                money = ""
                if currency and key in MONEY_KEYS and _is_amount(item):
                    money = format_money(item, currency)
                emit(item, indent + 1, f"{_scalar(str(key))}: ", comma, money)
            lines.append({"text": f"{pad}}}{suffix}", "note": ""})
        elif isinstance(value, list | tuple) and value:
            lines.append({"text": f"{pad}{prefix}[", "note": ""})
            for index, item in enumerate(value):
                emit(item, indent + 1, "", "," if index < len(value) - 1 else "")
            lines.append({"text": f"{pad}]{suffix}", "note": ""})
        elif isinstance(value, dict):
            lines.append({"text": f"{pad}{prefix}{{}}{suffix}", "note": note})
        elif isinstance(value, list | tuple):
            lines.append({"text": f"{pad}{prefix}[]{suffix}", "note": note})
        else:
            lines.append({"text": f"{pad}{prefix}{_scalar(value)}{suffix}", "note": note})

    if data is None:
        return []
    emit(data, 0, "", "")
    return lines


def json_text(value):
    """Return one value as compact JSON text ("abc" as "abc", a dict as {"a": 1})."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def money_in(data):
    """Return the amounts in `data`'s top level as money: [("amount", "$15.00")]."""
    if not isinstance(data, dict) or not isinstance(data.get("currency"), str):
        return []
    return [
        (key, format_money(value, data["currency"]))
        for key, value in data.items()
        if key in MONEY_KEYS and _is_amount(value)
    ]


def _money_conditions(groups):
    for group in groups if isinstance(groups, list) else []:
        for condition in group if isinstance(group, list) else []:
            if not isinstance(condition, dict) or not condition.get("currency"):
                continue
            value, currency = condition.get("value"), condition["currency"]
            if _is_amount(value):
                condition["value"] = format_money(value, currency)
            elif isinstance(value, list) and all(_is_amount(v) for v in value):
                condition["value"] = [format_money(v, currency) for v in value]


def money_definition(data):
    """Return a copy of a definition with its amounts as money, for people to compare
    versions: conditions, money caps and step amounts ("value": "$1,000.00")."""
    from automations.definition import iter_steps

    if not isinstance(data, dict):
        return data
    data = copy.deepcopy(data)
    _money_conditions(data.get("conditions"))
    for cap in (data.get("limits") or {}).values():
        if isinstance(cap, dict):
            for currency, value in cap.items():
                if _is_amount(value):
                    cap[currency] = format_money(value, currency)
    for step in iter_steps(data.get("steps") or []):
        _money_conditions(step.get("conditions"))
        config = step.get("config")
        if not isinstance(config, dict):
            continue
        for key in list(config):
            currency = config.get(f"{key}_currency")
            if isinstance(currency, str) and _is_amount(config[key]) and len(currency) == 3:
                config[key] = format_money(config[key], currency)
    return data


def condition_test(condition):
    """Return a condition's test in words, amounts as money: "is greater than $1,000.00"."""
    from automations.engine import conditions
    from automations.engine.conditions import OPERATORS, describe

    currency = str(condition.get("currency") or "")
    value = condition.get("value")
    op = condition.get("op")
    if (
        currency
        and op in OPERATORS
        and (_is_amount(value) or (isinstance(value, list) and all(_is_amount(v) for v in value)))
    ):
        shown = (
            format_money(value, currency)
            if _is_amount(value)
            else ", ".join(format_money(v, currency) for v in value)
        )
        # Word order differs between languages: a sentence per operator where there is one.
        if op in conditions.TESTS:
            return str(conditions.TESTS[op]) % {"value": shown}
        return f"{OPERATORS[op]} {shown}"
    try:
        return str(describe(condition))
    except (KeyError, TypeError, ValueError):
        return str(op or "")
