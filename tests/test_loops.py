"""Loops in message templates: `{{#each LIST limit=N}}…{{/each}}` renders a bounded list with
"…and N more", keeps Slack's escaping, and the one validator refuses what it cannot run."""

import pytest

from automations import definition
from automations.engine.context import build_context
from automations.engine.references import RenderError, references_in, render
from automations.models import SavedFilter
from integrations.slack_actions import escape


def digest(rows, count=None):
    return build_context(
        {
            "id": "schedule:2026-12-02T09:00:00+09:00",
            "object": "kanri.schedule",
            "type": "schedule.digest",
            "data": {
                "object": {
                    "object": "digest",
                    "rows": rows,
                    "count": len(rows) if count is None else count,
                    "totals": [{"currency": "usd", "amount": 4500}],
                }
            },
        }
    )


def charges(count):
    return [
        {"id": f"ch_{i}", "amount": 1000 + i, "currency": "usd", "failure_code": "card_declined"}
        for i in range(1, count + 1)
    ]


ROWS = "{{#each trigger.data.object.rows limit=2}}• {{item.id}} {{item.amount | money}}\n{{/each}}"


def test_a_loop_renders_each_item_up_to_its_limit_then_says_how_many_more():
    text = "Failed:\n" + ROWS + "That is all."

    assert render(text, digest(charges(3))) == (
        "Failed:\n• ch_1 $10.01\n• ch_2 $10.02\n…and 1 more\nThat is all."
    )


def test_a_loop_within_its_limit_has_no_more_line_and_an_empty_list_renders_nothing():
    assert render(ROWS, digest(charges(2))) == "• ch_1 $10.01\n• ch_2 $10.02\n"
    assert render("[" + ROWS + "]", digest([])) == "[]"


def test_a_loop_without_a_limit_shows_ten_items():
    text = "{{#each trigger.data.object.rows}}{{item.id}} {{/each}}"

    assert render(text, digest(charges(12))) == (
        "ch_1 ch_2 ch_3 ch_4 ch_5 ch_6 ch_7 ch_8 ch_9 ch_10 \n…and 2 more"
    )


def test_the_more_line_counts_every_row_of_a_digest_not_only_the_rows_it_kept():
    # A digest keeps at most 200 rows in its snapshot; its count covers all of them.
    assert render(ROWS, digest(charges(2), count=250)) == (
        "• ch_1 $10.01\n• ch_2 $10.02\n…and 248 more\n"
    )


def test_values_inside_a_loop_are_escaped_for_slack_and_never_rendered_again():
    rows = [
        {"id": "<!channel>", "amount": 100, "currency": "usd"},
        {"id": "{{trigger.id}} & {{/each}}", "amount": 200, "currency": "usd"},
    ]

    assert render(ROWS, digest(rows), escape) == (
        "• &lt;!channel&gt; $1.00\n• {{trigger.id}} &amp; {{/each}} $2.00\n"
    )


def test_only_a_digests_rows_count_more_than_they_hold():
    text = "{{#each trigger.data.object.totals limit=1}}{{item.currency}}{{/each}}"

    # The digest counts 250 rows; its one total is all there is.
    assert render(text, digest(charges(2), count=250)) == "usd"


def test_a_loop_over_something_that_is_not_a_list_fails_the_render():
    text = "{{#each trigger.data.object.count}}{{item.id}}{{/each}}"

    with pytest.raises(RenderError, match="is not a list"):
        render(text, digest(charges(1)))


def test_a_loop_counts_as_its_list_in_references_in():
    text = "{{trigger.id}} " + ROWS + "{{#each trigger.data.object.totals}}{{item.amount}}{{/each}}"

    assert references_in({"text": text}) == [
        "trigger.id",
        "trigger.data.object.rows",
        "trigger.data.object.totals",
    ]


# ---------------------------------------------------------------- validation


@pytest.fixture
def failed_charges(db):
    return SavedFilter.objects.create(
        name="Failed", list="djstripe.charge", query="status__in=failed", shared=True
    )


def slack_digest(text, saved_filter, mode="digest"):
    return {
        "name": "Digest",
        "trigger": {
            "kind": "schedule",
            "mode": mode,
            "filter": saved_filter.slug,
            "every": "daily",
            "at": "09:00",
            "timezone": "Asia/Tokyo",
        },
        "conditions": [],
        "steps": [
            {
                "name": "post",
                "kind": "slack.post_message",
                "config": {"channel": "C0OPS", "text": text},
            }
        ],
    }


def located(data):
    return [(p.where, p.code, p.params) for p in definition.validate(data)]


def test_a_loop_over_a_digests_rows_with_known_item_fields_is_valid(failed_charges):
    text = (
        "{{trigger.data.object.count}} failed\n" + ROWS + "{{#each trigger.data.object.totals}}"
        "{{item.amount | money}}{{/each}}"
    )

    assert located(slack_digest(text, failed_charges)) == []


def test_an_unknown_item_field_is_refused_naming_the_list(failed_charges):
    text = "{{#each trigger.data.object.rows}}{{item.amout}}{{/each}}"

    assert located(slack_digest(text, failed_charges)) == [
        (
            "steps.0.config.text",
            "loop_item_unknown",
            {"path": "item.amout", "list": "trigger.data.object.rows"},
        )
    ]


def test_nested_loops_are_refused(failed_charges):
    text = (
        "{{#each trigger.data.object.rows}}{{#each trigger.data.object.totals}}"
        "{{item.amount}}{{/each}}{{/each}}"
    )

    assert [code for _, code, _ in located(slack_digest(text, failed_charges))] == ["loop_nested"]


@pytest.mark.parametrize(
    ("text", "code", "params"),
    [
        (
            "{{#each trigger.data.object.rows limit=51}}{{item.id}}{{/each}}",
            "loop_limit",
            {"limit": 51, "max": 50},
        ),
        (
            "{{#each trigger.data.object.rows limit=0}}{{item.id}}{{/each}}",
            "loop_limit",
            {"limit": 0, "max": 50},
        ),
        (
            "{{#each trigger.data.object.rows limit=ten}}{{item.id}}{{/each}}",
            "loop_syntax",
            {"text": "{{#each trigger.data.object.rows limit=ten}}"},
        ),
        (
            "{{#each trigger.data.object.rows}}{{item.id}}",
            "loop_unbalanced",
            {"text": "{{#each trigger.data.object.rows}}{{item.id}}"},
        ),
        ("{{item.id}}{{/each}}", "loop_unbalanced", {"text": "{{item.id}}{{/each}}"}),
        (
            "{{#each trigger.data.object.count}}{{item.id}}{{/each}}",
            "loop_not_list",
            {"path": "trigger.data.object.count", "type": "integer"},
        ),
        (
            "{{#each trigger.data.object.rows}}{{item.status | money}}{{/each}}",
            "filter_type",
            {"path": "item.status", "type": "string"},
        ),
        (
            "Outside a loop: {{item.id}}",
            "reference_root",
            {"path": "item.id", "roots": "trigger, steps, run, workflow"},
        ),
    ],
)
def test_loops_the_engine_cannot_run_are_refused(failed_charges, text, code, params):
    assert located(slack_digest(text, failed_charges)) == [("steps.0.config.text", code, params)]


def test_a_loop_over_a_list_without_known_items_is_refused():
    data = {
        "name": "Languages",
        "trigger": {"kind": "stripe_event", "event_type": "customer.created"},
        "conditions": [],
        "steps": [
            {
                "name": "post",
                "kind": "slack.post_message",
                "config": {
                    "channel": "C0OPS",
                    "text": "{{#each trigger.data.object.preferred_locales}}{{item}}{{/each}}",
                },
            }
        ],
    }

    assert located(data) == [
        (
            "steps.0.config.text",
            "loop_not_list",
            {"path": "trigger.data.object.preferred_locales", "type": "list"},
        )
    ]


def test_in_each_row_mode_the_row_is_the_object_and_there_is_no_list_to_loop(failed_charges):
    good = "{{trigger.data.object.id}} {{trigger.data.object.amount | money}}"
    bad = "{{#each trigger.data.object.rows}}{{item.id}}{{/each}}"

    assert located(slack_digest(good, failed_charges, mode="each")) == []
    assert [code for _, code, _ in located(slack_digest(bad, failed_charges, mode="each"))] == [
        "reference_field_unknown"
    ]
