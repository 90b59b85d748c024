import pytest

from automations.engine.context import build_context
from automations.engine.references import RenderError, render
from integrations.slack_actions import escape

EVENT = {
    "id": "evt_1",
    "type": "payment_intent.succeeded",
    "data": {
        "object": {
            "id": "pi_1",
            "amount": 150000,
            "currency": "usd",
            "customer": "cus_1",
            "metadata": {"order": "A-1"},
            "description": None,
            "charges": [{"id": "ch_1"}],
        }
    },
}


def context(**steps):
    return build_context(EVENT, steps=steps)


def test_references_render_from_the_trigger_and_earlier_steps():
    text = (
        "{{trigger.data.object.customer}} paid {{ trigger.data.object.amount|money }} "
        "({{steps.charge.id}})"
    )

    assert render(text, context(charge={"id": "ch_9"})) == "cus_1 paid $1,500.00 (ch_9)"


def test_a_field_holding_one_reference_keeps_its_type():
    assert render("{{trigger.data.object.amount}}", context()) == 150000
    assert render({"amount": "{{ steps.charge.amount }}"}, context(charge={"amount": 900})) == {
        "amount": 900
    }
    assert render("{{trigger.data.object.metadata}}", context()) == {"order": "A-1"}


def test_list_items_and_null_values_render():
    assert render("{{trigger.data.object.charges.0.id}}", context()) == "ch_1"
    assert render("note: {{trigger.data.object.description}}.", context()) == "note: ."


def test_rendering_is_one_pass_so_data_cannot_inject_references():
    ctx = context(charge={"id": "{{trigger.data.object.amount}}"})

    assert render("id={{steps.charge.id}}", ctx) == "id={{trigger.data.object.amount}}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{{trigger.data.object.amout}}",
            "Unknown reference {{trigger.data.object.amout}}: trigger.data.object has no 'amout'.",
        ),
        (
            "{{steps.chrge.id}}",
            "Unknown reference {{steps.chrge.id}}: no step named 'chrge' has run before this one.",
        ),
        (
            "{{event.id}}",
            "Unknown reference {{event.id}}: it must start with trigger, steps, run, workflow.",
        ),
        (
            "{{trigger.data.object.customer | money}}",
            "{{trigger.data.object.customer | money}} is not an amount with a currency.",
        ),
        ("{{trigger.id | shout}}", "Unknown filter 'shout'"),
    ],
)
def test_an_unknown_reference_is_a_clear_error(text, message):
    with pytest.raises(RenderError) as caught:
        render(text, context())
    assert str(caught.value).startswith(message)


def test_an_escape_applies_to_inserted_values_but_not_the_template():
    ctx = context(customer={"name": "<!channel> & co"})

    rendered = render("<!here> {{steps.customer.name}}", ctx, escape)

    assert rendered == "<!here> &lt;!channel&gt; &amp; co"
