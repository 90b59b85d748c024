import pytest

from automations.engine.conditions import evaluate, matches
from automations.engine.context import build_context


def payment(amount, currency, **extra):
    return build_context(
        {
            "type": "payment_intent.succeeded",
            "data": {"object": {"amount": amount, "currency": currency, **extra}},
        }
    )


OVER_1000_USD = {
    "field": "trigger.data.object.amount",
    "op": "gt",
    "value": 100000,
    "currency": "usd",
}


@pytest.mark.parametrize(
    ("amount", "currency", "matched"),
    [
        (100001, "usd", True),
        (100000, "usd", False),
        (99999, "usd", False),
        (150000, "eur", False),
        (1500, "jpy", False),
        (150000000, "jpy", False),  # ¥150,000,000 is a large number, but not dollars
    ],
)
def test_money_conditions_compare_amounts_only_in_their_currency(amount, currency, matched):
    assert matches([[OVER_1000_USD]], payment(amount, currency))[0] is matched


def test_a_money_condition_explains_itself_in_money():
    from automations.engine.conditions import explain
    from automations.money import format_money

    result = evaluate(OVER_1000_USD, payment(150000, "usd"))
    assert (result["matched"], result["reason"], result["reason_params"]) == (True, "money", {})
    assert explain(result) == (
        f"{format_money(150000, 'usd')} is greater than {format_money(100000, 'usd')}"
    )
    other = evaluate(OVER_1000_USD, payment(150000, "eur"))
    assert (other["reason"], other["reason_params"]) == (
        "currency_mismatch",
        {"actual_currency": "eur"},
    )
    assert explain(other) == "currency is eur, not usd"


def test_groups_are_anded_inside_and_ored_between():
    usd = {"field": "trigger.data.object.currency", "op": "eq", "value": "USD"}
    vip = {"field": "trigger.data.object.metadata.tier", "op": "eq", "value": "vip"}
    big = {"field": "trigger.data.object.amount", "op": "gte", "value": 5000}
    groups = [[usd, big], [vip]]

    assert matches(groups, payment(5000, "usd"))[0] is True
    assert matches(groups, payment(4999, "usd"))[0] is False
    assert matches(groups, payment(1, "eur", metadata={"tier": "vip"}))[0] is True
    assert matches([], payment(1, "eur"))[0] is True


@pytest.mark.parametrize(
    ("condition", "matched"),
    [
        ({"op": "contains", "field": "trigger.data.object.email", "value": "EXAMPLE"}, True),
        ({"op": "in", "field": "trigger.data.object.country", "value": ["JP", "US"]}, True),
        ({"op": "not_in", "field": "trigger.data.object.country", "value": ["JP"]}, False),
        ({"op": "is_set", "field": "trigger.data.object.email"}, True),
        ({"op": "is_blank", "field": "trigger.data.object.description"}, True),
        ({"op": "is_blank", "field": "trigger.data.object.not_there"}, True),
        ({"op": "ne", "field": "trigger.data.object.livemode", "value": True}, True),
        ({"op": "lt", "field": "trigger.data.object.quantity", "value": 3}, True),
        ({"op": "gt", "field": "trigger.data.object.email", "value": 3}, False),
        ({"op": "eq", "field": "trigger.data.object.not_there", "value": "x"}, False),
    ],
)
def test_typed_operators(condition, matched):
    ctx = build_context(
        {
            "data": {
                "object": {
                    "email": "taro@example.test",
                    "country": "JP",
                    "description": "",
                    "livemode": False,
                    "quantity": 2,
                }
            }
        }
    )
    assert evaluate(condition, ctx)["matched"] is matched


def test_a_comparison_that_cannot_be_made_says_why():
    ctx = build_context({"data": {"object": {"email": "taro@example.test"}}})
    result = evaluate({"op": "gt", "field": "trigger.data.object.email", "value": 3}, ctx)
    from automations.engine.conditions import explain

    assert (result["matched"], result["reason"]) == (False, "not_number")
    assert explain(result) == "trigger.data.object.email is not a number"


def test_a_condition_is_described_as_staff_would_say_it():
    from automations.engine.conditions import describe

    assert describe(OVER_1000_USD) == "is greater than $1,000.00"
    assert describe({"op": "in", "value": ["JP", "US"]}) == "is one of JP, US"
    assert describe({"op": "is_set"}) == "is set"
    assert describe({"op": "lt", "value": 1500, "currency": "jpy"}) == "is less than ¥1,500"
    assert describe({"op": "in", "value": [500, 1500], "currency": "eur"}) == (
        "is one of €5.00, €15.00"
    )
