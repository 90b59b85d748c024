"""Workflow steps that read or write Stripe, through integrations.stripe_client."""

import re
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations import stripe_client
from integrations.base import Action, ActionError, excerpt
from integrations.fields import (
    AmountField,
    MetadataField,
    StripeIdField,
    TemplateField,
    is_reference,
)

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
    label = _("Stripe: retrieve a charge")
    form_class = RetrieveChargeForm
    reads_only = True
    outputs = {field: field.replace("_", " ") for field in CHARGE_FIELDS}

    def prepare(self, config, call):
        charge = _id(config.get("charge"), ["ch_", "py_"], "charge")
        return {"method": "get", "path": f"/v1/charges/{charge}", "params": {}}


class CreateRefundForm(forms.Form):
    charge = StripeIdField(["ch_", "py_"], initial="{{trigger.data.object.charge}}")
    amount = AmountField(help_text=_("Minor units (cents; yen are whole), or a reference."))
    reason = forms.ChoiceField(
        required=False,
        choices=[
            ("", _("(none)")),
            ("duplicate", _("Duplicate")),
            ("fraudulent", _("Fraudulent")),
            ("requested_by_customer", _("Requested by customer")),
        ],
    )
    metadata = MetadataField(required=False)
    # Stripe refunds in the charge's currency; Kanri needs it too, to count the refund
    # against the workflow's money caps (it is not sent).
    currency = forms.CharField(
        required=False,
        help_text=_("The charge's currency (a code or a reference), for the money caps."),
    )


class CreateRefund(StripeAction):
    kind = "stripe.create_refund"
    label = _("Stripe: refund a charge")
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
    metadata = MetadataField(help_text=_('For example {"Tier": "VIP"}.'))


class UpdateCustomerMetadata(StripeAction):
    kind = "stripe.update_customer_metadata"
    label = _("Stripe: update customer metadata")
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
    label = _("Stripe: retrieve a subscription")
    form_class = RetrieveSubscriptionForm
    reads_only = True
    # One request answers who cancelled what: the event carries only ids.
    # https://docs.stripe.com/expand
    EXPAND = ["customer", "items.data.price.product"]
    outputs = {
        "id": _("id"),
        "status": _("status"),
        "customer": _("customer"),
        "customer_name": _("customer name"),
        "customer_email": _("customer email"),
        "product": _("product (first item)"),
        "product_name": _("product name (first item)"),
        "price": _("price (first item)"),
        "interval": _("billing interval: day, week, month or year"),
        "interval_count": _("intervals per billing cycle"),
        "amount": _("amount per cycle (minor units)"),
        "currency": _("currency"),
        "quantity": _("quantity"),
        "cancel_at_period_end": _("cancels at period end"),
        "canceled_at": _("canceled at"),
        "ended_at": _("ended at"),
        "current_period_end": _("current period end"),
        "metadata": _("metadata"),
    }

    def prepare(self, config, call):
        subscription = _id(config.get("subscription"), ["sub_"], "subscription")
        return {
            "method": "get",
            "path": f"/v1/subscriptions/{subscription}",
            "params": {"expand": list(self.EXPAND)},
        }

    def output(self, response):
        out = excerpt(
            response,
            ["id", "status", "cancel_at_period_end", "canceled_at", "ended_at", "metadata"],
        )
        # Expanded, these are objects; a deleted customer expands to {id, deleted}.
        customer = response.get("customer")
        customer = customer if isinstance(customer, dict) else {"id": customer}
        items = (response.get("items") or {}).get("data") or [{}]
        item = items[0]
        price = item.get("price") or item.get("plan") or {}
        recurring = price.get("recurring") or {}
        quantity = item.get("quantity") or 1
        unit = price.get("unit_amount", price.get("amount"))
        product = price.get("product")
        product = product if isinstance(product, dict) else {"id": product}
        out.update(
            {
                "customer": customer.get("id"),
                "customer_name": customer.get("name") or "",
                "customer_email": customer.get("email") or "",
                "product": product.get("id"),
                "product_name": product.get("name") or "",
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


# ------------------------------------------------------------------ store credit

CREDIT_FORMS = {
    "balance": _("Customer credit balance (Stripe applies it to their next invoices)"),
    "promotion_code": _("A promotion code only this customer can use, once"),
}
CURRENCY = re.compile(r"^[a-z]{3}$")
# Stripe lists at most 100 objects a page; looking further back than this for a resumed
# step's credit is pointless (a customer does not get thousands of credits).
FIND_PAGES = 10


def _currency_code(value):
    code = str(value or "").strip().lower()
    if not CURRENCY.match(code):
        raise ActionError(f"{value!r} is not a currency code.", permanent=True)
    return code


def _positive_amount(value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ActionError(f"Credit amount {value!r} is not a positive amount.", permanent=True)
    return value


def _language(locales):
    """Return the primary language of a customer's first preferred locale ("ja-JP" -> "ja")."""
    for locale in locales or []:
        if isinstance(locale, str) and locale.strip():
            return locale.strip().replace("_", "-").split("-")[0].lower()
    return ""


def _copied(source, keys):
    """Return the named keys of a metadata object that has them (the rest are skipped)."""
    if not isinstance(source, dict):
        return {}
    names = [k.strip() for k in str(keys or "").split(",") if k.strip()]
    return {name: str(source[name]) for name in names if source.get(name) not in (None, "")}


def expiry(call, days):
    """Return the end (23:59:59, business time zone) of the day `days` after the step's
    first attempt, as a Unix timestamp.

    Counted from the first attempt, not from now, so every retry sends the same request:
    Stripe refuses an idempotency key reused with other parameters. A whole day also reads
    better to the customer ("valid until 1 December") than a time of day.
    """
    start = timezone.localtime(call.first_attempt_at or timezone.now())
    last = datetime.combine(start.date() + timedelta(days=days), dt_time(23, 59, 59))
    return int(timezone.make_aware(last, start.tzinfo).timestamp())


def _day(timestamp):
    if not isinstance(timestamp, int):
        return ""
    return timezone.localtime(datetime.fromtimestamp(timestamp, tz=UTC)).date().isoformat()


def _old(call):
    """Whether the step first ran longer ago than Stripe keeps idempotency keys."""
    return bool(call.first_attempt_at) and (
        timezone.now() - call.first_attempt_at > IDEMPOTENCY_WINDOW
    )


class CreditCurrencyField(forms.CharField):
    def validate(self, value):
        super().validate(value)
        if value and not is_reference(value) and not CURRENCY.match(value.strip().lower()):
            raise forms.ValidationError(_("Enter a currency code such as jpy, or a reference."))


class StoreCreditForm(forms.Form):
    customer = StripeIdField(
        ["cus_"], initial="{{trigger.data.object.customer}}", label=_("Customer")
    )
    amount = AmountField(
        initial="{{trigger.data.object.amount}}",
        label=_("Amount"),
        help_text=_("Minor units (cents; yen are whole), or a reference."),
    )
    currency = CreditCurrencyField(
        initial="{{trigger.data.object.currency}}",
        label=_("Currency"),
        help_text=_("A currency code such as jpy, or a reference."),
    )
    form = forms.ChoiceField(
        choices=list(CREDIT_FORMS.items()), initial="balance", label=_("Credit as")
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        initial=365,
        label=_("Expires after (days)"),
        help_text=_("Promotion codes: the code can be used until the end of that day."),
    )
    charge = StripeIdField(
        ["ch_", "py_"],
        required=False,
        initial="{{trigger.data.object.id}}",
        label=_("Charge"),
        help_text=_("The charge this credit is given for (kept in the credit's metadata)."),
    )
    description = TemplateField(
        required=False,
        max_length=350,
        initial="Store credit for {{trigger.data.object.id}}",
        label=_("Description"),
    )
    copy_from = TemplateField(
        required=False,
        initial="{{trigger.data.object.metadata}}",
        label=_("Copy metadata from"),
        help_text=_("A reference to the metadata to copy keys from."),
    )
    copy_metadata = forms.CharField(
        required=False,
        initial="booking_id",
        label=_("Metadata keys to copy"),
        help_text=_("Comma-separated; a key the source lacks is left out."),
    )
    metadata = MetadataField(required=False, label=_("More metadata"))


class StoreCredit(StripeAction):
    """Give a customer store credit: a credit balance transaction, or a one-time coupon
    and a promotion code restricted to them.

    The customer is read first (their email and language are outputs, for the message to
    them). Each write carries the step's idempotency key with its own suffix, so a retry
    replays what Stripe already did; a step resumed after Stripe's idempotency window
    first looks for the credit carrying its key (`kanri_step` in metadata). The coupon's
    id is the step's key, so even then it cannot be made twice.
    """

    kind = "stripe.store_credit"
    label = _("Stripe: give store credit")
    form_class = StoreCreditForm
    moves_money = True
    outputs = {
        "credit_type": _("credit type (balance or promotion_code)"),
        "credit_id": _("credit id (balance transaction or promotion code)"),
        "code": _("promotion code (blank for a balance)"),
        "coupon": _("coupon id (promotion codes)"),
        "expires_at": _("expires at (promotion codes)"),
        "expires_on": _("last day the code can be used (YYYY-MM-DD)"),
        "amount": _("amount"),
        "currency": _("currency"),
        "customer": _("customer id"),
        "email": _("customer email"),
        "language": _("customer language (from their preferred locales)"),
        "charge": _("charge id"),
    }

    def prepare(self, config, call):
        amount = _positive_amount(config.get("amount"))
        currency = _currency_code(config.get("currency") or config.get("amount_currency"))
        customer_id = _id(config.get("customer"), ["cus_"], "customer")
        form = config.get("form") or "balance"
        if form not in CREDIT_FORMS:
            raise ActionError(f"{form!r} is not a kind of store credit.", permanent=True)
        charge = config.get("charge") or ""
        if charge:
            _id(charge, ["ch_", "py_"], "charge")
        if call.offline:  # a recording dry-run reads nothing from Stripe
            customer = stripe_client.mirrored_customer(customer_id)
        else:
            customer = stripe_client.request("get", f"/v1/customers/{customer_id}")
        if customer.get("deleted"):
            raise ActionError(f"Customer {customer_id} is deleted.", permanent=True)
        key = call.idempotency_key
        metadata = {
            **_copied(config.get("copy_from"), config.get("copy_metadata")),
            **_strings(config.get("metadata")),
            **({"kanri_charge": charge} if charge else {}),
            **kanri_metadata(call),
        }
        description = " ".join(str(config.get("description") or "").split())
        credit = {
            "type": form,
            "customer": customer_id,
            "amount": amount,
            "currency": currency,
            "charge": charge,
            "email": customer.get("email") or "",
            "language": _language(customer.get("preferred_locales")),
            "expires_at": None,
        }
        if form == "balance":
            params = {"amount": -amount, "currency": currency, "metadata": metadata}
            if description:
                params["description"] = description
            writes = [
                {
                    "method": "post",
                    "path": f"/v1/customers/{customer_id}/balance_transactions",
                    "params": params,
                    "idempotency_key": f"{key}-balance",
                }
            ]
        else:
            credit["expires_at"] = expiry(call, config.get("expires_in_days") or 365)
            credit["coupon"] = key
            writes = [
                {
                    "method": "post",
                    "path": "/v1/coupons",
                    "params": {
                        "id": key,
                        "amount_off": amount,
                        "currency": currency,
                        "duration": "once",
                        "max_redemptions": 1,
                        "redeem_by": credit["expires_at"],
                        "metadata": metadata,
                    },
                    "idempotency_key": f"{key}-coupon",
                },
                {
                    "method": "post",
                    "path": "/v1/promotion_codes",
                    # API versions from 2025-09-30.clover name the coupon this way (the
                    # SDK's pinned version is one). https://docs.stripe.com/changelog/clover/2025-09-30/polymorphic-coupon
                    "params": {
                        "promotion": {"type": "coupon", "coupon": key},
                        "customer": customer_id,
                        "max_redemptions": 1,
                        "expires_at": credit["expires_at"],
                        "metadata": metadata,
                    },
                    "idempotency_key": f"{key}-promotion_code",
                },
            ]
        return {"credit": credit, "writes": writes}

    def money(self, request):
        credit = request["credit"]
        return {"amount": credit["amount"], "currency": credit["currency"]}

    def send(self, request, call):
        credit, writes = request["credit"], request["writes"]
        if credit["type"] == "balance":
            found = _old(call) and self.find_balance(credit["customer"], call.idempotency_key)
            transaction = found or self.write(writes[0])
            return self.credit_output(credit, transaction["id"])
        coupon_write, code_write = writes
        if _old(call):
            found = self.find_promotion_code(credit["coupon"], call.idempotency_key)
            if found:
                return self.credit_output(credit, found["id"], found.get("code"))
        if not (_old(call) and self.coupon_exists(credit["coupon"])):
            self.write(coupon_write)
        code = self.write(code_write)
        return self.credit_output(credit, code["id"], code.get("code"))

    def write(self, write):
        return stripe_client.request(
            write["method"],
            write["path"],
            write["params"],
            idempotency_key=write["idempotency_key"],
        )

    def find_balance(self, customer, key):
        params = {"limit": 100}
        for _page in range(FIND_PAGES):
            page = stripe_client.request(
                "get", f"/v1/customers/{customer}/balance_transactions", params
            )
            for transaction in page.get("data", []):
                if (transaction.get("metadata") or {}).get("kanri_step") == key:
                    return transaction
            if not page.get("has_more") or not page.get("data"):
                return None
            params = {"limit": 100, "starting_after": page["data"][-1]["id"]}
        return None

    def find_promotion_code(self, coupon, key):
        page = stripe_client.request("get", "/v1/promotion_codes", {"coupon": coupon, "limit": 10})
        for code in page.get("data", []):
            if (code.get("metadata") or {}).get("kanri_step") == key:
                return code
        return None

    def coupon_exists(self, coupon):
        try:
            stripe_client.request("get", f"/v1/coupons/{coupon}")
        except ActionError as e:
            if getattr(e.__cause__, "code", None) == "resource_missing":
                return False
            raise
        return True

    def credit_output(self, credit, credit_id, code=""):
        return {
            "credit_type": credit["type"],
            "credit_id": credit_id,
            "code": code or "",
            "coupon": credit.get("coupon", ""),
            "expires_at": credit["expires_at"],
            "expires_on": _day(credit["expires_at"]),
            "amount": credit["amount"],
            "currency": credit["currency"],
            "customer": credit["customer"],
            "email": credit["email"],
            "language": credit["language"],
            "charge": credit["charge"],
        }

    def dry_output(self, request):
        credit = request["credit"]
        code = "<code from stripe.store_credit>" if credit["type"] == "promotion_code" else ""
        return self.credit_output(credit, "<credit id from stripe.store_credit>", code)


class UpdateChargeMetadataForm(forms.Form):
    charge = StripeIdField(["ch_", "py_"], initial="{{trigger.data.object.id}}", label=_("Charge"))
    metadata = MetadataField(
        label=_("Metadata"),
        help_text=_(
            'For example {"kanri_credit": "{{steps.credit.credit_id}}"}. Keys it does not '
            "name are kept; an empty value removes a key."
        ),
    )


class UpdateChargeMetadata(StripeAction):
    kind = "stripe.update_charge_metadata"
    label = _("Stripe: update charge metadata")
    form_class = UpdateChargeMetadataForm
    outputs = {"id": _("charge id"), "metadata": _("metadata")}

    def prepare(self, config, call):
        charge = _id(config.get("charge"), ["ch_", "py_"], "charge")
        return {
            "method": "post",
            "path": f"/v1/charges/{charge}",
            "params": {"metadata": {**_strings(config.get("metadata")), **kanri_metadata(call)}},
            "idempotency_key": call.idempotency_key,
        }
