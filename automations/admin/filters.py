"""List filters that live in the query string, as on Stripe's dashboard.

    ?status__in=canceled,blocked
    ?currency=usd&amount_min=10&amount_max=100.50      amounts as people type them
    ?created__range__gte=2026-11-01&created__range__lte=2026-11-30
    ?created__period=yesterday                          evaluated when the list is opened
    ?customer_email=hanako@example.test
    ?metadata_key=booking_id&metadata_value=B-1
    ?product=prod_…  ?price=price_…                     subscriptions

A saved filter is re-evaluated later (a scheduled digest of "payments that failed
yesterday"), so every value is checked: a value that cannot be applied is a problem with a
code and parameters, never a silently unfiltered list. On a page the problems are shown as
messages and the list is empty; anywhere else (bookmarks.rows) the ChangeList raises
IncorrectLookupParameters with the same words. `ParameterCheck`, which every Kanri Stripe
list puts last, turns query parameters no filter understands into problems too.
"""

import re
from datetime import datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.utils import (
    build_q_object_from_lookup_parameters,
    lookup_spawns_duplicates,
    prepare_lookup_value,
)
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Count, Q
from django.db.models.fields.json import HasKey, KeyTextTransform, KeyTransform
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from more_admin_filters.filters import MultiSelectFilter, MultiSelectMixin
from rangefilter.filters import DateRangeFilter

from automations.money import MoneyError, format_amount, to_minor

MESSAGES = {
    "status_unknown": _("There is no status %(value)r in this list; use one of %(choices)s."),
    "currency_invalid": _("%(value)r is not a currency code (for example usd or jpy)."),
    "amount_needs_currency": _(
        "An amount needs its currency: add currency=usd (or jpy, eur, …) to the filter."
    ),
    "amount_invalid": _("%(value)r is not an amount in %(currency)s."),
    "amount_range_reversed": _("The lowest amount (%(low)s) is above the highest (%(high)s)."),
    "period_unknown": _("There is no period %(value)r; use one of %(choices)s."),
    "date_invalid": _("%(value)r is not a date; write it as YYYY-MM-DD."),
    "date_range_reversed": _("The range starts (%(start)s) after it ends (%(end)s)."),
    "email_invalid": _("%(value)r is not an email address."),
    "metadata_value_without_key": _("A metadata value needs its key: add metadata_key=…."),
    "metadata_key_invalid": _("A metadata key has 1 to 40 characters; %(value)r has not."),
    "id_invalid": _("%(value)r is not a Stripe %(kind)s ID (for example %(example)s)."),
    "parameter_unknown": _("This list cannot be filtered by %(name)r."),
    "lookup_invalid": _("The filter %(name)s=%(value)s cannot be applied here."),
}


def message(problem):
    """Return the words for a problem ({"code", "params"}) in the current language."""
    return str(MESSAGES[problem["code"]]) % problem["params"]


def report(request, code, **params):
    """Record that a filter value cannot be applied (once per request and problem)."""
    problem = {"code": code, "params": params}
    found = request.__dict__.setdefault("kanri_filter_problems", [])
    if problem not in found:
        found.append(problem)


def problems(request):
    """Return the filter problems met while building this request's list."""
    return list(getattr(request, "kanri_filter_problems", []))


def _values(raw):
    """Return the values of one query parameter: repeated and comma-separated alike."""
    if isinstance(raw, str):
        raw = [raw]
    return [v.strip() for item in raw or [] for v in item.split(",") if v.strip()]


def _last(raw):
    if isinstance(raw, list):
        raw = raw[-1] if raw else ""
    return (raw or "").strip()


def _choices_text(choices):
    return ", ".join(str(value) for value, _label in choices)


# ------------------------------------------------------------------ status


class StatusFilter(MultiSelectMixin, admin.SimpleListFilter):
    """Several statuses at once, `?status__in=a,b`, toggled by links as more_admin_filters
    does. `field` is the ORM path holding the status; `statuses` its (value, label) pairs."""

    title = _("status")
    parameter_name = "status__in"
    field = "stripe_data__status"
    statuses = ()

    def __init__(self, request, params, model, model_admin):
        raw = params.pop(self.parameter_name, None)
        super().__init__(request, params, model, model_admin)
        self.lookup_kwarg = self.parameter_name
        known = {value for value, _label in self.statuses}
        self.lookup_vals = []
        for value in _values(raw):
            if value not in known:
                report(
                    request,
                    "status_unknown",
                    value=value,
                    choices=_choices_text(self.statuses),
                )
            elif value not in self.lookup_vals:
                self.lookup_vals.append(value)
        if self.lookup_vals:
            self.used_parameters[self.parameter_name] = ",".join(self.lookup_vals)

    def lookups(self, request, model_admin):
        return list(self.statuses)

    def has_output(self):
        return bool(self.lookup_choices)

    def q(self, values):
        return Q(**{f"{self.field}__in": values})

    def queryset(self, request, queryset):
        return queryset.filter(self.q(self.lookup_vals)) if self.lookup_vals else queryset

    def get_facet_counts(self, pk_attname, filtered_qs):
        return {
            f"{i}__c": Count(pk_attname, filter=self.q([value]))
            for i, (value, _label) in enumerate(self.lookup_choices)
        }

    def choices(self, changelist):
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else {}
        yield {
            "selected": not self.lookup_vals,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("All"),
        }
        for i, (value, label) in enumerate(self.lookup_choices):
            if changelist.add_facets:
                label = f"{label} ({counts.get(f'{i}__c', 0)})"
            yield {
                "selected": value in self.lookup_vals,
                "query_string": self.querystring_for_choices(value, changelist),
                "display": label,
            }


def status_filter(statuses, field="stripe_data__status"):
    """Return a StatusFilter over one list's statuses."""
    return type("StatusFilter", (StatusFilter,), {"statuses": tuple(statuses), "field": field})


class ValuesFilter(MultiSelectFilter):
    """more_admin_filters' multi-select over a column's distinct values (`?type__in=a,b`)."""


# ------------------------------------------------------------------ typed inputs


class InputFilter(admin.ListFilter):
    """A filter of typed values: a small GET form in the sidebar that keeps the other
    filters. Subclasses list their `parameters` and build a Q in `clean(values)`, calling
    `self.problem(code, **params)` for anything they cannot apply."""

    template = "admin/kanri/stripe/input_filter.html"
    parameters = ()
    labels = {}

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.model_admin = model_admin
        self.values = {}
        for name in self.parameters:
            if name in params:
                value = _last(params.pop(name))
                if value:
                    self.values[name] = value
        self.used_parameters = dict(self.values)
        self.q = self.clean(self.values) if self.values else None

    def problem(self, code, **params):
        report(self.request, code, **params)

    def clean(self, values):
        raise NotImplementedError

    def has_output(self):
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        return queryset.filter(self.q) if self.q is not None else queryset

    def inputs(self):
        return [
            {"name": name, "label": self.labels.get(name, name), "value": self.values.get(name, "")}
            for name in self.parameters
        ]

    def choices(self, changelist):
        keep = [
            (key, value)
            for key, values in changelist.filter_params.items()
            if key not in self.parameters
            for value in values
        ]
        yield {
            "inputs": self.inputs(),
            "keep": keep,
            "clear": changelist.get_query_string(remove=list(self.parameters)),
            "active": bool(self.values),
        }


class AmountFilter(InputFilter):
    """`?currency=usd&amount_min=10&amount_max=100.50`: amounts in the currency's major
    units, compared in minor units with the Stripe field `model_admin.amount_key`."""

    title = _("amount")
    parameters = ("currency", "amount_min", "amount_max")
    labels = {"currency": _("Currency"), "amount_min": _("From"), "amount_max": _("To")}

    def clean(self, values):
        key = self.model_admin.amount_key
        currency = values.get("currency", "").lower()
        q = Q()
        if currency:
            if not re.fullmatch(r"[a-z]{3}", currency):
                self.problem("currency_invalid", value=values["currency"])
                return None
            q &= Q(stripe_data__currency=currency)
        bounds = {}
        for name, lookup in (("amount_min", "gte"), ("amount_max", "lte")):
            if name not in values:
                continue
            if not currency:
                self.problem("amount_needs_currency")
                return None
            try:
                bounds[name] = to_minor(values[name], currency)
            except MoneyError:
                self.problem("amount_invalid", value=values[name], currency=currency.upper())
                return None
            q &= Q(**{f"stripe_data__{key}__{lookup}": bounds[name]})
        if len(bounds) == 2 and bounds["amount_min"] > bounds["amount_max"]:
            self.problem(
                "amount_range_reversed",
                low=format_amount(bounds["amount_min"], currency),
                high=format_amount(bounds["amount_max"], currency),
            )
            return None
        return q


class CustomerEmailFilter(InputFilter):
    """`?customer_email=`: the customer's email, in any case; `model_admin.email_paths`
    are the ORM paths that hold it on this list."""

    title = _("customer email")
    parameters = ("customer_email",)
    labels = {"customer_email": _("Email")}

    def clean(self, values):
        email = values["customer_email"]
        try:
            validate_email(email)
        except ValidationError:
            self.problem("email_invalid", value=email)
            return None
        q = Q()
        for path in self.model_admin.email_paths:
            q |= Q(**{f"{path}__iexact": email})
        return q


class MetadataFilter(InputFilter):
    """`?metadata_key=booking_id&metadata_value=B-1` (the key alone: any value)."""

    title = _("metadata")
    parameters = ("metadata_key", "metadata_value")
    labels = {"metadata_key": _("Key"), "metadata_value": _("Value")}

    def clean(self, values):
        key, value = values.get("metadata_key"), values.get("metadata_value")
        if not key:
            self.problem("metadata_value_without_key")
            return None
        if len(key) > 40:  # https://docs.stripe.com/metadata#data
            self.problem("metadata_key_invalid", value=key)
            return None
        # Expressions, not "metadata__<key>" kwargs: a key may contain "__" or any character.
        metadata = KeyTransform("metadata", "stripe_data")
        if value is None:
            return Q(HasKey(metadata, key))
        return Q(Exact(KeyTextTransform(key, metadata), value))


# https://docs.stripe.com/api/subscriptions/create#create_subscription-items: at most 20.
SUBSCRIPTION_ITEMS = 20
_STRIPE_ID = re.compile(r"[A-Za-z0-9_\-]{1,255}")


class PlanFilter(InputFilter):
    """`?product=prod_…` / `?price=price_…`: subscriptions with an item of that product or
    price, read from the subscription's own items (what Stripe sent)."""

    title = _("product or price")
    parameters = ("product", "price")
    labels = {"product": _("Product ID"), "price": _("Price ID")}
    examples = {"product": "prod_NWjs8kKbJWmuuc", "price": "price_1MoBy5LkdIwHu7ix"}

    def clean(self, values):
        q = Q()
        for name, path in (("product", "price__product"), ("price", "price__id")):
            if name not in values:
                continue
            if not _STRIPE_ID.fullmatch(values[name]):
                self.problem(
                    "id_invalid", value=values[name], kind=name, example=self.examples[name]
                )
                return None
            # One JSON path per item slot: the same query on SQLite and PostgreSQL.
            any_item = Q()
            for i in range(SUBSCRIPTION_ITEMS):
                any_item |= Q(**{f"stripe_data__items__data__{i}__{path}": values[name]})
            q &= any_item
        return q


# ------------------------------------------------------------------ created


def _day_start(day, zone):
    # Midnight of each calendar day, so a day is 23 or 25 hours when clocks change.
    return datetime.combine(day, time.min, tzinfo=zone)


PERIODS = {
    # name: (first day, days) counted back from today
    "today": (0, 1),
    "yesterday": (1, 1),
    "last_7_days": (6, 7),
    "last_30_days": (29, 30),
}


def period_bounds(name, now=None):
    """Return [start, end) of a relative period in the current time zone. The last N days
    are N calendar days ending with today."""
    zone = timezone.get_current_timezone()
    today = timezone.localtime(now or timezone.now(), zone).date()
    back, days = PERIODS[name]
    first = today - timedelta(days=back)
    return _day_start(first, zone), _day_start(first + timedelta(days=days), zone)


class CreatedPeriodFilter(admin.SimpleListFilter):
    """`?created__period=yesterday`: re-evaluated each time, in the current time zone."""

    title = _("created")
    parameter_name = "created__period"
    field = "created"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        value = self.value()
        if value is not None and value not in PERIODS:
            report(
                request,
                "period_unknown",
                value=value,
                choices=_choices_text(self.lookup_choices),
            )
            self.used_parameters.pop(self.parameter_name)

    def lookups(self, request, model_admin):
        return [
            ("today", _("Today")),
            ("yesterday", _("Yesterday")),
            ("last_7_days", _("Last 7 days")),
            ("last_30_days", _("Last 30 days")),
        ]

    def queryset(self, request, queryset):
        if self.value() not in PERIODS:
            return queryset
        start, end = period_bounds(self.value())
        return queryset.filter(**{f"{self.field}__gte": start, f"{self.field}__lt": end})


class CreatedRangeFilter(DateRangeFilter):
    """rangefilter's date range (`created__range__gte/lte`, whole days in the current time
    zone), reporting a date it cannot read instead of ignoring it."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = _("created between")
        if not self.used_parameters:
            return
        if not self.form.is_valid():
            for name in self.form.errors:
                report(request, "date_invalid", value=_last(self.used_parameters.get(name)))
            return
        start = self.form.cleaned_data.get(self.lookup_kwarg_gte)
        end = self.form.cleaned_data.get(self.lookup_kwarg_lte)
        if start and end and start > end:
            report(request, "date_range_reversed", start=str(start), end=str(end))

    def queryset(self, request, queryset):
        if self.used_parameters and not self.form.is_valid():
            return queryset  # reported: the ChangeList shows no rows
        return super().queryset(request, queryset)


# ------------------------------------------------------------------ the rest


class ParameterCheck(admin.ListFilter):
    """Last in every Kanri Stripe list: query parameters that no filter took must be real
    lookups with values that apply; anything else is reported, not silently dropped (Django
    would redirect to the unfiltered list with ?e=1)."""

    title = _("filters")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in list(params):
            raw = params[name]
            try:
                lookup_spawns_duplicates(model._meta, name)
                lookup = {name: prepare_lookup_value(name, raw)}
                model._default_manager.filter(build_q_object_from_lookup_parameters(lookup))
            except Exception:  # as broad as Django's ChangeList, which meets the same errors
                params.pop(name)
                known = name.partition("__")[0] in {f.name for f in model._meta.get_fields()}
                if known:
                    report(request, "lookup_invalid", name=name, value=_last(raw))
                else:
                    report(request, "parameter_unknown", name=name)

    def has_output(self):
        return False

    def expected_parameters(self):
        return []

    def queryset(self, request, queryset):
        return queryset
