"""Workflow steps that read or write Stripe, through integrations.stripe_client."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from integrations import stripe_client
from integrations.base import Action, ActionError, excerpt
from integrations.fields import AmountField, MetadataField, StripeIdField

CHARGE_FIELDS = [
    "id",
    "amount",
    "amount_captured",
    "amount_refunded",
    "currency",
    "customer",
    "payment_intent",
    "status",
    "paid",
    "refunded",
    "receipt_email",
    "description",
    "metadata",
    "created",
]
REFUND_FIELDS = [
    "id",
    "amount",
    "currency",
    "status",
    "charge",
    "payment_intent",
    "reason",
    "metadata",
]
CUSTOMER_FIELDS = ["id", "email", "name", "metadata"]

# Stripe keeps idempotency keys for at least 24 hours; after that, a retried write could
# act twice, so an old step first looks for what it would create.
# https://docs.stripe.com/api/idempotent_requests
IDEMPOTENCY_WINDOW = timedelta(hours=23)


def _id(value, prefixes, what):
    if not isinstance(value, str) or not value.startswith(tuple(prefixes)):
        raise ActionError(f"{value!r} is not a {what} id.", permanent=True)
    return value


def kanri_metadata(call):
    """Mark a Stripe write as Kanri's, for staff reading the Stripe dashboard."""
    return {"kanri_run": str(call.run_id or ""), "kanri_step": call.idempotency_key}


def _strings(metadata):
    # Stripe metadata values are strings; a reference may have rendered a number.
    return {str(k): "" if v is None else str(v) for k, v in (metadata or {}).items()}


class StripeAction(Action):
    provider = "Stripe"
    # Writes carry the step's idempotency key, so Stripe replays the first result.
    deduplicates = True

    def send(self, request, call):
        response = stripe_client.request(
            request["method"],
            request["path"],
            request.get("params"),
            idempotency_key=request.get("idempotency_key"),
        )
        return self.output(response)

    def output(self, response):
        return excerpt(response, self.outputs)


class RetrieveChargeForm(forms.Form):
    charge = StripeIdField(["ch_", "py_"], initial="{{trigger.data.object.charge}}")


class RetrieveCharge(StripeAction):
    kind = "stripe.retrieve_charge"
    label = "Stripe: retrieve a charge"
    form_class = RetrieveChargeForm
    reads_only = True
    outputs = {field: field.replace("_", " ") for field in CHARGE_FIELDS}

    def prepare(self, config, call):
        charge = _id(config.get("charge"), ["ch_", "py_"], "charge")
        return {"method": "get", "path": f"/v1/charges/{charge}", "params": {}}


class CreateRefundForm(forms.Form):
    charge = StripeIdField(["ch_", "py_"], initial="{{trigger.data.object.charge}}")
    amount = AmountField(help_text="Minor units (cents; yen are whole), or a reference.")
    reason = forms.ChoiceField(
        required=False,
        choices=[
            ("", "(none)"),
            ("duplicate", "Duplicate"),
            ("fraudulent", "Fraudulent"),
            ("requested_by_customer", "Requested by customer"),
        ],
    )
    metadata = MetadataField(required=False)
    # Stripe refunds in the charge's currency; Kanri needs it too, to count the refund
    # against the workflow's money caps (it is not sent).
    currency = forms.CharField(
        required=False,
        help_text="The charge's currency (a code or a reference), for the money caps.",
    )


class CreateRefund(StripeAction):
    kind = "stripe.create_refund"
    label = "Stripe: refund a charge"
    form_class = CreateRefundForm
    moves_money = True
    outputs = {field: field.replace("_", " ") for field in REFUND_FIELDS}

    def prepare(self, config, call):
        amount = config.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ActionError(f"Refund amount {amount!r} is not a positive amount.", permanent=True)
        params = {
            "charge": _id(config.get("charge"), ["ch_", "py_"], "charge"),
            "amount": amount,
            "metadata": {**_strings(config.get("metadata")), **kanri_metadata(call)},
        }
        if config.get("reason"):
            params["reason"] = config["reason"]
        return {
            "method": "post",
            "path": "/v1/refunds",
            "params": params,
            "idempotency_key": call.idempotency_key,
            "currency": str(config.get("currency") or "").lower(),
        }

    def money(self, request):
        return {"amount": request["params"]["amount"], "currency": request.get("currency") or ""}

    def send(self, request, call):
        if call.first_attempt_at and timezone.now() - call.first_attempt_at > IDEMPOTENCY_WINDOW:
            existing = self.find_existing(request["params"]["charge"], call.idempotency_key)
            if existing:
                return self.output(existing)
        return super().send(request, call)

    def find_existing(self, charge, key):
        refunds = stripe_client.request("get", "/v1/refunds", {"charge": charge, "limit": 100})
        for refund in refunds.get("data", []):
            if (refund.get("metadata") or {}).get("kanri_step") == key:
                return refund
        return None


class UpdateCustomerMetadataForm(forms.Form):
    customer = StripeIdField(["cus_"], initial="{{trigger.data.object.customer}}")
    metadata = MetadataField(help_text='For example {"Tier": "VIP"}.')


class UpdateCustomerMetadata(StripeAction):
    kind = "stripe.update_customer_metadata"
    label = "Stripe: update customer metadata"
    form_class = UpdateCustomerMetadataForm
    outputs = {field: field for field in CUSTOMER_FIELDS}

    def prepare(self, config, call):
        customer = _id(config.get("customer"), ["cus_"], "customer")
        return {
            "method": "post",
            "path": f"/v1/customers/{customer}",
            "params": {"metadata": {**_strings(config.get("metadata")), **kanri_metadata(call)}},
            "idempotency_key": call.idempotency_key,
        }


class RetrieveSubscriptionForm(forms.Form):
    subscription = StripeIdField(["sub_"], initial="{{trigger.data.object.id}}")


class RetrieveSubscription(StripeAction):
    kind = "stripe.retrieve_subscription"
    label = "Stripe: retrieve a subscription"
    form_class = RetrieveSubscriptionForm
    reads_only = True
    outputs = {
        "id": "id",
        "status": "status",
        "customer": "customer",
        "product": "product (first item)",
        "price": "price (first item)",
        "interval": "billing interval: day, week, month or year",
        "interval_count": "intervals per billing cycle",
        "amount": "amount per cycle (minor units)",
        "currency": "currency",
        "quantity": "quantity",
        "cancel_at_period_end": "cancels at period end",
        "canceled_at": "canceled at",
        "ended_at": "ended at",
        "current_period_end": "current period end",
        "metadata": "metadata",
    }

    def prepare(self, config, call):
        subscription = _id(config.get("subscription"), ["sub_"], "subscription")
        return {"method": "get", "path": f"/v1/subscriptions/{subscription}", "params": {}}

    def output(self, response):
        out = excerpt(
            response,
            [
                "id",
                "status",
                "customer",
                "cancel_at_period_end",
                "canceled_at",
                "ended_at",
                "metadata",
            ],
        )
        items = (response.get("items") or {}).get("data") or [{}]
        item = items[0]
        price = item.get("price") or item.get("plan") or {}
        recurring = price.get("recurring") or {}
        quantity = item.get("quantity") or 1
        unit = price.get("unit_amount", price.get("amount"))
        product = price.get("product")
        out.update(
            {
                "product": product.get("id") if isinstance(product, dict) else product,
                "price": price.get("id"),
                "interval": recurring.get("interval") or price.get("interval"),
                "interval_count": recurring.get("interval_count") or price.get("interval_count"),
                "amount": unit * quantity if isinstance(unit, int) else None,
                "currency": price.get("currency") or response.get("currency"),
                "quantity": quantity,
                # Newer API versions keep the period on the item, older ones on the subscription.
                "current_period_end": item.get("current_period_end")
                or response.get("current_period_end"),
            }
        )
        return out
