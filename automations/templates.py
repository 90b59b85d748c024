"""Workflow templates for the scenarios ops teams asked for (see SCENARIOS in the docs).

Each is a definition dict (automations/definitions.py); `manage.py install_templates`
creates them as drafts for staff to adjust (addresses, channels, amounts) and activate.
"""

import inspect

from django.utils.translation import gettext, gettext_noop

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
        "name": gettext_noop("Personalise large orders"),
        "description": gettext_noop(
            "Payments over 1,000 USD: ask the team for a hand-written thank-you note."
        ),
        "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
        "conditions": _large_order(),
        "steps": [_thank_you_email(team)],
    }


def tag_vip_customers(team=TEAM):
    """A2: as A1, and a payment over 2,000 USD tags the customer Tier=VIP."""
    return {
        "name": gettext_noop("Tag VIP customers"),
        "description": gettext_noop(
            "Payments over 1,000 USD notify the team; over 2,000 USD tag the customer as VIP."
        ),
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
        "name": gettext_noop("Act on Radar early fraud warnings"),
        "description": gettext_noop(
            "Charges under 15 USD with an early fraud warning are refunded (cheaper "
            "than a dispute); larger ones go to the team to investigate."
        ),
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
        "name": gettext_noop("Daily failed payments digest"),
        "description": gettext_noop(
            "Every morning at 9:00 (Asia/Tokyo), post yesterday's failed payments "
            "to Slack as one message: how many, the total per currency, and each payment."
        ),
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


# ------------------------------------------------------------------ D and E
#
# Names and descriptions are stored in English as written; gettext_noop marks them for
# translation, so the template gallery shows them in the viewer's language.

CHURN_CHANNEL = "#customer-success"
# Who the cancellation message notifies: Slack's <!here>, a user group (<!subteam^S…>) or a
# person (<@U…>). It is written into the message text as it is, so Slack notifies them;
# the data inserted around it is escaped (a customer named "<!channel>" notifies nobody).
MENTION = "<!here>"
# The one product whose cancellations are reported: replace it with yours in the branch.
PRODUCT = "prod_CHANGE_ME"
SHOP = "our shop"
SHOP_URL = "https://example.com/shop"
# E3's audience: customers billed to these countries (ISO 3166-1 alpha-2).
COUNTRIES = ["JP"]


def subscription_canceled_to_slack(
    team=None, product=PRODUCT, channel=CHURN_CHANNEL, mention=MENTION
):
    """D: a cancelled subscription to one product posts who left, what and for how much
    to a Slack channel, mentioning the people who follow up (`team` is unused: it posts to
    Slack). Other products' cancellations take the empty arm and send nothing."""
    return {
        "name": gettext_noop("Cancelled subscriptions to Slack"),
        "description": gettext_noop(
            "When a subscription to one product ends, post the customer's name and email, "
            "the product, the billing interval and the amount to a Slack channel, with a "
            "mention. Set the product id in the branch and the mention in the message."
        ),
        "trigger": {"kind": "stripe_event", "event_type": "customer.subscription.deleted"},
        "conditions": [],
        "steps": [
            {
                # On the event's own ids, so other products cost no Stripe request.
                "name": "only_this_product",
                "kind": "branch",
                "conditions": [
                    [
                        {
                            "field": "trigger.data.object.items.data.0.price.product",
                            "op": "eq",
                            "value": product,
                        }
                    ]
                ],
                "then": [
                    {
                        "name": "subscription",
                        "kind": "stripe.retrieve_subscription",
                        "config": {"subscription": "{{trigger.data.object.id}}"},
                    },
                    {
                        "name": "tell_team",
                        "kind": "slack.post_message",
                        "config": {
                            "channel": channel,
                            "text": (
                                mention + " A subscription to "
                                "{{steps.subscription.product_name}} has ended.\n"
                                "Customer: {{steps.subscription.customer_name}} "
                                "({{steps.subscription.customer_email}})\n"
                                "Plan: {{steps.subscription.amount | money}} every "
                                "{{steps.subscription.interval_count}} "
                                "{{steps.subscription.interval}}\n"
                                "Subscription: {{steps.subscription.id}} "
                                "(customer {{steps.subscription.customer}}, "
                                "product {{steps.subscription.product}})"
                            ),
                        },
                    },
                ],
                "else": [],
            }
        ],
    }


def _to_customer(name, customer, subject, body):
    return {
        "name": name,
        "kind": "email.send",
        "config": {"recipient": "customer", "customer": customer, "subject": subject, "body": body},
    }


def welcome_new_customers(team=None, shop=SHOP, url=SHOP_URL):
    """E1: a new Stripe customer with an email address gets a welcome email (`team` is
    unused: the email goes to the customer)."""
    return {
        "name": gettext_noop("Welcome new customers"),
        "description": gettext_noop(
            "When a customer is created in Stripe with an email address, send them a welcome email."
        ),
        "trigger": {"kind": "stripe_event", "event_type": "customer.created"},
        # Without an address the step could only fail; such customers start no run.
        "conditions": [[{"field": "trigger.data.object.email", "op": "is_set"}]],
        "steps": [
            _to_customer(
                "welcome",
                "{{trigger.data.object.id}}",
                f"Welcome to {shop}",
                "Hello,\n\n"
                f"Thank you for joining {shop}. Your account is ready, and we are glad "
                "to have you.\n\n"
                f"Have a look around: {url}\n\n"
                "If you have a question, just reply to this email.\n",
            )
        ],
    }


def cross_sell_after_purchase(team=None, shop=SHOP, offer="our accessories", url=SHOP_URL):
    """E2: a successful charge of a known customer emails them a suggestion (`team` is
    unused: the email goes to the customer)."""
    return {
        "name": gettext_noop("Cross-sell after a purchase"),
        "description": gettext_noop(
            "After a successful charge, email the customer a thank-you with a suggestion "
            "of what goes well with their purchase."
        ),
        "trigger": {"kind": "stripe_event", "event_type": "charge.succeeded"},
        # A guest payment has no customer to write to.
        "conditions": [[{"field": "trigger.data.object.customer", "op": "is_set"}]],
        "steps": [
            _to_customer(
                "suggest",
                "{{trigger.data.object.customer}}",
                "Thank you for your purchase",
                "Hello,\n\n"
                "Thank you for your payment of {{trigger.data.object.amount | money}}.\n\n"
                f"Customers who bought the same often add {offer}: {url}\n\n"
                f"{shop}\n",
            )
        ],
    }


def payment_failed_reminder(team=None, countries=None, shop=SHOP):
    """E3: a failed invoice payment of a customer billed to one of `countries` emails
    them a reminder with the invoice's payment link (`team` is unused)."""
    return {
        "name": gettext_noop("Failed payment reminder"),
        "description": gettext_noop(
            "When an invoice payment fails, remind the customer to update their payment "
            "method, with the invoice's payment link; only for customers billed to the "
            "countries in the condition."
        ),
        "trigger": {"kind": "stripe_event", "event_type": "invoice.payment_failed"},
        # The audience: the billing country Stripe copies onto the invoice.
        "conditions": [
            [
                {
                    "field": "trigger.data.object.customer_address.country",
                    "op": "in",
                    "value": list(countries or COUNTRIES),
                }
            ]
        ],
        "steps": [
            _to_customer(
                "remind",
                "{{trigger.data.object.customer}}",
                "Your payment of {{trigger.data.object.amount_due | money}} did not go through",
                "Hello,\n\n"
                "We could not collect the payment for invoice "
                "{{trigger.data.object.number}} ({{trigger.data.object.amount_due | money}})."
                "\n\n"
                "Please update your payment method or pay the invoice here:\n"
                "{{trigger.data.object.hosted_invoice_url}}\n\n"
                "We will try again automatically; if you have already sorted it out, "
                "please ignore this email.\n\n"
                f"{shop}\n",
            )
        ],
    }


TEMPLATES = {
    "personalise_large_orders": personalise_large_orders,
    "tag_vip_customers": tag_vip_customers,
    "refund_early_fraud_warnings": refund_early_fraud_warnings,
    "refund_as_store_credit": refund_as_store_credit,
    "failed_payments_digest": failed_payments_digest,
    "subscription_canceled_to_slack": subscription_canceled_to_slack,
    "welcome_new_customers": welcome_new_customers,
    "cross_sell_after_purchase": cross_sell_after_purchase,
    "payment_failed_reminder": payment_failed_reminder,
}


def build(key, **params):
    """Return template `key`'s definition, with the given parameters it takes (`team`,
    `channel`, …); parameters it does not take, or left None, keep their defaults."""
    func = TEMPLATES[key]
    accepted = inspect.signature(func).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    return func(
        **{k: v for k, v in params.items() if (takes_any or k in accepted) and v is not None}
    )


def gallery():
    """Return each template as a plain dict for the "New workflow from template" page:
    key, name and description (in the viewer's language), trigger label, providers, and
    whether it moves money."""
    from automations import definition, workflows

    entries = []
    for key in TEMPLATES:
        data = build(key)
        description = data.get("description")
        entries.append(
            {
                "key": key,
                "name": gettext(data["name"]),
                # gettext("") would return the catalog's header, not "".
                "description": gettext(description) if description else "",
                "trigger": str(workflows.trigger_label(data["trigger"])),
                "providers": definition.providers(data),
                "moves_money": definition.moves_money(data),
            }
        )
    return entries
