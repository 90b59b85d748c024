"""Kanri's read-only lists of the Stripe mirror: Payments, Payment intents, Customers,
Subscriptions, Invoices, Refunds, Disputes, Early fraud warnings, Events and Webhook
deliveries, in place of dj-stripe's own admin for those models.

Why not dj-stripe's admin: its add and change forms write local rows that never reach
Stripe, and its detail pages list every model property, the Stripe secret key
(`default_api_key`) among them. Here nothing can be added, changed or deleted, and a detail
page shows an allowlist of Stripe fields as plain text.

Lists filter in the query string (automations/admin/filters.py), show amounts as money,
the customer's name and email (fetched with the page, not per row), and times in the
current time zone with the zone named. The lists of objects a manual workflow runs on keep
"Run workflow on selected…" (automations/triggers/manual.py); Payments also offer
"Refund as store credit…". Both need `automations.run_workflow`.

For superusers, who still reach dj-stripe's other models, `hide_secrets` removes the secret
key from dj-stripe's remaining detail pages.
"""

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Case, CharField, Exists, OuterRef, Q, Value, When
from django.http import HttpResponseNotAllowed
from django.urls import path as url_path
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from djstripe import enums
from djstripe import models as djstripe_models
from djstripe.admin import StripeModelAdmin
from djstripe.admin.actions import CustomActionMixin

from automations.admin import filters
from automations.admin.actions import run_workflow_on_selected
from automations.admin.base import ReadOnlyAdmin, change_url, page
from automations.admin.bookmarks import SavedFiltersMixin
from automations.admin.credit import refund_as_store_credit
from automations.money import format_money
from automations.redaction import redact
from automations.timefmt import format_time

RUN_PERMISSION = "automations.run_workflow"
GUARDED_ACTIONS = ("run_workflow_on_selected", "refund_as_store_credit")

# ------------------------------------------------------------------ how values read


def money(data, key):
    """Return Stripe's amount `key` of `data` as money ("15.00 USD"), or ""."""
    amount, currency = (data or {}).get(key), (data or {}).get("currency")
    if isinstance(amount, int) and not isinstance(amount, bool) and currency:
        return format_money(amount, currency)
    return ""


def compact(metadata, limit=60):
    """Return metadata as "key=value, key=value", shortened to `limit` characters."""
    text = redact(", ".join(f"{k}={v}" for k, v in (metadata or {}).items()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dig(data, path):
    """Return data["a"]["b"] for path "a.b", or None."""
    for key in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _yes_no(value):
    return _t("Yes") if value else _t("No")


def _changelist_url(model, query=""):
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{query}" if query else url


# ------------------------------------------------------------------ the list plumbing


class StripeChangeList(ChangeList):
    """The admin's ChangeList with Kanri's title, an empty list when a filter cannot be
    applied, and one look-up per page for what rows show from other tables."""

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.title = str(self.model_admin.list_title)

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.none() if filters.problems(request) else queryset

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        self.model_admin.prepare_page(self.result_list)


class StripeListAdmin(ReadOnlyAdmin):
    """A read-only list of one kind of Stripe object and its detail page."""

    list_title = ""  # what staff call the list: navigation and page title
    list_order = 0  # its place under "Stripe data"
    amount_key = None  # the Stripe field with the amount, in minor units
    email_paths = ()  # ORM paths of the customer's email (the customer_email filter)
    customer_path = None  # ORM path of the dj-stripe Customer, if the row has one
    statuses = ()  # Stripe's statuses for this object: (value, label)
    detail_fields = ()  # (label, stripe_data path, kind) shown on the detail page
    actions = []
    ordering = ["-created"]
    list_per_page = 50
    search_fields = ["id"]

    # ---------------------------------------------------------------- permissions
    # Read-only (ReadOnlyAdmin): Stripe is the source; a local "+ Add" would create rows
    # that never reach it.

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm(RUN_PERMISSION):
            for name in GUARDED_ACTIONS:
                actions.pop(name, None)
        return actions

    # ---------------------------------------------------------------- the list

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.customer_path:
            queryset = queryset.select_related(self.customer_path)
        return queryset

    def get_changelist(self, request, **kwargs):
        return StripeChangeList

    def get_list_filter(self, request):
        return [*self.list_filter, filters.ParameterCheck]

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        found = filters.problems(request)
        if found and not getattr(request, "kanri_list_page", False):
            # Not a page (a saved filter evaluated by code): fail as Django's lists do.
            raise IncorrectLookupParameters("; ".join(filters.message(p) for p in found))
        for problem in found:
            messages.error(request, filters.message(problem), fail_silently=True)
        return changelist

    def changelist_view(self, request, extra_context=None):
        # On a page, a filter that cannot be applied is shown as a message with no rows,
        # instead of Django's redirect to the unfiltered list.
        request.kanri_list_page = True
        return super().changelist_view(request, extra_context)

    def prepare_page(self, rows):
        """Fetch, once for the page, what rows show from other tables."""

    def customer_of(self, obj):
        if not self.customer_path:
            return None
        for name in self.customer_path.split("__"):
            obj = getattr(obj, name, None) if obj is not None else None
        return obj

    def stripe_data(self, obj):
        return obj.stripe_data or {}

    # ---------------------------------------------------------------- columns

    @admin.display(description=_("amount"))
    def amount_money(self, obj):
        return money(self.stripe_data(obj), self.amount_key)

    def status_of(self, obj):
        return self.stripe_data(obj).get("status") or ""

    @admin.display(description=_("status"))
    def status_label(self, obj):
        value = self.status_of(obj)
        return str(dict(self.statuses).get(value, value))

    @admin.display(description=_("customer"))
    def customer_label(self, obj):
        found = self.customer_of(obj)
        if found is None:
            return "—"
        name = found.stripe_data.get("name") or ""
        return format_html(
            '{}<br><span class="quiet">{}</span>', name or found.id, found.email or ""
        )

    @admin.display(description=_("created"), ordering="created")
    def created_at(self, obj):
        return format_time(obj.created)

    @admin.display(description=_("metadata"))
    def metadata_text(self, obj):
        data = self.stripe_data(obj).get("metadata") or {}
        return format_html('<span title="{}">{}</span>', compact(data, 1000), compact(data))

    # ---------------------------------------------------------------- the detail page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The read-only detail page (GET only): an allowlist of Stripe fields."""
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        self.prepare_page([obj])
        rows = [
            {"label": str(label), "value": redact(value), "url": url}
            for label, value, url in self.detail_rows(obj)
            if value not in (None, "")
        ]
        data = self.stripe_data(obj)
        return page(
            self,
            request,
            "admin/kanri/stripe/detail.html",
            f"{self.list_title}: {obj.id}",
            stripe_object={
                "id": str(obj.id),
                "rows": rows,
                "metadata": [
                    {"key": redact(k), "value": redact(v)}
                    for k, v in (data.get("metadata") or {}).items()
                ],
                "links": [
                    {"label": str(label), "url": url} for label, url in self.detail_links(obj)
                ],
                "dashboard_url": self.dashboard_url(obj),
            },
            list_title=str(self.list_title),
            changelist_url=_changelist_url(self.model),
        )

    def detail_rows(self, obj):
        """Yield (label, text, url) for the detail page."""
        data = self.stripe_data(obj)
        yield _("ID"), str(obj.id), ""
        if self.amount_key:
            yield _("Amount"), money(data, self.amount_key), ""
        if self.statuses:
            yield _("Status"), self.status_label(obj), ""
        found = self.customer_of(obj)
        if found is not None:
            label = " · ".join(
                p for p in (found.stripe_data.get("name"), found.email, found.id) if p
            )
            yield _("Customer"), label, change_url(type(found), found.pk)
        yield _("Created"), format_time(obj.created), ""
        for label, path, kind in self.detail_fields:
            value = dig(data, path)
            if value in (None, "", [], {}):
                continue
            if kind == "money":
                text = money({path: value, "currency": data.get("currency")}, path)
            elif kind == "time":
                text = format_time(value)
            elif kind == "bool":
                text = _yes_no(value)
            elif kind == "list":
                text = ", ".join(str(v) for v in value)
            else:
                text = str(value)
            url = self.related_url(kind, value)
            yield label, text, url
        yield _("Live mode"), _yes_no(getattr(obj, "livemode", False)), ""

    def related_url(self, kind, value):
        """Return the detail page of a related mirrored object ("charge", "customer", …)."""
        model = RELATED.get(kind)
        if model is None or not isinstance(value, str):
            return ""
        pk = model.objects.filter(id=value).values_list("pk", flat=True).first()
        return change_url(model, pk) if pk else ""

    def detail_links(self, obj):
        return []

    def dashboard_url(self, obj):
        item = getattr(self.model, "stripe_dashboard_item_name", "")
        if not item:
            return ""
        mode = "" if getattr(obj, "livemode", False) else "test/"
        return f"https://dashboard.stripe.com/{mode}{item}/{obj.id}"


def _choices(enum):
    # Labels stay lazy: they are read in each request's language, not at import.
    return tuple(enum.choices)


# Links from detail fields to the rows they name.
RELATED = {
    "charge": djstripe_models.Charge,
    "customer": djstripe_models.Customer,
    "payment_intent": djstripe_models.PaymentIntent,
    "invoice": djstripe_models.Invoice,
    "subscription": djstripe_models.Subscription,
    "event": djstripe_models.Event,
}

CREATED_FILTERS = [("created", filters.CreatedRangeFilter), filters.CreatedPeriodFilter]


# ------------------------------------------------------------------ Payments (charges)

# A payment's status as Stripe's dashboard names it, from the charge Stripe sent. The first
# row that matches wins, so each payment has exactly one status, and the column and the
# `status__in` filter read the same rule (the `payment_status` annotation).
#
# canceled: the charge's payment intent was canceled, or the charge was only authorized
#   and that authorization was released (captured false, refunded true: what Stripe records
#   when an uncaptured payment is canceled). It comes before blocked and failed because it
#   is where the payment ended, as the dashboard's one row per payment shows it.
PAYMENT_STATUSES = (
    ("disputed", _("Disputed"), Q(stripe_data__disputed=True)),
    (
        "canceled",
        _("Canceled"),
        Q(
            Exists(
                djstripe_models.PaymentIntent.objects.filter(
                    id=OuterRef("payment_intent_id"), stripe_data__status="canceled"
                )
            )
        )
        | Q(stripe_data__captured=False, stripe_data__refunded=True),
    ),
    ("refunded", _("Refunded"), Q(stripe_data__refunded=True)),
    ("partially_refunded", _("Partially refunded"), Q(stripe_data__amount_refunded__gt=0)),
    ("blocked", _("Blocked"), Q(stripe_data__outcome__type="blocked")),
    ("failed", _("Failed"), Q(status="failed")),
    ("pending", _("Pending"), Q(status="pending")),
    ("succeeded", _("Succeeded"), Q(status="succeeded")),
)


def payment_status():
    """Return the expression of a charge's dashboard status (see PAYMENT_STATUSES)."""
    return Case(
        *[When(condition, then=Value(value)) for value, _label, condition in PAYMENT_STATUSES],
        default=Value(""),
        output_field=CharField(),
    )


class ChargeAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Payments")
    list_order = 10
    kanri_object = "charge"
    amount_key = "amount"
    customer_path = "customer"
    email_paths = (
        "customer__email",
        "stripe_data__billing_details__email",
        "stripe_data__receipt_email",
    )
    statuses = tuple((value, label) for value, label, _q in PAYMENT_STATUSES)
    actions = [run_workflow_on_selected, refund_as_store_credit]
    list_display = [
        "id",
        "amount_money",
        "status_label",
        "customer_label",
        "created_at",
        "metadata_text",
    ]
    list_filter = [
        filters.status_filter(statuses, field="payment_status"),
        filters.AmountFilter,
        *CREATED_FILTERS,
        filters.CustomerEmailFilter,
        filters.MetadataFilter,
    ]
    search_fields = ["id", "customer__email"]
    detail_fields = (
        (_("Description"), "description", "text"),
        (_("Amount captured"), "amount_captured", "money"),
        (_("Amount refunded"), "amount_refunded", "money"),
        (_("Payment intent"), "payment_intent", "payment_intent"),
        (_("Invoice"), "invoice", "invoice"),
        (_("Outcome"), "outcome.type", "text"),
        (_("Network status"), "outcome.network_status", "text"),
        (_("Risk level"), "outcome.risk_level", "text"),
        (_("Seller message"), "outcome.seller_message", "text"),
        (_("Failure code"), "failure_code", "text"),
        (_("Failure message"), "failure_message", "text"),
        (_("Payment method"), "payment_method_details.type", "text"),
        (_("Card brand"), "payment_method_details.card.brand", "text"),
        (_("Card ending in"), "payment_method_details.card.last4", "text"),
        (_("Billing name"), "billing_details.name", "text"),
        (_("Billing email"), "billing_details.email", "text"),
        (_("Receipt email"), "receipt_email", "text"),
        (_("Statement descriptor"), "statement_descriptor", "text"),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(payment_status=payment_status())

    def status_of(self, obj):
        return getattr(obj, "payment_status", "") or obj.status

    @admin.display(description=_("customer"))
    def customer_label(self, obj):
        if obj.customer_id:
            return super().customer_label(obj)
        billing = self.stripe_data(obj).get("billing_details") or {}
        if billing.get("name") or billing.get("email"):
            return format_html(
                '{}<br><span class="quiet">{}</span>',
                billing.get("name") or "",
                billing.get("email") or "",
            )
        return "—"


class PaymentIntentAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Payment intents")
    list_order = 20
    kanri_object = "payment_intent"
    amount_key = "amount"
    customer_path = "customer"
    email_paths = ("customer__email", "stripe_data__receipt_email")
    statuses = _choices(enums.PaymentIntentStatus)
    actions = [run_workflow_on_selected]
    list_display = [
        "id",
        "amount_money",
        "status_label",
        "customer_label",
        "created_at",
        "metadata_text",
    ]
    list_filter = [
        filters.status_filter(statuses),
        filters.AmountFilter,
        *CREATED_FILTERS,
        filters.CustomerEmailFilter,
        filters.MetadataFilter,
    ]
    search_fields = ["id", "customer__email"]
    detail_fields = (
        (_("Description"), "description", "text"),
        (_("Amount received"), "amount_received", "money"),
        (_("Capture method"), "capture_method", "text"),
        (_("Latest charge"), "latest_charge", "charge"),
        (_("Canceled at"), "canceled_at", "time"),
        (_("Cancellation reason"), "cancellation_reason", "text"),
        (_("Last payment error"), "last_payment_error.code", "text"),
        (_("Last payment error message"), "last_payment_error.message", "text"),
        (_("Payment method types"), "payment_method_types", "list"),
        (_("Receipt email"), "receipt_email", "text"),
    )


class CustomerAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Customers")
    list_order = 30
    kanri_object = "customer"
    email_paths = ("email",)
    actions = [run_workflow_on_selected]
    list_display = ["id", "name", "email", "balance", "created_at", "metadata_text"]
    list_filter = [*CREATED_FILTERS, filters.CustomerEmailFilter, filters.MetadataFilter]
    search_fields = ["id", "email"]
    detail_fields = (
        (_("Name"), "name", "text"),
        (_("Email"), "email", "text"),
        (_("Phone"), "phone", "text"),
        (_("Description"), "description", "text"),
        (_("Balance"), "balance", "money"),
        (_("Currency"), "currency", "text"),
        (_("Delinquent"), "delinquent", "bool"),
        (_("Country"), "address.country", "text"),
        (_("Preferred languages"), "preferred_locales", "list"),
        (_("Invoice prefix"), "invoice_prefix", "text"),
    )

    @admin.display(description=_("name"))
    def name(self, obj):
        return obj.stripe_data.get("name") or ""

    @admin.display(description=_("balance"))
    def balance(self, obj):
        return money(obj.stripe_data, "balance") if obj.stripe_data.get("balance") else ""

    def detail_links(self, obj):
        query = f"customer__id__exact={obj.id}"
        return [
            (_("Payments of this customer"), _changelist_url(djstripe_models.Charge, query)),
            (
                _("Subscriptions of this customer"),
                _changelist_url(djstripe_models.Subscription, query),
            ),
            (_("Invoices of this customer"), _changelist_url(djstripe_models.Invoice, query)),
        ]


class SubscriptionAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Subscriptions")
    list_order = 40
    kanri_object = "subscription"
    customer_path = "customer"
    email_paths = ("customer__email",)
    statuses = _choices(enums.SubscriptionStatus)
    actions = [run_workflow_on_selected]
    list_display = ["id", "status_label", "customer_label", "plan", "created_at", "metadata_text"]
    list_filter = [
        filters.status_filter(statuses),
        filters.PlanFilter,
        *CREATED_FILTERS,
        filters.CustomerEmailFilter,
        filters.MetadataFilter,
    ]
    search_fields = ["id", "customer__email"]
    detail_fields = (
        (_("Collection method"), "collection_method", "text"),
        (_("Started"), "start_date", "time"),
        (_("Current period ends"), "current_period_end", "time"),
        (_("Trial ends"), "trial_end", "time"),
        (_("Cancels at period end"), "cancel_at_period_end", "bool"),
        (_("Cancels at"), "cancel_at", "time"),
        (_("Canceled at"), "canceled_at", "time"),
        (_("Ended at"), "ended_at", "time"),
        (_("Latest invoice"), "latest_invoice", "invoice"),
    )

    @staticmethod
    def items(obj):
        return dig(obj.stripe_data, "items.data") or []

    @staticmethod
    def item_text(item):
        price = item.get("price") or {}
        text = money(price, "unit_amount")
        interval = dig(price, "recurring.interval")
        if text and interval:
            text = f"{text} / {interval}"
        if (item.get("quantity") or 1) != 1:
            text = f"{text} \u00d7 {item['quantity']}"  # times sign
        return " · ".join(p for p in (str(price.get("product") or ""), text) if p)

    @admin.display(description=_("plan"))
    def plan(self, obj):
        return format_html_join(
            mark_safe("<br>"), "{}", ((self.item_text(i),) for i in self.items(obj)[:3])
        )

    def detail_rows(self, obj):
        yield from super().detail_rows(obj)
        for item in self.items(obj):
            price = item.get("price") or {}
            yield _("Price"), f"{price.get('id', '')} · {self.item_text(item)}", ""


class InvoiceAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Invoices")
    list_order = 50
    kanri_object = "invoice"
    amount_key = "total"
    customer_path = "customer"
    email_paths = ("customer__email", "stripe_data__customer_email")
    statuses = _choices(enums.InvoiceStatus)
    actions = [run_workflow_on_selected]
    list_display = [
        "id",
        "number",
        "amount_money",
        "status_label",
        "customer_label",
        "created_at",
        "metadata_text",
    ]
    list_filter = [
        filters.status_filter(statuses),
        filters.AmountFilter,
        *CREATED_FILTERS,
        filters.CustomerEmailFilter,
        filters.MetadataFilter,
    ]
    search_fields = ["id", "customer__email"]
    detail_fields = (
        (_("Number"), "number", "text"),
        (_("Amount due"), "amount_due", "money"),
        (_("Amount paid"), "amount_paid", "money"),
        (_("Amount remaining"), "amount_remaining", "money"),
        (_("Billing reason"), "billing_reason", "text"),
        (_("Collection method"), "collection_method", "text"),
        (_("Attempts"), "attempt_count", "text"),
        (_("Due"), "due_date", "time"),
        (_("Subscription"), "subscription", "subscription"),
        (_("Customer email"), "customer_email", "text"),
    )

    @admin.display(description=_("number"))
    def number(self, obj):
        return obj.stripe_data.get("number") or ""


class RefundAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Refunds")
    list_order = 60
    amount_key = "amount"
    customer_path = "charge__customer"
    email_paths = ("charge__customer__email",)
    statuses = _choices(enums.RefundStatus)
    list_display = [
        "id",
        "amount_money",
        "status_label",
        "charge_ref",
        "customer_label",
        "reason",
        "created_at",
    ]
    list_filter = [
        filters.status_filter(statuses),
        filters.AmountFilter,
        *CREATED_FILTERS,
        filters.CustomerEmailFilter,
        filters.MetadataFilter,
    ]
    detail_fields = (
        (_("Reason"), "reason", "text"),
        (_("Charge"), "charge", "charge"),
        (_("Payment intent"), "payment_intent", "payment_intent"),
        (_("Failure reason"), "failure_reason", "text"),
    )

    @admin.display(description=_("payment"))
    def charge_ref(self, obj):
        return obj.stripe_data.get("charge") or ""

    @admin.display(description=_("reason"))
    def reason(self, obj):
        return obj.stripe_data.get("reason") or ""


class DisputeAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Disputes")
    list_order = 70
    amount_key = "amount"
    customer_path = "charge__customer"
    email_paths = ("charge__customer__email",)
    statuses = _choices(enums.DisputeStatus)
    list_display = [
        "id",
        "amount_money",
        "status_label",
        "reason",
        "charge_ref",
        "customer_label",
        "created_at",
    ]
    list_filter = [
        filters.status_filter(statuses),
        filters.AmountFilter,
        *CREATED_FILTERS,
        filters.CustomerEmailFilter,
        filters.MetadataFilter,
    ]
    detail_fields = (
        (_("Reason"), "reason", "text"),
        (_("Charge"), "charge", "charge"),
        (_("Payment intent"), "payment_intent", "payment_intent"),
        (_("Evidence due by"), "evidence_details.due_by", "time"),
        (_("Evidence submitted"), "evidence_details.has_evidence", "bool"),
        (_("Charge refundable"), "is_charge_refundable", "bool"),
    )
    charge_ref = RefundAdmin.charge_ref
    reason = RefundAdmin.reason


class EarlyFraudWarningAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Early fraud warnings")
    list_order = 80
    list_display = [
        "id",
        "charge_ref",
        "fraud_type",
        "actionable",
        "customer_label",
        "created_at",
    ]
    list_filter = [*CREATED_FILTERS]
    detail_fields = (
        (_("Charge"), "charge", "charge"),
        (_("Payment intent"), "payment_intent", "payment_intent"),
        (_("Fraud type"), "fraud_type", "text"),
        (_("Actionable"), "actionable", "bool"),
    )
    charge_ref = RefundAdmin.charge_ref

    @admin.display(description=_("fraud type"))
    def fraud_type(self, obj):
        return obj.stripe_data.get("fraud_type") or ""

    @admin.display(description=_("actionable"), boolean=True)
    def actionable(self, obj):
        return bool(obj.stripe_data.get("actionable"))

    def prepare_page(self, rows):
        # A warning names its charge only in its Stripe data: one query for the page.
        ids = {row.stripe_data.get("charge") for row in rows} - {None}
        charges = {
            c.id: c
            for c in djstripe_models.Charge.objects.filter(id__in=ids).select_related("customer")
        }
        for row in rows:
            row.kanri_charge = charges.get(row.stripe_data.get("charge"))

    def customer_of(self, obj):
        charge = getattr(obj, "kanri_charge", None)
        return charge.customer if charge is not None else None


def _event_customer_id(event):
    obj = dig(event.stripe_data, "data.object") or {}
    if obj.get("object") == "customer":
        return obj.get("id")
    customer = obj.get("customer")
    return customer.get("id") if isinstance(customer, dict) else customer


class EventAdmin(SavedFiltersMixin, StripeListAdmin):
    list_title = _("Events")
    list_order = 90
    list_display = ["id", "type", "object_id", "object_amount", "customer_label", "created_at"]
    list_filter = [("type", filters.ValuesFilter), *CREATED_FILTERS]
    search_fields = ["id", "type"]
    detail_fields = (
        (_("Type"), "type", "text"),
        (_("API version"), "api_version", "text"),
        (_("Object"), "data.object.object", "text"),
        (_("Object ID"), "data.object.id", "text"),
        (_("Object status"), "data.object.status", "text"),
        (_("Request"), "request.id", "text"),
        (_("Idempotency key"), "request.idempotency_key", "text"),
        (_("Webhooks pending"), "pending_webhooks", "text"),
    )

    @admin.display(description=_("object"))
    def object_id(self, obj):
        return dig(obj.stripe_data, "data.object.id") or ""

    @admin.display(description=_("amount"))
    def object_amount(self, obj):
        return money(dig(obj.stripe_data, "data.object"), "amount")

    def prepare_page(self, rows):
        ids = {_event_customer_id(row) for row in rows} - {None}
        found = {c.id: c for c in djstripe_models.Customer.objects.filter(id__in=ids)}
        for row in rows:
            row.kanri_customer = found.get(_event_customer_id(row))

    def customer_of(self, obj):
        return getattr(obj, "kanri_customer", None)

    def detail_rows(self, obj):
        yield from super().detail_rows(obj)
        yield _("Object amount"), money(dig(obj.stripe_data, "data.object"), "amount"), ""


class WebhookDeliveryAdmin(SavedFiltersMixin, StripeListAdmin):
    """Each POST Stripe made to the receiver: the evidence that an event arrived."""

    list_title = _("Webhook deliveries")
    list_order = 100
    list_display = [
        "id",
        "event_ref",
        "event_type",
        "valid",
        "processed",
        "exception",
        "created_at",
    ]
    list_filter = ["valid", "processed", *CREATED_FILTERS]
    list_select_related = ["event"]
    search_fields = ["event__id", "exception"]

    def stripe_data(self, obj):
        return {}

    @admin.display(description=_("event"))
    def event_ref(self, obj):
        return obj.event_id or ""

    @admin.display(description=_("event type"))
    def event_type(self, obj):
        return obj.event.type if obj.event_id else ""

    def detail_rows(self, obj):
        yield _("Delivery"), str(obj.pk), ""
        yield _("Received"), format_time(obj.created), ""
        yield _("From"), obj.remote_ip, ""
        yield _("Signature valid"), _yes_no(obj.valid), ""
        yield _("Processed"), _yes_no(obj.processed), ""
        if obj.event_id:
            yield (
                _("Event"),
                f"{obj.event_id} · {obj.event.type}",
                change_url(djstripe_models.Event, obj.event.pk),
            )
        yield _("Webhook endpoint"), obj.webhook_endpoint_id or "", ""
        yield _("Error"), obj.exception, ""
        yield _("Traceback"), obj.traceback, ""
        yield _("dj-stripe version"), obj.djstripe_version, ""

    def dashboard_url(self, obj):
        return ""


LISTS = {
    djstripe_models.Charge: ChargeAdmin,
    djstripe_models.PaymentIntent: PaymentIntentAdmin,
    djstripe_models.Customer: CustomerAdmin,
    djstripe_models.Subscription: SubscriptionAdmin,
    djstripe_models.Invoice: InvoiceAdmin,
    djstripe_models.Refund: RefundAdmin,
    djstripe_models.Dispute: DisputeAdmin,
    djstripe_models.EarlyFraudWarning: EarlyFraudWarningAdmin,
    djstripe_models.Event: EventAdmin,
    djstripe_models.WebhookEventTrigger: WebhookDeliveryAdmin,
}

# The secret key as dj-stripe's remaining detail pages would show it (every model property
# is a read-only field there).
SECRET_PROPERTIES = frozenset({"default_api_key"})


# dj-stripe's "sync" actions, the only names its confirmation view should run.
DJSTRIPE_ACTIONS = frozenset({"_resync_instances", "_sync_all_instances"})


def hide_secrets(model_admin_class):
    """Return a subclass of a dj-stripe ModelAdmin that never shows the secret key, and
    whose sync confirmation only a superuser may post."""

    def get_readonly_fields(self, request, obj=None):
        fields = super(cls, self).get_readonly_fields(request, obj)
        return [f for f in fields if f not in SECRET_PROPERTIES]

    def get_urls(self):
        # dj-stripe's confirmation view (`action/<action_name>/<model_name>/`) checks no
        # permission at all and calls the method named in the URL: any staff member, a
        # Kanri viewer too, could start a sync of every object from Stripe. Only a
        # superuser (who alone sees these models) may post one of its two actions.
        urls = super(cls, self).get_urls()
        for i, pattern in enumerate(urls):
            if pattern.name == "djstripe_custom_action":
                urls[i] = url_path(
                    str(pattern.pattern),
                    self.admin_site.admin_view(_guarded(self, pattern.callback)),
                    name=pattern.name,
                )
        return urls

    cls = type(
        model_admin_class.__name__,
        (model_admin_class,),
        {
            "get_readonly_fields": get_readonly_fields,
            "get_urls": get_urls,
            "__module__": __name__,
        },
    )
    return cls


def _guarded(model_admin, view):
    def custom_action(request, action_name, model_name):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])  # dj-stripe's GET page fails (500)
        if (
            not request.user.is_superuser
            or action_name not in DJSTRIPE_ACTIONS
            or model_name != model_admin.model._meta.model_name
        ):
            raise PermissionDenied
        return view(request, action_name=action_name, model_name=model_name)

    return custom_action


def register(site=admin.site):
    for model, model_admin in LISTS.items():
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)
    for model, model_admin in list(site._registry.items()):
        # CustomActionMixin too: the webhook endpoint admin has the sync view without
        # being a StripeModelAdmin.
        stock = isinstance(model_admin, StripeModelAdmin | CustomActionMixin)
        if model._meta.app_label == "djstripe" and stock:
            site.unregister(model)
            site.register(model, hide_secrets(type(model_admin)))


register()
