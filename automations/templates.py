"""Workflow templates for the scenarios ops teams asked for (see SCENARIOS in the docs).

Each is a definition dict (automations/definitions.py); `manage.py install_templates`
creates them as drafts for staff to adjust (addresses, channels, amounts) and activate.
"""

TEAM = "ops@example.com"
USD_1000 = 100000  # amounts are minor units: 1,000.00 USD
USD_2000 = 200000
USD_15 = 1500  # Stripe's dispute fee


def _large_order(amount=USD_1000):
    return [
        [{"field": "trigger.data.object.amount", "op": "gt", "value": amount, "currency": "usd"}]
    ]


def _thank_you_email(team):
    return {
        "name": "notify_team",
        "kind": "email.send",
        "config": {
            "recipient": "team",
            "to": team,
            "subject": "Large order {{trigger.data.object.id}}: add a hand-written note",
            "body": (
                "A customer just paid {{trigger.data.object.amount | money}}.\n\n"
                "Customer ID: {{trigger.data.object.customer}}\n"
                "Amount: {{trigger.data.object.amount | money}}\n"
                "Payment: {{trigger.data.object.id}}\n\n"
                "Please add a hand-written thank-you note before shipping.\n"
            ),
        },
    }


def personalise_large_orders(team=TEAM):
    """A1: a payment over 1,000 USD emails the team to add a thank-you note."""
    return {
        "name": "Personalise large orders",
        "description": "Payments over 1,000 USD: ask the team for a hand-written thank-you note.",
        "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
        "conditions": _large_order(),
        "steps": [_thank_you_email(team)],
    }


def tag_vip_customers(team=TEAM):
    """A2: as A1, and a payment over 2,000 USD tags the customer Tier=VIP."""
    return {
        "name": "Tag VIP customers",
        "description": "Payments over 1,000 USD notify the team; over 2,000 USD tag the "
        "customer as VIP.",
        "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
        "conditions": _large_order(),
        "steps": [
            _thank_you_email(team),
            {
                "name": "is_vip",
                "kind": "branch",
                "conditions": _large_order(USD_2000),
                "then": [
                    {
                        "name": "tag_vip",
                        "kind": "stripe.update_customer_metadata",
                        "config": {
                            "customer": "{{trigger.data.object.customer}}",
                            "metadata": {"Tier": "VIP"},
                        },
                    }
                ],
                "else": [],
            },
        ],
    }


def refund_early_fraud_warnings(team=TEAM):
    """A3: refund a charge with an early fraud warning when it is under the dispute fee."""
    return {
        "name": "Act on Radar early fraud warnings",
        "description": "Charges under 15 USD with an early fraud warning are refunded (cheaper "
        "than a dispute); larger ones go to the team to investigate.",
        "trigger": {"kind": "stripe_event", "event_type": "radar.early_fraud_warning.created"},
        "conditions": [],
        # Each refund is under 15 USD; more than 20 of them in a day is an attack or a bug,
        # and waits for an approver.
        "limits": {"per_run": {"usd": USD_15}, "per_day": {"usd": 20 * USD_15}},
        "steps": [
            {
                "name": "charge",
                "kind": "stripe.retrieve_charge",
                "config": {"charge": "{{trigger.data.object.charge}}"},
            },
            {
                "name": "under_dispute_fee",
                "kind": "branch",
                "conditions": [
                    [
                        {
                            "field": "steps.charge.amount",
                            "op": "lt",
                            "value": USD_15,
                            "currency": "usd",
                        }
                    ]
                ],
                "then": [
                    {
                        "name": "refund",
                        "kind": "stripe.create_refund",
                        "config": {
                            "charge": "{{steps.charge.id}}",
                            "amount": "{{steps.charge.amount}}",
                            "currency": "{{steps.charge.currency}}",
                            "reason": "fraudulent",
                            "metadata": {"early_fraud_warning": "{{trigger.data.object.id}}"},
                        },
                    }
                ],
                "else": [
                    {
                        "name": "ask_team",
                        "kind": "email.send",
                        "config": {
                            "recipient": "team",
                            "to": team,
                            "subject": "Investigate early fraud warning on {{steps.charge.id}}",
                            "body": (
                                "Radar raised an early fraud warning "
                                "({{trigger.data.object.fraud_type}}).\n\n"
                                "Charge: {{steps.charge.id}}\n"
                                "Amount: {{steps.charge.amount | money}}\n"
                                "Customer ID: {{steps.charge.customer}}\n\n"
                                "It is above the dispute fee, so it was not refunded "
                                "automatically.\n"
                            ),
                        },
                    }
                ],
            },
        ],
    }


OPS_CHANNEL = "#payments"
# Saved filters that templates run on, created (shared, with no owner) when installing a
# template that needs one; the slug is fixed so the template can name it.
FAILED_YESTERDAY = "failed-yesterday"
SAVED_FILTERS = {
    FAILED_YESTERDAY: {
        "name": "Payments that failed yesterday",
        "list": "djstripe.charge",
        "query": "created__period=yesterday&status__in=failed",
    },
}


def failed_payments_digest(team=None, channel=OPS_CHANNEL):
    """B: every morning at 9:00 Tokyo time, one Slack message listing yesterday's failed
    payments, their count and total per currency (`team` is unused: it posts to Slack)."""
    return {
        "name": "Daily failed payments digest",
        "description": "Every morning at 9:00 (Asia/Tokyo), post yesterday's failed payments "
        "to Slack as one message: how many, the total per currency, and each payment.",
        "trigger": {
            "kind": "schedule",
            "mode": "digest",
            "filter": FAILED_YESTERDAY,
            "every": "daily",
            "at": "09:00",
            "cron": "0 9 * * *",
            "timezone": "Asia/Tokyo",
        },
        # A day without failed payments posts nothing.
        "conditions": [[{"field": "trigger.data.object.count", "op": "gt", "value": 0}]],
        "steps": [
            {
                "name": "post_digest",
                "kind": "slack.post_message",
                "config": {
                    "channel": channel,
                    "text": (
                        "{{trigger.data.object.count}} failed payments yesterday "
                        "({{trigger.data.object.filter.name}})\n"
                        "{{#each trigger.data.object.totals limit=20}}"
                        "Total: {{item.amount | money}}\n{{/each}}"
                        "{{#each trigger.data.object.rows limit=20}}"
                        "• {{item.id}} {{item.amount | money}} {{item.failure_code}}\n"
                        "{{/each}}"
                    ),
                },
            }
        ],
    }


def ensure_filters(definition):
    """Create the saved filter a template's trigger names, if it is one of SAVED_FILTERS
    and missing; return it (or None)."""
    from automations.models import SavedFilter

    slug = (definition.get("trigger") or {}).get("filter")
    if slug not in SAVED_FILTERS:
        return None
    saved, _created = SavedFilter.objects.get_or_create(
        slug=slug, defaults={**SAVED_FILTERS[slug], "shared": True, "owner": None}
    )
    return saved


def refund_as_store_credit(team=None):
    """C: selected charges are refunded as store credit (a promotion code only the
    customer can use, once, for 365 days), and the customer is emailed (`team` is unused:
    the email goes to the customer)."""
    from automations import store_credit

    return store_credit.preset()


TEMPLATES = {
    "personalise_large_orders": personalise_large_orders,
    "tag_vip_customers": tag_vip_customers,
    "refund_early_fraud_warnings": refund_early_fraud_warnings,
    "refund_as_store_credit": refund_as_store_credit,
    "failed_payments_digest": failed_payments_digest,
}
