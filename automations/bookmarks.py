"""Saved filter bookmarks: the one service behind "Save this filter", the short URL /f/<slug>/,
the saved-filter admin and anything that reads a saved filter's rows (scheduled digests).

A saved filter is an admin list (`app_label.model_name`) and its query string. It is always
evaluated by that list's own ModelAdmin and ChangeList, so a bookmark, a digest and the page a
person opens cannot disagree about which rows a filter selects.

Functions take the user and return rows, querysets or plain dicts; changes are kept in
Django's LogEntry in its structured (translatable) form.
"""

import json
from datetime import datetime
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import (
    FieldError,
    PermissionDenied,
    SuspiciousOperation,
    ValidationError,
)
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.http import Http404, QueryDict
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from automations import audit
from automations.models import Run, SavedFilter
from automations.problems import CodedError

__all__ = [
    "FilterError",
    "delete",
    "normalise",
    "rename",
    "resolve",
    "rows",
    "save",
    "update",
    "url",
    "visible",
]

# Query parameters that say how a page is shown, not which rows it selects: the page number,
# the admin's "invalid filter" flag, the filters a change form carries back, "show all",
# facet counts and popup mode. `o` (ordering), `q` (search) and the filters are kept.
NOISE = frozenset({"p", "e", "all", "_changelist_filters", "_facets", "_popup", "_to_field"})

MESSAGES = {
    "list_unknown": _("There is no admin list %(list)r."),
    "list_forbidden": _("%(user)s may not view the list %(list)s."),
    "query_invalid": _("The filter does not apply to %(list)s: %(error)s"),
    "name_required": _("Give the saved filter a name."),
    "name_too_long": _("A saved filter's name may be at most %(max)d characters."),
}


class FilterError(CodedError):
    """A saved filter that cannot be saved or evaluated; `code` and `params` say why."""

    messages = MESSAGES


class _Reader(AnonymousUser):
    """Who evaluates a filter that has no owner (a worker, no person behind it): it may view
    every list and do nothing else."""

    is_active = True

    def get_username(self):
        return "kanri"

    def __str__(self):
        return "kanri"

    def has_perm(self, perm, obj=None):
        return perm.partition(".")[2].startswith("view_")

    def has_module_perms(self, app_label):
        return True


READER = _Reader()


# ------------------------------------------------------------------ evaluating


def normalise(query):
    """Return a query string with the display-only parameters dropped, keys sorted, and
    commas left readable (`status__in=failed,held`), so equal filters compare equal."""
    params = QueryDict(query.lstrip("?"))
    pairs = sorted(
        (key, value)
        for key, values in params.lists()
        if key not in NOISE
        for value in values
        if value != "" or key not in ("q", "o")
    )
    return urlencode(pairs, safe=",")


def _model_admin(list_label):
    try:
        model = apps.get_model(list_label)
        return admin.site.get_model_admin(model)
    except (LookupError, ValueError, NotRegistered):
        raise FilterError("list_unknown", list=list_label) from None


def changelist_url(list_label):
    """Return the path of an admin list, e.g. /admin/automations/run/."""
    app_label, _, model_name = list_label.partition(".")
    try:
        return reverse(f"admin:{app_label}_{model_name}_changelist")
    except NoReverseMatch:
        raise FilterError("list_unknown", list=list_label) from None


def _request(list_label, query, user):
    request = RequestFactory().get(f"{changelist_url(list_label)}?{query}")
    request.user = user
    return request


def may_view_list(user, list_label):
    """Whether the user may open this admin list."""
    try:
        model_admin = _model_admin(list_label)
        return model_admin.has_view_or_change_permission(_request(list_label, "", user))
    except FilterError:
        return False


def _changelist(list_label, query, user):
    """Build the list's own ChangeList for this query, as its page would for this user."""
    model_admin = _model_admin(list_label)
    request = _request(list_label, normalise(query), user)
    if not model_admin.has_view_or_change_permission(request):
        raise FilterError("list_forbidden", list=list_label, user=user.get_username())
    try:
        return model_admin.get_changelist_instance(request)
    except (
        IncorrectLookupParameters,
        SuspiciousOperation,
        ValidationError,
        FieldError,
        ValueError,
    ) as e:
        raise FilterError("query_invalid", list=list_label, error=str(e)) from e


def _is_stripe(obj):
    from djstripe.models.base import StripeModel

    return isinstance(obj, StripeModel)


def _row(obj):
    if _is_stripe(obj):
        # Stripe's own shape: its field names and integer minor amounts.
        return {**obj.stripe_data, "id": obj.id}
    row = {}
    for field in obj._meta.concrete_fields:
        value = field.value_from_object(obj)
        if isinstance(value, datetime) and timezone.is_aware(value):
            value = timezone.localtime(value)
        row[field.name] = value
    if isinstance(obj, Run):
        # A run's snapshot is stored once, in its TriggerEvent: the row shows it as before.
        row.pop("event", None)
        row["trigger_data"] = obj.snapshot
    # JSON-ready (a digest may store or send it): dates as ISO 8601 in the current time zone.
    return json.loads(json.dumps(row, cls=DjangoJSONEncoder))


def rows(saved_filter, *, limit=None):
    """Return {"rows", "count", "list"}: the rows a saved filter's admin list shows, in its order.

    The list's own ChangeList evaluates the query (same filters, search and ordering) with
    the owner's permissions, or read-only when the filter has no owner. `count` is every
    matching row; `rows` holds at most `limit` of them. Date filters and datetimes use the
    current time zone. Raises FilterError for a query or list that cannot be evaluated.
    """
    changelist = _changelist(saved_filter.list, saved_filter.query, saved_filter.owner or READER)
    queryset = changelist.queryset
    if limit is not None:
        queryset = queryset[:limit]
    return {
        "rows": [_row(obj) for obj in queryset],
        "count": changelist.result_count,
        "list": saved_filter.list,
    }


# ------------------------------------------------------------------ bookmarks


def _log(user, obj, flag, message):
    audit.log(user, obj, message, flag)


def _clean_name(name):
    name = (name or "").strip()
    if not name:
        raise FilterError("name_required")
    limit = SavedFilter._meta.get_field("name").max_length
    if len(name) > limit:
        raise FilterError("name_too_long", max=limit)
    return name


def may_change(user, saved_filter):
    """Only the owner renames, re-shares or deletes a saved filter (a superuser may tidy up
    one whose owner is gone)."""
    if saved_filter.owner_id is None:
        return user.is_superuser
    return saved_filter.owner_id == user.pk


def _visible_to(user, saved_filter):
    return (saved_filter.shared or saved_filter.owner_id == user.pk) and may_view_list(
        user, saved_filter.list
    )


@transaction.atomic
def save(user, list_label, query, name, shared=False):
    """Save an admin list's current query as a bookmark owned by the user."""
    if not user.has_perm("automations.add_savedfilter"):
        raise PermissionDenied
    name = _clean_name(name)
    query = normalise(query)
    _changelist(list_label, query, user)  # refuses a list the user cannot see, or a bad query
    saved = SavedFilter.objects.create(
        name=name, owner=user, shared=bool(shared), list=list_label, query=query
    )
    _log(user, saved, ADDITION, [{"added": {}}])
    return saved


@transaction.atomic
def update(user, saved_filter, *, name=None, shared=None, query=None):
    """Rename, share or unshare, or re-point a saved filter (its owner only); the slug stays."""
    if not _visible_to(user, saved_filter):
        raise Http404
    if not may_change(user, saved_filter) or not user.has_perm("automations.change_savedfilter"):
        raise PermissionDenied
    changed = []
    if name is not None and _clean_name(name) != saved_filter.name:
        saved_filter.name = _clean_name(name)
        changed.append("name")
    if shared is not None and bool(shared) != saved_filter.shared:
        saved_filter.shared = bool(shared)
        changed.append("shared")
    if query is not None and normalise(query) != saved_filter.query:
        saved_filter.query = normalise(query)
        _changelist(saved_filter.list, saved_filter.query, user)
        changed.append("query")
    if changed:
        saved_filter.save()
        _log(user, saved_filter, CHANGE, [{"changed": {"fields": changed}}])
    return saved_filter


def rename(user, saved_filter, name):
    """Rename a saved filter (its owner only); its short URL keeps working."""
    return update(user, saved_filter, name=name)


@transaction.atomic
def delete(user, saved_filter):
    """Delete a saved filter (its owner only)."""
    if not _visible_to(user, saved_filter):
        raise Http404
    if not may_change(user, saved_filter) or not user.has_perm("automations.delete_savedfilter"):
        raise PermissionDenied
    _log(user, saved_filter, DELETION, [{"deleted": {}}])
    saved_filter.delete()


def visible(user, list_label=None):
    """Return the saved filters the user may see: their own and shared ones, on lists they
    may view (never someone else's private one)."""
    queryset = SavedFilter.objects.filter(Q(owner_id=user.pk) | Q(shared=True)).select_related(
        "owner"
    )
    if list_label is not None:
        queryset = queryset.filter(list=list_label)
    lists = set(queryset.order_by().values_list("list", flat=True).distinct())
    allowed = [label for label in lists if may_view_list(user, label)]
    return queryset.filter(list__in=allowed)


def resolve(slug, user):
    """Return the list URL with the saved query for a short URL's slug.

    Raises Http404 for an unknown slug, someone else's private filter or a list the user
    may not view, alike, so the answer never reveals that a filter exists.
    """
    saved_filter = visible(user).filter(slug=slug).first()
    if saved_filter is None:
        raise Http404
    return list_url(saved_filter)


def list_url(saved_filter):
    """Return the admin list URL with the saved query."""
    base = changelist_url(saved_filter.list)
    return f"{base}?{saved_filter.query}" if saved_filter.query else base


def url(saved_filter):
    """Return the stable short URL of a saved filter (it never depends on the name)."""
    return reverse("saved_filter", args=[saved_filter.slug])
