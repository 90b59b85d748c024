"""The fields the workflow editor offers, so staff never need to know Stripe's payloads.

Staff pick "Payment intent succeeded" and then "Amount" from a list; the editor stores
`trigger.data.object.amount`. The same catalog lets a workflow be checked before it is
activated: a reference to `trigger.data.object.amout` is a typo we can name, instead of a
blank that only shows up in a failed run. A field's type tells the editor which operators
and inputs fit: a "money" field is compared with a currency, a "timestamp" with a date.

Field names follow Stripe's current API (checked against stripe-python 15.6.2, API version
2026-08-26.dahlia). They deliberately leave out fields Stripe moved away in 2025-03-31.basil
(invoice.subscription, invoice.charge, invoice.payment_intent, invoice.paid,
subscription.current_period_end), so a new workflow is not written against a shape that a
webhook endpoint on a current API version no longer sends.
"""

import copy

from django.utils.translation import gettext_lazy as _

# Field types. "money" is an integer in minor units whose sibling `currency` sits in the
# same object: the money filter and money conditions read that sibling.
TYPES = (
    "money",
    "currency",
    "string",
    "id",
    "integer",
    "boolean",
    "timestamp",
    "email",
    "object",
    "list",
)


def _field(name, label, type_, choices=None):
    field = {"name": name, "label": label, "type": type_}
    if choices:
        field["choices"] = list(choices)
    return field


SUBSCRIPTION_STATUSES = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
]
INTERVALS = ["day", "week", "month", "year"]
COLLECTION_METHODS = ["charge_automatically", "send_invoice"]
REFUND_REASONS = ["duplicate", "expired_uncaptured_charge", "fraudulent", "requested_by_customer"]

EVENT_TYPES = {
    "customer.created": {
        "label": _("Customer created"),
        "object": "customer",
        "group": _("Customers"),
    },
    "customer.updated": {
        "label": _("Customer updated"),
        "object": "customer",
        "group": _("Customers"),
    },
    "customer.deleted": {
        "label": _("Customer deleted"),
        "object": "customer",
        "group": _("Customers"),
    },
    "customer.subscription.created": {
        "label": _("Subscription created"),
        "object": "subscription",
        "group": _("Subscriptions"),
    },
    "customer.subscription.updated": {
        "label": _("Subscription updated"),
        "object": "subscription",
        "group": _("Subscriptions"),
    },
    # Stripe sends this when a subscription ends, whether canceled at once or at period end.
    "customer.subscription.deleted": {
        "label": _("Subscription canceled (ended)"),
        "object": "subscription",
        "group": _("Subscriptions"),
    },
    "customer.subscription.trial_will_end": {
        "label": _("Subscription trial will end"),
        "object": "subscription",
        "group": _("Subscriptions"),
    },
    "customer.subscription.paused": {
        "label": _("Subscription paused"),
        "object": "subscription",
        "group": _("Subscriptions"),
    },
    "customer.subscription.resumed": {
        "label": _("Subscription resumed"),
        "object": "subscription",
        "group": _("Subscriptions"),
    },
    "charge.succeeded": {
        "label": _("Charge succeeded"),
        "object": "charge",
        "group": _("Payments"),
    },
    "charge.failed": {"label": _("Charge failed"), "object": "charge", "group": _("Payments")},
    "charge.captured": {"label": _("Charge captured"), "object": "charge", "group": _("Payments")},
    "payment_intent.succeeded": {
        "label": _("Payment intent succeeded"),
        "object": "payment_intent",
        "group": _("Payments"),
    },
    "payment_intent.payment_failed": {
        "label": _("Payment intent failed"),
        "object": "payment_intent",
        "group": _("Payments"),
    },
    "payment_intent.canceled": {
        "label": _("Payment intent canceled"),
        "object": "payment_intent",
        "group": _("Payments"),
    },
    "invoice.created": {"label": _("Invoice created"), "object": "invoice", "group": _("Invoices")},
    "invoice.updated": {"label": _("Invoice updated"), "object": "invoice", "group": _("Invoices")},
    "invoice.finalized": {
        "label": _("Invoice finalized"),
        "object": "invoice",
        "group": _("Invoices"),
    },
    "invoice.sent": {"label": _("Invoice sent"), "object": "invoice", "group": _("Invoices")},
    "invoice.paid": {"label": _("Invoice paid"), "object": "invoice", "group": _("Invoices")},
    "invoice.payment_succeeded": {
        "label": _("Invoice payment succeeded"),
        "object": "invoice",
        "group": _("Invoices"),
    },
    "invoice.payment_failed": {
        "label": _("Invoice payment failed"),
        "object": "invoice",
        "group": _("Invoices"),
    },
    "invoice.payment_action_required": {
        "label": _("Invoice payment needs customer action"),
        "object": "invoice",
        "group": _("Invoices"),
    },
    # A preview of the next renewal: Stripe sends it without an invoice id or number.
    "invoice.upcoming": {
        "label": _("Invoice upcoming (renewal notice)"),
        "object": "invoice",
        "group": _("Invoices"),
    },
    "invoice.voided": {"label": _("Invoice voided"), "object": "invoice", "group": _("Invoices")},
    "invoice.marked_uncollectible": {
        "label": _("Invoice marked uncollectible"),
        "object": "invoice",
        "group": _("Invoices"),
    },
    "radar.early_fraud_warning.created": {
        "label": _("Early fraud warning created"),
        "object": "radar.early_fraud_warning",
        "group": _("Fraud"),
    },
    "radar.early_fraud_warning.updated": {
        "label": _("Early fraud warning updated"),
        "object": "radar.early_fraud_warning",
        "group": _("Fraud"),
    },
    "checkout.session.completed": {
        "label": _("Checkout completed"),
        "object": "checkout.session",
        "group": _("Checkout"),
    },
    "checkout.session.expired": {
        "label": _("Checkout expired"),
        "object": "checkout.session",
        "group": _("Checkout"),
    },
    "checkout.session.async_payment_succeeded": {
        "label": _("Checkout delayed payment succeeded"),
        "object": "checkout.session",
        "group": _("Checkout"),
    },
    "checkout.session.async_payment_failed": {
        "label": _("Checkout delayed payment failed"),
        "object": "checkout.session",
        "group": _("Checkout"),
    },
    # charge.refunded carries the charge, not the refund: amount_refunded is the running total.
    "charge.refunded": {"label": _("Charge refunded"), "object": "charge", "group": _("Refunds")},
    "refund.created": {"label": _("Refund created"), "object": "refund", "group": _("Refunds")},
    "refund.updated": {"label": _("Refund updated"), "object": "refund", "group": _("Refunds")},
    "refund.failed": {"label": _("Refund failed"), "object": "refund", "group": _("Refunds")},
}

OBJECT_FIELDS = {
    "customer": [
        _field("id", _("Customer ID"), "id"),
        _field("email", _("Email"), "email"),
        _field("name", _("Name"), "string"),
        _field("phone", _("Phone"), "string"),
        _field("description", _("Description"), "string"),
        _field("address.country", _("Country (address)"), "string"),
        _field("address.city", _("City (address)"), "string"),
        _field("address.postal_code", _("Postal code (address)"), "string"),
        _field("currency", _("Currency"), "currency"),
        # Stripe keeps it in the customer's `currency`; null until the first charge sets one.
        _field("balance", _("Balance (negative is credit)"), "money"),
        _field("delinquent", _("Delinquent"), "boolean"),
        _field("tax_exempt", _("Tax exemption"), "string", ["none", "exempt", "reverse"]),
        _field("preferred_locales", _("Preferred languages"), "list"),
        _field("created", _("Created"), "timestamp"),
        _field("metadata", _("Metadata"), "object"),
    ],
    "subscription": [
        _field("id", _("Subscription ID"), "id"),
        _field("customer", _("Customer ID"), "id"),
        _field("status", _("Status"), "string", SUBSCRIPTION_STATUSES),
        _field("currency", _("Currency"), "currency"),
        # Price and period live on the items; most subscriptions have exactly one.
        _field("items.data.0.price.product", _("Product ID (first item)"), "id"),
        _field("items.data.0.price.id", _("Price ID (first item)"), "id"),
        _field("items.data.0.price.unit_amount", _("Unit price (first item)"), "money"),
        _field("items.data.0.price.currency", _("Price currency (first item)"), "currency"),
        _field(
            "items.data.0.price.recurring.interval",
            _("Billing interval (first item)"),
            "string",
            INTERVALS,
        ),
        _field(
            "items.data.0.price.recurring.interval_count",
            _("Intervals per billing cycle (first item)"),
            "integer",
        ),
        _field("items.data.0.quantity", _("Quantity (first item)"), "integer"),
        # Moved from the subscription to its items in API version 2025-03-31.basil.
        _field(
            "items.data.0.current_period_end", _("Current period end (first item)"), "timestamp"
        ),
        _field("cancel_at_period_end", _("Cancels at period end"), "boolean"),
        _field("cancel_at", _("Cancels at"), "timestamp"),
        _field("canceled_at", _("Canceled at"), "timestamp"),
        _field("ended_at", _("Ended at"), "timestamp"),
        _field(
            "cancellation_details.reason",
            _("Cancellation reason"),
            "string",
            [
                "canceled_by_retention_policy",
                "cancellation_requested",
                "payment_disputed",
                "payment_failed",
            ],
        ),
        _field(
            "cancellation_details.feedback",
            _("Cancellation feedback"),
            "string",
            [
                "customer_service",
                "low_quality",
                "missing_features",
                "other",
                "switched_service",
                "too_complex",
                "too_expensive",
                "unused",
            ],
        ),
        _field("trial_end", _("Trial ends"), "timestamp"),
        _field("collection_method", _("Collection method"), "string", COLLECTION_METHODS),
        _field("latest_invoice", _("Latest invoice ID"), "id"),
        _field("created", _("Created"), "timestamp"),
        _field("metadata", _("Metadata"), "object"),
    ],
    "charge": [
        _field("id", _("Charge ID"), "id"),
        _field("amount", _("Amount"), "money"),
        _field("amount_captured", _("Amount captured"), "money"),
        _field("amount_refunded", _("Amount refunded"), "money"),
        _field("currency", _("Currency"), "currency"),
        _field("customer", _("Customer ID"), "id"),
        _field("payment_intent", _("Payment intent ID"), "id"),
        _field("status", _("Status"), "string", ["succeeded", "pending", "failed"]),
        _field("paid", _("Paid"), "boolean"),
        _field("captured", _("Captured"), "boolean"),
        _field("refunded", _("Fully refunded"), "boolean"),
        _field("disputed", _("Disputed"), "boolean"),
        _field("failure_code", _("Failure code"), "string"),
        _field("failure_message", _("Failure message"), "string"),
        _field("receipt_email", _("Receipt email"), "email"),
        _field("billing_details.email", _("Billing email"), "email"),
        _field("billing_details.name", _("Billing name"), "string"),
        _field("billing_details.address.country", _("Billing country"), "string"),
        _field(
            "outcome.risk_level",
            _("Radar risk level"),
            "string",
            ["normal", "elevated", "highest", "not_assessed", "unknown"],
        ),
        _field("payment_method_details.type", _("Payment method type"), "string"),
        _field("description", _("Description"), "string"),
        _field("created", _("Created"), "timestamp"),
        _field("metadata", _("Metadata"), "object"),
    ],
    "invoice": [
        _field("id", _("Invoice ID"), "id"),
        _field("number", _("Invoice number"), "string"),
        _field("customer", _("Customer ID"), "id"),
        _field("customer_email", _("Customer email"), "email"),
        _field("customer_name", _("Customer name"), "string"),
        _field("customer_address.country", _("Customer country"), "string"),
        _field("status", _("Status"), "string", ["draft", "open", "paid", "uncollectible", "void"]),
        _field("currency", _("Currency"), "currency"),
        _field("amount_due", _("Amount due"), "money"),
        _field("amount_paid", _("Amount paid"), "money"),
        _field("amount_remaining", _("Amount remaining"), "money"),
        _field("total", _("Total"), "money"),
        _field(
            "billing_reason",
            _("Billing reason"),
            "string",
            [
                "automatic_pending_invoice_item_invoice",
                "manual",
                "quote_accept",
                "subscription",
                "subscription_create",
                "subscription_cycle",
                "subscription_threshold",
                "subscription_update",
                "upcoming",
            ],
        ),
        _field("collection_method", _("Collection method"), "string", COLLECTION_METHODS),
        _field("attempt_count", _("Payment attempts"), "integer"),
        _field("next_payment_attempt", _("Next payment attempt"), "timestamp"),
        _field("due_date", _("Due date"), "timestamp"),
        # Was invoice.subscription before API version 2025-03-31.basil.
        _field("parent.subscription_details.subscription", _("Subscription ID"), "id"),
        _field("status_transitions.paid_at", _("Paid at"), "timestamp"),
        _field("hosted_invoice_url", _("Payment page link"), "string"),
        _field("description", _("Memo"), "string"),
        _field("created", _("Created"), "timestamp"),
        _field("metadata", _("Metadata"), "object"),
    ],
    "payment_intent": [
        _field("id", _("Payment intent ID"), "id"),
        _field("amount", _("Amount"), "money"),
        _field("amount_received", _("Amount received"), "money"),
        _field("currency", _("Currency"), "currency"),
        _field("customer", _("Customer ID"), "id"),
        _field(
            "status",
            _("Status"),
            "string",
            [
                "requires_payment_method",
                "requires_confirmation",
                "requires_action",
                "processing",
                "requires_capture",
                "canceled",
                "succeeded",
            ],
        ),
        # Replaced the `charges` list in API version 2022-11-15.
        _field("latest_charge", _("Latest charge ID"), "id"),
        _field("payment_method", _("Payment method ID"), "id"),
        _field("receipt_email", _("Receipt email"), "email"),
        _field("description", _("Description"), "string"),
        _field(
            "cancellation_reason",
            _("Cancellation reason"),
            "string",
            [
                "abandoned",
                "automatic",
                "duplicate",
                "expired",
                "failed_invoice",
                "fraudulent",
                "requested_by_customer",
                "void_invoice",
            ],
        ),
        _field("last_payment_error.code", _("Last error code"), "string"),
        _field("last_payment_error.decline_code", _("Last decline code"), "string"),
        _field("last_payment_error.message", _("Last error message"), "string"),
        _field("created", _("Created"), "timestamp"),
        _field("metadata", _("Metadata"), "object"),
    ],
    # Stripe's whole object: it has no amount, customer or metadata of its own (retrieve
    # the charge for those).
    "radar.early_fraud_warning": [
        _field("id", _("Early fraud warning ID"), "id"),
        _field("charge", _("Charge ID"), "id"),
        _field("payment_intent", _("Payment intent ID"), "id"),
        _field(
            "fraud_type",
            _("Fraud type"),
            "string",
            [
                "card_never_received",
                "fraudulent_card_application",
                "made_with_counterfeit_card",
                "made_with_lost_card",
                "made_with_stolen_card",
                "misc",
                "unauthorized_use_of_card",
            ],
        ),
        _field("actionable", _("Actionable (not disputed or fully refunded)"), "boolean"),
        _field("livemode", _("Live mode"), "boolean"),
        _field("created", _("Created"), "timestamp"),
    ],
    "checkout.session": [
        _field("id", _("Checkout session ID"), "id"),
        _field("amount_total", _("Total"), "money"),
        _field("amount_subtotal", _("Subtotal"), "money"),
        _field("currency", _("Currency"), "currency"),
        _field("customer", _("Customer ID"), "id"),
        _field("customer_email", _("Customer email (given)"), "email"),
        # What the customer typed at checkout; `customer_email` is only what was passed in.
        _field("customer_details.email", _("Customer email (entered)"), "email"),
        _field("customer_details.name", _("Customer name"), "string"),
        _field("customer_details.address.country", _("Customer country"), "string"),
        _field("status", _("Status"), "string", ["open", "complete", "expired"]),
        _field(
            "payment_status", "Payment status", "string", ["paid", "unpaid", "no_payment_required"]
        ),
        _field("mode", _("Mode"), "string", ["payment", "setup", "subscription"]),
        _field("payment_intent", _("Payment intent ID"), "id"),
        _field("subscription", _("Subscription ID"), "id"),
        _field("invoice", _("Invoice ID"), "id"),
        _field("payment_link", _("Payment link ID"), "id"),
        _field("client_reference_id", _("Client reference"), "string"),
        _field("created", _("Created"), "timestamp"),
        _field("expires_at", _("Expires at"), "timestamp"),
        _field("metadata", _("Metadata"), "object"),
    ],
    "refund": [
        _field("id", _("Refund ID"), "id"),
        _field("amount", _("Amount"), "money"),
        _field("currency", _("Currency"), "currency"),
        _field(
            "status",
            _("Status"),
            "string",
            ["pending", "requires_action", "succeeded", "failed", "canceled"],
        ),
        _field("reason", _("Reason"), "string", REFUND_REASONS),
        _field("failure_reason", _("Failure reason"), "string"),
        _field("charge", _("Charge ID"), "id"),
        _field("payment_intent", _("Payment intent ID"), "id"),
        _field("description", _("Description"), "string"),
        _field("created", _("Created"), "timestamp"),
        _field("metadata", _("Metadata"), "object"),
    ],
}

EVENT_FIELDS = [
    {"path": "trigger.id", "label": _("Event ID"), "type": "id"},
    {"path": "trigger.type", "label": _("Event type"), "type": "string"},
    {"path": "trigger.created", "label": _("Event created"), "type": "timestamp"},
]

# Actions whose outputs are fields of one Stripe object, copied under the same names.
STEP_OBJECTS = {
    "stripe.retrieve_charge": "charge",
    "stripe.create_refund": "refund",
    "stripe.update_customer_metadata": "customer",
    "stripe.retrieve_subscription": "subscription",
    "stripe.update_charge_metadata": "charge",
}
# Outputs an action flattens or builds itself, so the object's fields cannot type them.
STEP_OUTPUT_TYPES = {
    "stripe.retrieve_subscription": {
        # The action expands the customer and the product, so their names come along.
        "customer": {"type": "id"},
        "customer_name": {"type": "string"},
        "customer_email": {"type": "email"},
        "product": {"type": "id"},
        "product_name": {"type": "string"},
        "price": {"type": "id"},
        "interval": {"type": "string", "choices": INTERVALS},
        "interval_count": {"type": "integer"},
        # The action puts the price's currency beside it, so it is a sibling like Stripe's.
        "amount": {"type": "money"},
        "quantity": {"type": "integer"},
        "current_period_end": {"type": "timestamp"},
    },
    "email.send": {"to": {"type": "list"}},
    "webhook.post": {"status": {"type": "integer"}},
    "stripe.store_credit": {
        "credit_type": {"type": "string", "choices": ["balance", "promotion_code"]},
        "credit_id": {"type": "id"},
        "coupon": {"type": "id"},
        # The action puts the currency beside the amount, as Stripe does.
        "amount": {"type": "money"},
        "currency": {"type": "currency"},
        "customer": {"type": "id"},
        "email": {"type": "email"},
        "expires_at": {"type": "timestamp"},
        "charge": {"type": "id"},
    },
}


def event_type_choices():
    """Return Django grouped choices of the event types, sorted by group then label."""
    groups = {}
    for event_type, info in EVENT_TYPES.items():
        groups.setdefault(info["group"], []).append((event_type, info["label"]))
    return [(group, sorted(groups[group], key=lambda c: c[1])) for group in sorted(groups)]


def _typed(path, label, spec):
    field = {"path": path, "label": label, "type": spec["type"]}
    if spec.get("choices"):
        field["choices"] = list(spec["choices"])
    return field


def trigger_fields(event_type):
    """Return the fields a workflow started by `event_type` can use, with full paths."""
    fields = copy.deepcopy(EVENT_FIELDS)
    info = EVENT_TYPES.get(event_type)
    if info is None:
        return fields
    for field in OBJECT_FIELDS[info["object"]]:
        fields.append(_typed(f"trigger.data.object.{field['name']}", field["label"], field))
    return fields


def step_fields(step_name, kind):
    """Return the fields a step of action `kind` named `step_name` outputs for later steps."""
    from integrations.registry import ACTIONS, get_action

    if not isinstance(kind, str) or kind not in ACTIONS:
        return []  # a branch outputs nothing (and a kind that is not text names no action)
    by_name = {f["name"]: f for f in OBJECT_FIELDS.get(STEP_OBJECTS.get(kind), [])}
    overrides = STEP_OUTPUT_TYPES.get(kind, {})
    fields = []
    for name, label in get_action(kind).outputs.items():
        spec = overrides.get(name) or by_name.get(name) or {"type": "string"}
        fields.append(_typed(f"steps.{step_name}.{name}", f"{step_name}: {label}", spec))
    return fields


# What `{{run.…}}` and `{{workflow.…}}` hold in every run (automations/engine/context.py).
CONTEXT_FIELDS = [
    {"path": "run.id", "label": _("Run ID"), "type": "integer"},
    {"path": "run.attempt", "label": _("Run attempt"), "type": "integer"},
    {"path": "workflow.id", "label": _("Workflow ID"), "type": "integer"},
    {"path": "workflow.name", "label": _("Workflow name"), "type": "string"},
]

# The operators that make sense for each field type: ordering needs a number, "contains"
# needs text or a collection. The validator refuses the rest, wherever a definition enters.
_EQUALITY = ["eq", "ne", "in", "not_in", "is_set", "is_blank"]
_ORDERED = ["gt", "gte", "lt", "lte"]
OPERATORS_BY_TYPE = {
    "money": [*_EQUALITY, *_ORDERED],
    "integer": [*_EQUALITY, *_ORDERED],
    "timestamp": [*_EQUALITY, *_ORDERED],
    "currency": _EQUALITY,
    "string": [*_EQUALITY, "contains"],
    "id": [*_EQUALITY, "contains"],
    "email": [*_EQUALITY, "contains"],
    "boolean": ["eq", "ne", "is_set", "is_blank"],
    "object": ["contains", "is_set", "is_blank"],
    "list": ["contains", "is_set", "is_blank"],
}


def object_fields(object_name, prefix="trigger.data.object"):
    """Return the fields of a Stripe object as typed paths under `prefix`."""
    return [
        _typed(f"{prefix}.{field['name']}", field["label"], field)
        for field in OBJECT_FIELDS.get(object_name, [])
    ]


# What a scheduled run holds (automations/triggers/schedule.py): the tick, and either one
# row of the saved filter (each row) or a digest of them. A digest's lists are looped over
# in messages ({{#each …}}); "items" are the fields each item offers as {{item.…}}.
SCHEDULE_FIELDS = [
    {"path": "trigger.id", "label": _("Run key (schedule and tick)"), "type": "id"},
    {"path": "trigger.created", "label": _("Scheduled for"), "type": "timestamp"},
]
DIGEST_ROWS = 200  # rows a digest keeps in its snapshot; its count and totals cover all


def digest_fields(object_name):
    """Return the fields of a digest of a saved filter's rows of one kind of Stripe object."""
    prefix = "trigger.data.object"
    rows = object_fields(object_name, prefix="item") or [
        {"path": "item.id", "label": _("ID"), "type": "id"}
    ]
    return [
        *copy.deepcopy(SCHEDULE_FIELDS),
        {"path": f"{prefix}.count", "label": _("Number of rows"), "type": "integer"},
        {
            "path": f"{prefix}.rows",
            "label": _("Rows (the first %(count)d)") % {"count": DIGEST_ROWS},
            "type": "list",
            "items": rows,
        },
        {
            "path": f"{prefix}.totals",
            "label": _("Totals per currency"),
            "type": "list",
            "items": [
                {"path": "item.amount", "label": _("Total"), "type": "money"},
                {"path": "item.currency", "label": _("Currency"), "type": "currency"},
            ],
        },
        {"path": f"{prefix}.filter.name", "label": _("Saved filter name"), "type": "string"},
        {"path": f"{prefix}.filter.url", "label": _("Saved filter link"), "type": "string"},
        {
            "path": f"{prefix}.scheduled_for",
            "label": _("Scheduled for (ISO 8601)"),
            "type": "string",
        },
    ]


def row_fields(object_name):
    """Return the fields of a scheduled run on one row of a saved filter."""
    return [
        *copy.deepcopy(SCHEDULE_FIELDS),
        *(
            object_fields(object_name)
            or [{"path": "trigger.data.object.id", "label": _("ID"), "type": "id"}]
        ),
    ]


def loop_items(path, trigger, steps):
    """Return the fields of each item of the list at `path`, or None if it is not a list
    that can be looped over."""
    for field in fields_in_scope(trigger, steps):
        if field["path"] == path:
            return field.get("items") if field["type"] == "list" else None
    return None


def item_type(path, items):
    """Return the type of `item.…` inside a loop over a list with these item fields."""
    return _known(path, items)


def fields_for(trigger):
    """Return the fields a workflow with this trigger dict can use (its kind decides)."""
    from automations import triggers

    kind = triggers.kind((trigger or {}).get("kind"))
    return kind.fields(trigger) if kind else []


def fields_of(step_name, kind):
    """Return the outputs a step offers to the steps after it."""
    return step_fields(step_name, kind)


def _known(path, fields):
    for field in fields:
        if path == field["path"]:
            return field["type"]
        if field["type"] == "object" and path.startswith(field["path"] + "."):
            # Metadata values are flat strings, so only one key deep can hold a value.
            key = path[len(field["path"]) + 1 :]
            return "string" if key and "." not in key else None
    return None


def _as_trigger(trigger):
    # Callers that only know an event type (the editor's older paths, tests) pass a string.
    if isinstance(trigger, str):
        return {"kind": "stripe_event", "event_type": trigger}
    return trigger or {}


def field_type(path, trigger, steps):
    """Return the type of the value at reference `path`, or None if no such field is known.

    `trigger` is the definition's trigger dict (or a Stripe event type); `steps` maps the
    names of steps certain to have run before the reference to their action kinds.
    """
    trigger = _as_trigger(trigger)
    parts = path.split(".")
    if parts[0] == "trigger":
        event_type = trigger.get("event_type") or ""
        if (
            event_type in EVENT_TYPES
            and event_type.endswith(".updated")
            and path.startswith("trigger.data.previous_attributes.")
            and len(parts) > 3
        ):
            # Stripe lists only what changed, under the old values' own names.
            return "string"
        return _known(path, fields_for(trigger))
    if parts[0] == "steps" and len(parts) > 2 and parts[1] in steps:
        return _known(path, step_fields(parts[1], steps[parts[1]]))
    if parts[0] in ("run", "workflow"):
        return _known(path, CONTEXT_FIELDS)
    return None


def fields_in_scope(trigger, steps):
    """Return the fields a reference may use: the trigger's, then each step's outputs.

    `steps` maps the names of steps certain to have run before it to their kinds.
    """
    fields = fields_for(_as_trigger(trigger))
    for name, kind in steps.items():
        fields += step_fields(name, kind)
    return fields


def reference_choices(trigger, steps):
    """Return (path, label) pairs for inserting a reference: the trigger's, then each step's."""
    return [(field["path"], field["label"]) for field in fields_in_scope(trigger, steps)]
