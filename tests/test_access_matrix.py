"""Who may open what: every admin URL and every API endpoint, for each of Kanri's roles.

The URLs are enumerated from the admin site's registry (each ModelAdmin's get_urls), the
admin site's own URLs, the root URLconf and the API router, never listed by hand: a new
view that is missing from the tables below fails `test_every_url_is_in_the_matrix`. Each
request runs in a transaction that is rolled back, so a write one role makes is not seen
by the next request.

Statuses: 200, 403, 404, 405, "login" (a redirect to the admin's login page) or 302 (any
other redirect). `KANRI_DISCOVER_MATRIX=1 pytest tests/test_access_matrix.py -s` prints
what each URL answers, in the tables' shape, to review a new view before adding its row.
"""

import json
import logging
import os
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from automations.models import (
    ApiToken,
    Batch,
    Reconciliation,
    Run,
    RunStep,
    SavedFilter,
    Workflow,
)
from automations.templates import TEMPLATES
from integrations.stripe_events import sign
from tests import stripe_objects as so
from tests.admin_helpers import staff_user
from tests.builders import create_workflow, event

ROLES = ("anonymous", "viewer", "editor", "approver")
DISCOVER = bool(os.environ.get("KANRI_DISCOVER_MATRIX"))

REFUND_BIG_ORDERS = {
    "name": "Refund big orders",
    "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
    "conditions": [],
    "steps": [
        {
            "name": "refund",
            "kind": "stripe.create_refund",
            "config": {
                "charge": "{{trigger.data.object.latest_charge}}",
                "amount": 1000,
                "currency": "{{trigger.data.object.currency}}",
            },
        }
    ],
    "limits": {"per_run": {"usd": 10000}, "per_day": {"usd": 100000}},
}


# ---------------------------------------------------------------- the world


@pytest.fixture
def world(db, stripe_account, settings):
    """One row of everything a URL can name, and a user per role."""
    # Users log in with force_login: a slow password hash buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()  # the API's write throttle counts per user
    # A thousand refusals would each log a warning with its traceback.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    users = {role: staff_user(role) for role in ROLES[1:]}
    rows = so.every_list()
    money = create_workflow(REFUND_BIG_ORDERS, owner=users["approver"], status="active")
    now = timezone.now()
    run = Run.objects.create(
        workflow=money,
        version=money.active_version,
        trigger_key="evt_matrix",
        event_type="payment_intent.succeeded",
        status=Run.Status.FAILED,
        trigger_data={},
    )
    RunStep.objects.create(
        run=run,
        step_name="refund",
        kind="stripe.create_refund",
        attempt=1,
        status=RunStep.Status.FAILED,
        input={},
        error="Stripe card_declined",
        started_at=now,
        finished_at=now,
        idempotency_key=f"kanri-{money.pk}-{run.pk}-refund",
    )
    shared = SavedFilter.objects.create(
        name="Big charges", owner=users["approver"], shared=True, list="djstripe.charge"
    )
    private = SavedFilter.objects.create(
        name="Mine", owner=users["approver"], shared=False, list="djstripe.charge"
    )
    token, _raw = ApiToken.issue(users["approver"], "CI")
    batch = Batch.objects.create(
        workflow=money, token="matrix", object_type="charge", started_by=users["approver"]
    )
    reconciliation = Reconciliation.objects.create(since=now - timedelta(days=1), until=now)
    objects = {
        "automations.workflow": money.pk,
        "automations.workflowversion": money.active_version.pk,
        "automations.run": run.pk,
        "automations.savedfilter": shared.pk,
        "automations.apitoken": token.pk,
        "automations.reconciliation": reconciliation.pk,
        "auth.user": users["viewer"].pk,
        **{f"djstripe.{name}": row.pk for name, row in rows.items()},
    }
    yield {
        "users": users,
        "objects": objects,
        "workflow": money,
        "run": run,
        "shared_filter": shared,
        "private_filter": private,
        "batch": batch,
    }
    logging.getLogger("django.request").setLevel(logging.NOTSET)


def client_for(world, role, **kwargs):
    client = Client(**kwargs)
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


def outcome(response):
    if response.status_code in (301, 302):
        location = response.get("Location", "")
        return "login" if location.startswith("/admin/login/") else 302
    return response.status_code


def request(client, method, url, **kwargs):
    """Send one request whose database writes are rolled back; return its outcome."""
    with transaction.atomic():
        response = getattr(client, method.lower())(url, **kwargs)
        transaction.set_rollback(True)
    return outcome(response)


# ---------------------------------------------------------------- enumerating URLs


def _fill(route, values):
    """Put concrete values into a route's converters and regex groups."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), route)
    return route.replace("^", "").replace("$", "")


def admin_urls(world):
    """Return {key: path} for every URL of every registered ModelAdmin."""
    urls = {}
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        pk = world["objects"].get(label)
        if pk is None:
            row = model._default_manager.order_by("pk").first()
            pk = row.pk if row is not None else 1
        values = {
            "object_id": pk,
            "id": pk,
            "number": 1,
            "action_name": "sync",
            "model_name": model._meta.model_name,
        }
        for pattern in model_admin.get_urls():
            name = pattern.name or ""
            if name.startswith(prefix):
                view = name[len(prefix) :]
            elif not name:
                view = "redirect"  # "<object_id>/" → its change page
            else:
                view = name
            route = str(pattern.pattern)
            urls[f"{label}:{view}"] = (
                f"/admin/{model._meta.app_label}/{model._meta.model_name}/" + _fill(route, values)
            )
    return urls


def site_urls(world):
    """Return {key: path} for the admin site's own URLs (not its models')."""
    urls = {}
    content_type = ContentType.objects.get_for_model(Workflow).pk
    for pattern in admin.site.get_urls():
        if not isinstance(pattern, URLPattern):
            continue
        if pattern.name == "app_list":
            for app_label in (
                re.search(r"\(\?P<app_label>([^)]*)\)", str(pattern.pattern)).group(1).split("|")
            ):
                urls[f"site:app_list:{app_label}"] = f"/admin/{app_label}/"
        elif pattern.name is None:
            urls["site:catch_all"] = "/admin/no-such-page/"
        else:
            values = {"content_type_id": content_type, "object_id": world["workflow"].pk}
            urls[f"site:{pattern.name}"] = "/admin/" + _fill(str(pattern.pattern), values)
    return urls


def _walk(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def other_urls(world):
    """Return {key: path} for the root URLconf's pages outside admin/ and api/."""
    values = {
        "uuid": "00000000-0000-0000-0000-000000000000",
        "slug": world["shared_filter"].slug,
        "batch_id": world["batch"].pk,
    }
    urls = {}
    for route, pattern in _walk(get_resolver()):
        if route.startswith("admin/") and not route.startswith("admin/kanri/"):
            continue  # the admin site's own, above
        if route.startswith("api/") and getattr(pattern.callback, "actions", None):
            continue  # the API's viewsets, below
        if "<drf_format_suffix" in route:
            continue
        urls[f"url:{pattern.name}"] = "/" + _fill(route, values)
    return urls


def api_endpoints(world):
    """Return {"<name> <METHOD>": path} for every method of every viewset route."""
    values = {
        "workflow": world["workflow"].pk,
        "run": world["run"].pk,
        "saved-filter": world["shared_filter"].pk,
        "event-type": "charge.succeeded",
        "action-kind": "webhook.post",
        "template": next(iter(TEMPLATES)),
    }
    endpoints = {}
    for route, pattern in _walk(get_resolver()):
        actions = getattr(pattern.callback, "actions", None)
        if not route.startswith("api/") or not actions or "(?P<format>" in route:
            continue
        # "workflow-dry-run", "saved-filter-rows": the router's basename, then the action.
        basename = next(b for b in values if pattern.name.startswith(b + "-"))
        value = values[basename]
        path = "/" + _fill(route, {"pk": value, "type": value, "kind": value, "key": value})
        for method in actions:
            endpoints[f"{pattern.name} {method.upper()}"] = path
    return endpoints


# ---------------------------------------------------------------- expectations


def hidden_models():
    """Registered models no Kanri role has any permission on: only superusers see them."""
    from django.contrib.auth.models import Permission

    seen = set(
        Permission.objects.filter(group__name__startswith="Kanri ").values_list(
            "content_type__app_label", "content_type__model"
        )
    )
    return {
        model._meta.label_lower
        for model in admin.site._registry
        if (model._meta.app_label, model._meta.model_name) not in seen
        and model._meta.label_lower not in VISIBLE_WITHOUT_PERMISSIONS
    }


# Models whose admin opens to staff without a model permission of the roles.
VISIBLE_WITHOUT_PERMISSIONS = {"automations.apitoken", "integrations.connection"}


def hidden_expectation(label, view):
    """Staff without a permission on the model: refused everywhere. Django's redirect to
    the change page, and the history of an object that does not exist (a redirect to the
    index) are the only exceptions; dj-stripe's sync confirmation is POST only."""
    if view == "redirect" or (view == "history" and not apps.get_model(label).objects.exists()):
        status = 302
    elif view == "djstripe_custom_action":
        status = 405
    else:
        status = 403
    return dict.fromkeys(ROLES, status) | {"anonymous": "login"}


def _row(anonymous, viewer, editor, approver):
    return {"anonymous": anonymous, "viewer": viewer, "editor": editor, "approver": approver}


L = "login"
EXPECTED = {
    "automations.apitoken:add": _row(L, 200, 200, 200),
    "automations.apitoken:change": _row(L, 302, 302, 200),  # someone else's token: not found
    "automations.apitoken:changelist": _row(L, 200, 200, 200),
    "automations.apitoken:delete": _row(L, 403, 403, 403),  # superusers only; staff revoke
    "automations.apitoken:history": _row(L, 302, 302, 200),
    "automations.apitoken:redirect": _row(L, 302, 302, 302),
    "automations.reconciliation:add": _row(L, 403, 403, 403),
    "automations.reconciliation:change": _row(L, 200, 200, 200),
    "automations.reconciliation:changelist": _row(L, 200, 200, 200),
    "automations.reconciliation:delete": _row(L, 403, 403, 403),
    "automations.reconciliation:history": _row(L, 200, 200, 200),
    "automations.reconciliation:redirect": _row(L, 302, 302, 302),
    "automations.run:add": _row(L, 403, 403, 403),
    "automations.run:approve": _row(L, 403, 403, 403),
    "automations.run:change": _row(L, 200, 200, 200),
    "automations.run:changelist": _row(L, 200, 200, 200),
    "automations.run:decide": _row(L, 403, 403, 403),
    "automations.run:delete": _row(L, 403, 403, 403),  # the audit
    "automations.run:history": _row(L, 200, 200, 200),
    "automations.run:redirect": _row(L, 302, 302, 302),
    "automations.run:save_filter": _row(L, 405, 405, 405),
    "automations.savedfilter:add": _row(L, 403, 403, 403),
    "automations.savedfilter:change": _row(L, 200, 200, 200),
    "automations.savedfilter:changelist": _row(L, 200, 200, 200),
    "automations.savedfilter:delete": _row(L, 403, 403, 200),  # the owner
    "automations.savedfilter:history": _row(L, 200, 200, 200),
    "automations.savedfilter:redirect": _row(L, 302, 302, 302),
    "automations.workflow:activate": _row(L, 403, 403, 200),  # it moves money: approvers only
    "automations.workflow:add": _row(L, 403, 200, 200),
    "automations.workflow:backtest": _row(L, 403, 200, 200),
    "automations.workflow:change": _row(L, 200, 200, 200),
    "automations.workflow:changelist": _row(L, 200, 200, 200),
    "automations.workflow:delete": _row(L, 403, 403, 403),  # ever activated: nobody deletes it
    "automations.workflow:gallery": _row(L, 403, 200, 200),
    "automations.workflow:history": _row(L, 200, 200, 200),
    "automations.workflow:inventory": _row(L, 200, 200, 200),
    "automations.workflow:pause": _row(
        L, 403, 403, 302
    ),  # it moves money: approvers only (POST only)
    "automations.workflow:preview": _row(L, 403, 200, 200),
    "automations.workflow:redirect": _row(L, 302, 302, 302),
    "automations.workflow:references": _row(L, 403, 405, 405),
    "automations.workflow:restore": _row(L, 403, 302, 302),
    "automations.workflow:schedule": _row(L, 200, 200, 200),
    "automations.workflow:versions": _row(L, 200, 200, 200),
    "automations.workflowversion:add": _row(L, 403, 403, 403),
    "automations.workflowversion:change": _row(L, 200, 200, 200),
    "automations.workflowversion:changelist": _row(L, 200, 200, 200),
    "automations.workflowversion:delete": _row(L, 403, 403, 403),  # the audit
    "automations.workflowversion:history": _row(L, 200, 200, 200),
    "automations.workflowversion:redirect": _row(L, 302, 302, 302),
    "djstripe.charge:add": _row(L, 403, 403, 403),
    "djstripe.charge:change": _row(L, 200, 200, 200),
    "djstripe.charge:changelist": _row(L, 200, 200, 200),
    "djstripe.charge:delete": _row(L, 403, 403, 403),
    "djstripe.charge:history": _row(L, 200, 200, 200),
    "djstripe.charge:redirect": _row(L, 302, 302, 302),
    "djstripe.charge:save_filter": _row(L, 405, 405, 405),
    "djstripe.customer:add": _row(L, 403, 403, 403),
    "djstripe.customer:change": _row(L, 200, 200, 200),
    "djstripe.customer:changelist": _row(L, 200, 200, 200),
    "djstripe.customer:delete": _row(L, 403, 403, 403),
    "djstripe.customer:history": _row(L, 200, 200, 200),
    "djstripe.customer:redirect": _row(L, 302, 302, 302),
    "djstripe.customer:save_filter": _row(L, 405, 405, 405),
    "djstripe.dispute:add": _row(L, 403, 403, 403),
    "djstripe.dispute:change": _row(L, 200, 200, 200),
    "djstripe.dispute:changelist": _row(L, 200, 200, 200),
    "djstripe.dispute:delete": _row(L, 403, 403, 403),
    "djstripe.dispute:history": _row(L, 200, 200, 200),
    "djstripe.dispute:redirect": _row(L, 302, 302, 302),
    "djstripe.dispute:save_filter": _row(L, 405, 405, 405),
    "djstripe.earlyfraudwarning:add": _row(L, 403, 403, 403),
    "djstripe.earlyfraudwarning:change": _row(L, 200, 200, 200),
    "djstripe.earlyfraudwarning:changelist": _row(L, 200, 200, 200),
    "djstripe.earlyfraudwarning:delete": _row(L, 403, 403, 403),
    "djstripe.earlyfraudwarning:history": _row(L, 200, 200, 200),
    "djstripe.earlyfraudwarning:redirect": _row(L, 302, 302, 302),
    "djstripe.earlyfraudwarning:save_filter": _row(L, 405, 405, 405),
    "djstripe.event:add": _row(L, 403, 403, 403),
    "djstripe.event:change": _row(L, 200, 200, 200),
    "djstripe.event:changelist": _row(L, 200, 200, 200),
    "djstripe.event:delete": _row(L, 403, 403, 403),
    "djstripe.event:history": _row(L, 200, 200, 200),
    "djstripe.event:redirect": _row(L, 302, 302, 302),
    "djstripe.event:save_filter": _row(L, 405, 405, 405),
    "djstripe.invoice:add": _row(L, 403, 403, 403),
    "djstripe.invoice:change": _row(L, 200, 200, 200),
    "djstripe.invoice:changelist": _row(L, 200, 200, 200),
    "djstripe.invoice:delete": _row(L, 403, 403, 403),
    "djstripe.invoice:history": _row(L, 200, 200, 200),
    "djstripe.invoice:redirect": _row(L, 302, 302, 302),
    "djstripe.invoice:save_filter": _row(L, 405, 405, 405),
    "djstripe.paymentintent:add": _row(L, 403, 403, 403),
    "djstripe.paymentintent:change": _row(L, 200, 200, 200),
    "djstripe.paymentintent:changelist": _row(L, 200, 200, 200),
    "djstripe.paymentintent:delete": _row(L, 403, 403, 403),
    "djstripe.paymentintent:history": _row(L, 200, 200, 200),
    "djstripe.paymentintent:redirect": _row(L, 302, 302, 302),
    "djstripe.paymentintent:save_filter": _row(L, 405, 405, 405),
    "djstripe.refund:add": _row(L, 403, 403, 403),
    "djstripe.refund:change": _row(L, 200, 200, 200),
    "djstripe.refund:changelist": _row(L, 200, 200, 200),
    "djstripe.refund:delete": _row(L, 403, 403, 403),
    "djstripe.refund:history": _row(L, 200, 200, 200),
    "djstripe.refund:redirect": _row(L, 302, 302, 302),
    "djstripe.refund:save_filter": _row(L, 405, 405, 405),
    "djstripe.subscription:add": _row(L, 403, 403, 403),
    "djstripe.subscription:change": _row(L, 200, 200, 200),
    "djstripe.subscription:changelist": _row(L, 200, 200, 200),
    "djstripe.subscription:delete": _row(L, 403, 403, 403),
    "djstripe.subscription:history": _row(L, 200, 200, 200),
    "djstripe.subscription:redirect": _row(L, 302, 302, 302),
    "djstripe.subscription:save_filter": _row(L, 405, 405, 405),
    "djstripe.webhookeventtrigger:add": _row(L, 403, 403, 403),
    "djstripe.webhookeventtrigger:change": _row(L, 200, 200, 200),
    "djstripe.webhookeventtrigger:changelist": _row(L, 200, 200, 200),
    "djstripe.webhookeventtrigger:delete": _row(L, 403, 403, 403),
    "djstripe.webhookeventtrigger:history": _row(L, 200, 200, 200),
    "djstripe.webhookeventtrigger:redirect": _row(L, 302, 302, 302),
    "djstripe.webhookeventtrigger:save_filter": _row(L, 405, 405, 405),
    "integrations.connection:changelist": _row(L, 403, 403, 403),
    "integrations.connection:slack_messages": _row(L, 403, 403, 403),
    "integrations.syncproblem:add": _row(L, 403, 403, 403),
    "integrations.syncproblem:change": _row(L, 302, 302, 302),  # no problem recorded: redirected
    "integrations.syncproblem:changelist": _row(L, 200, 200, 200),
    "integrations.syncproblem:delete": _row(L, 403, 403, 403),
    "integrations.syncproblem:history": _row(L, 302, 302, 302),
    "integrations.syncproblem:redirect": _row(L, 302, 302, 302),
    "site:app_list:auth": _row(L, 404, 404, 404),
    "site:app_list:automations": _row(L, 200, 200, 200),
    "site:app_list:django_q": _row(L, 404, 404, 404),
    "site:app_list:djstripe": _row(L, 200, 200, 200),
    "site:app_list:integrations": _row(L, 200, 200, 200),
    "site:autocomplete": _row(L, 403, 403, 403),
    "site:catch_all": _row(L, 404, 404, 404),
    "site:index": _row(L, 200, 200, 200),
    "site:jsi18n": _row(L, 200, 200, 200),
    "site:kanri_preferences": _row(L, 200, 200, 200),
    "site:login": _row(200, 302, 302, 302),
    "site:logout": _row(302, 405, 405, 405),
    "site:password_change": _row(L, 200, 200, 200),
    "site:password_change_done": _row(L, 200, 200, 200),
    "site:view_on_site": _row(L, 404, 404, 404),
    "url:api-docs": _row(200, 200, 200, 200),  # the schema holds no data
    "url:api-root": _row(401, 200, 200, 200),
    "url:api-schema": _row(200, 200, 200, 200),
    "url:csv": _row(L, 200, 200, 200),
    "url:djstripe_webhook_by_uuid": _row(405, 405, 405, 405),  # shadowed by Kanri's receiver
    "url:result": _row(L, 200, 200, 200),
    "url:saved_filter": _row(L, 302, 302, 302),
    "url:stripe_webhook": _row(405, 405, 405, 405),  # POST only
}


def expected_for(key):
    if key in EXPECTED:
        return EXPECTED[key]
    label, _sep, view = key.partition(":")
    if label in hidden_models():
        return hidden_expectation(label, view)
    return None


# ---------------------------------------------------------------- the tests


def observe(world, urls, method="GET", **kwargs):
    seen = {}
    for role in ROLES:
        client = client_for(world, role)
        for key, url in urls.items():
            seen.setdefault(key, {})[role] = request(client, method, url, **kwargs)
    return seen


def test_every_url_is_in_the_matrix_and_answers_as_expected(world):
    urls = {**admin_urls(world), **site_urls(world), **other_urls(world)}

    seen = observe(world, urls)

    if DISCOVER:
        for key in sorted(seen):
            print(f"    {key!r}: _row(*{tuple(seen[key][r] for r in ROLES)!r}),  # {urls[key]}")
    missing = sorted(key for key in seen if expected_for(key) is None)
    assert missing == []
    wrong = {
        key: {"expected": expected_for(key), "seen": seen[key], "url": urls[key]}
        for key in sorted(seen)
        if seen[key] != expected_for(key)
    }
    assert wrong == {}


def test_every_api_endpoint_is_in_the_matrix_and_answers_as_expected(world):
    endpoints = api_endpoints(world)

    seen = {}
    for role in ROLES:
        client = client_for(world, role)
        for key, url in endpoints.items():
            method = key.rsplit(" ", 1)[1]
            body = {} if method != "GET" else None
            kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
            seen.setdefault(key, {})[role] = request(client, method, url, **kwargs)

    if DISCOVER:
        for key in sorted(seen):
            print(
                f"    {key!r}: _row(*{tuple(seen[key][r] for r in ROLES)!r}),  # {endpoints[key]}"
            )
    missing = sorted(key for key in seen if key not in API_EXPECTED)
    assert missing == []
    wrong = {
        key: {"expected": API_EXPECTED[key], "seen": seen[key]}
        for key in sorted(seen)
        if seen[key] != API_EXPECTED[key]
    }
    assert wrong == {}


API_EXPECTED = {
    "action-kind-detail GET": _row(401, 200, 200, 200),
    "action-kind-list GET": _row(401, 200, 200, 200),
    "event-type-detail GET": _row(401, 200, 200, 200),
    "event-type-list GET": _row(401, 200, 200, 200),
    "run-approve POST": _row(401, 403, 403, 403),  # not waiting for approval
    "run-cancel POST": _row(401, 403, 409, 409),  # not waiting
    "run-decide POST": _row(401, 403, 400, 400),
    "run-detail GET": _row(401, 200, 200, 200),
    "run-list GET": _row(401, 200, 200, 200),
    "run-reject POST": _row(401, 403, 403, 403),
    "run-retry POST": _row(401, 403, 200, 200),
    "saved-filter-detail DELETE": _row(401, 403, 403, 204),  # the owner
    "saved-filter-detail GET": _row(401, 200, 200, 200),
    "saved-filter-detail PATCH": _row(401, 403, 403, 200),  # the owner
    "saved-filter-detail PUT": _row(
        401, 400, 400, 400
    ),  # {} is invalid; a valid body is refused below
    "saved-filter-list GET": _row(401, 200, 200, 200),
    "saved-filter-list POST": _row(401, 400, 400, 400),
    "saved-filter-rows GET": _row(401, 200, 200, 200),
    "template-install POST": _row(401, 403, 201, 201),
    "template-list GET": _row(401, 200, 200, 200),
    "workflow-activate POST": _row(401, 403, 403, 200),  # it moves money: approvers only
    "workflow-backtest POST": _row(401, 403, 400, 400),
    "workflow-detail DELETE": _row(401, 403, 409, 409),  # ever activated: nobody deletes it
    "workflow-detail GET": _row(401, 200, 200, 200),
    "workflow-detail PUT": _row(401, 403, 400, 400),
    "workflow-diff GET": _row(401, 200, 200, 200),
    "workflow-dry-run POST": _row(401, 403, 400, 400),
    "workflow-list GET": _row(401, 200, 200, 200),
    "workflow-list POST": _row(401, 403, 400, 400),
    "workflow-pause POST": _row(401, 403, 403, 200),  # it moves money: approvers only
    "workflow-run POST": _row(401, 400, 400, 400),  # {} is invalid; a valid body is refused below
    "workflow-versions GET": _row(401, 200, 200, 200),
}


# ---------------------------------------------------------------- writes


# Admin change forms that some role may save; every other change form refuses a POST from
# every role (the audit, the Stripe mirror, someone else's token).
CHANGE_WRITERS = {
    "automations.workflow": {"editor", "approver"},
    "automations.savedfilter": {"approver"},  # the owner
}


def test_admin_writes_are_refused_to_every_role_that_may_not_make_them(world):
    urls = admin_urls(world)

    wrong = {}
    for role in ROLES:
        client = client_for(world, role)
        for key, url in urls.items():
            label, _sep, view = key.partition(":")
            if view not in ("add", "change", "delete"):
                continue
            shown = expected_for(key)[role]
            if view == "change" and role in CHANGE_WRITERS.get(label, ()):
                continue
            if view != "change" and shown == 200:
                continue  # a role that may add or delete it (checked in the tests below)
            # Refused, or for someone else's object, not found (a redirect to the index).
            want = {L} if role == "anonymous" else {403, 302} if shown == 302 else {403}
            seen = request(client, "POST", url, data={"post": "yes", "name": "Changed"})
            if seen not in want:
                wrong[f"{key} {role}"] = {"seen": seen, "want": want, "url": url}

    assert wrong == {}


MANUAL_REFUND = {
    "name": "Refund selected charges",
    "trigger": {"kind": "manual", "object": "charge"},
    "conditions": [],
    "steps": [
        {
            "name": "refund",
            "kind": "stripe.create_refund",
            "config": {"charge": "{{trigger.data.object.id}}", "amount": 500, "currency": "usd"},
        }
    ],
    "limits": {"per_run": {"usd": 10000}, "per_day": {"usd": 100000}},
}


def test_api_writes_with_a_valid_body_are_refused_to_those_who_may_not(world):
    shared = world["shared_filter"]
    manual = create_workflow(MANUAL_REFUND, status="active")
    charge = so.paid_charge(1500, "usd")

    for role in ("viewer", "editor"):
        client = client_for(world, role)
        assert (
            request(
                client,
                "PUT",
                f"/api/saved-filters/{shared.pk}/",
                data={"name": "Renamed", "shared": False, "query": ""},
                content_type="application/json",
            )
            == 403
        )
        assert (
            request(
                client,
                "POST",
                f"/api/workflows/{manual.pk}/run/",
                data={"object_ids": [charge.id]},
                content_type="application/json",
            )
            == 403
        )
    assert not Run.objects.filter(workflow=manual).exists()
    shared.refresh_from_db()
    assert (shared.name, shared.shared) == ("Big charges", True)


def test_a_private_saved_filter_opens_only_for_its_owner(world):
    slug = world["private_filter"].slug

    seen = {role: request(client_for(world, role), "GET", f"/f/{slug}/") for role in ROLES}

    assert seen == {"anonymous": L, "viewer": 404, "editor": 404, "approver": 302}


def test_dj_stripes_sync_confirmation_is_refused_to_staff_and_runs_only_named_actions(world):
    from django.contrib.auth.models import User

    url = "/admin/djstripe/price/action/_sync_all_instances/price/"
    body = {"_selected_action": "_sync_all_instances"}

    for role in ("viewer", "editor", "approver"):
        assert request(client_for(world, role), "POST", url, data=body) == 403
    boss = User.objects.create_superuser("boss", "boss@example.test", "pw")
    client = Client()
    client.force_login(boss)
    # dj-stripe's view calls the method the URL names: only its two sync actions.
    assert request(client, "POST", "/admin/djstripe/price/action/dispatch/price/", data={}) == 403
    assert (
        request(client, "POST", "/admin/djstripe/price/action/_sync_all_instances/coupon/") == 403
    )
    assert request(client, "GET", url) == 405


# ---------------------------------------------------------------- CSRF


def test_admin_and_api_writes_with_a_session_but_no_csrf_token_are_refused(world):
    workflow = world["workflow"]
    client = client_for(world, "approver", enforce_csrf_checks=True)

    change = client.post(f"/admin/automations/workflow/{workflow.pk}/change/", {"name": "Renamed"})
    pause = client.post(f"/admin/automations/workflow/{workflow.pk}/pause/")
    api = client.post(f"/api/workflows/{workflow.pk}/pause/", content_type="application/json")

    assert change.status_code == 403 and b"CSRF" in change.content
    assert pause.status_code == 403 and b"CSRF" in pause.content
    assert api.status_code == 403 and "CSRF" in api.json()["detail"]
    workflow.refresh_from_db()
    assert (workflow.name, workflow.status) == ("Refund big orders", Workflow.Status.ACTIVE)
    # With the token the browser has, the same request goes through.
    client.get("/admin/")
    token = client.cookies["csrftoken"].value
    done = client.post(
        f"/api/workflows/{workflow.pk}/pause/",
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert done.status_code == 200
    workflow.refresh_from_db()
    assert workflow.status == Workflow.Status.PAUSED


def test_a_bearer_token_needs_no_csrf_token_as_no_browser_sends_it(world):
    _token, raw = ApiToken.issue(world["users"]["approver"], "script")
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        f"/api/workflows/{world['workflow'].pk}/pause/",
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 200


def test_the_csrf_middleware_is_on():
    from django.conf import settings

    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE


# ---------------------------------------------------------------- the audit


@pytest.fixture
def superuser_client(world):
    from django.contrib.auth.models import User

    boss = User.objects.create_superuser("boss", "boss@example.test", "pw")
    client = Client()
    client.force_login(boss)
    return client


def test_not_even_a_superuser_can_edit_or_delete_runs_versions_or_reports(world, superuser_client):
    run, workflow = world["run"], world["workflow"]
    version = workflow.active_version
    reconciliation = Reconciliation.objects.get()
    targets = {
        "run change": f"/admin/automations/run/{run.pk}/change/",
        "run delete": f"/admin/automations/run/{run.pk}/delete/",
        "version change": f"/admin/automations/workflowversion/{version.pk}/change/",
        "version delete": f"/admin/automations/workflowversion/{version.pk}/delete/",
        "report delete": f"/admin/automations/reconciliation/{reconciliation.pk}/delete/",
        "report change": f"/admin/automations/reconciliation/{reconciliation.pk}/change/",
        "workflow delete": f"/admin/automations/workflow/{workflow.pk}/delete/",
    }
    body = {"post": "yes", "status": "succeeded", "error": "", "definition": "{}"}

    seen = {name: superuser_client.post(url, body).status_code for name, url in targets.items()}

    assert seen == dict.fromkeys(targets, 403)
    run.refresh_from_db()
    assert (run.status, run.error) == (Run.Status.FAILED, "")
    assert list(run.steps.values_list("status", flat=True)) == [RunStep.Status.FAILED]
    version.refresh_from_db()
    assert version.definition["steps"][0]["kind"] == "stripe.create_refund"
    assert Reconciliation.objects.filter(pk=reconciliation.pk).exists()
    assert Workflow.objects.filter(pk=workflow.pk).exists()


def test_the_run_list_offers_no_bulk_delete_even_to_a_superuser(world, superuser_client):
    run = world["run"]

    page = superuser_client.get("/admin/automations/run/")
    action = superuser_client.post(
        "/admin/automations/run/",
        {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"},
    )

    assert 'value="delete_selected"' not in page.content.decode()
    assert action.status_code in (200, 302)
    assert Run.objects.filter(pk=run.pk).exists()


def test_steps_approvals_and_the_admin_history_have_no_admin_page_to_edit_them():
    from automations.models import Approval

    for model in (RunStep, Approval, LogEntry):
        assert not admin.site.is_registered(model)


def test_the_api_has_no_way_to_change_or_delete_a_run(world):
    client = client_for(world, "approver")
    url = f"/api/runs/{world['run'].pk}/"

    seen = {
        method: request(client, method, url, data={}, content_type="application/json")
        for method in ("PUT", "PATCH", "DELETE")
    }

    assert seen == {"PUT": 405, "PATCH": 405, "DELETE": 405}


def test_staff_are_deactivated_not_deleted_so_their_admin_history_stays(world, superuser_client):
    from django.contrib.auth.models import User

    editor = world["users"]["editor"]
    LogEntry.objects.log_actions(
        user_id=editor.pk, queryset=[world["workflow"]], action_flag=2, change_message="x"
    )
    entries = LogEntry.objects.filter(user=editor).count()

    page = superuser_client.get(f"/admin/auth/user/{editor.pk}/delete/")
    deleted = superuser_client.post(f"/admin/auth/user/{editor.pk}/delete/", {"post": "yes"})
    bulk = superuser_client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [editor.pk], "post": "yes"},
    )

    assert (page.status_code, deleted.status_code) == (403, 403)
    assert bulk.status_code in (200, 302)
    assert User.objects.filter(pk=editor.pk).exists()
    assert LogEntry.objects.filter(user=editor).count() == entries > 0


# ---------------------------------------------------------------- money: pause and delete


@pytest.fixture
def money_draft(world):
    return create_workflow(
        {**REFUND_BIG_ORDERS, "name": "Refund draft"}, owner=world["users"]["editor"]
    )


@pytest.fixture
def plain_workflow(world):
    return create_workflow(
        {
            **REFUND_BIG_ORDERS,
            "name": "Tell the team",
            "steps": [
                {
                    "name": "tell",
                    "kind": "slack.post_message",
                    "config": {"channel": "C0OPS", "text": "Paid"},
                }
            ],
            "limits": {},
        },
        status="active",
    )


def test_an_editor_can_neither_pause_nor_delete_a_money_moving_workflow_in_the_admin(
    world, money_draft
):
    workflow = world["workflow"]
    client = client_for(world, "editor")

    page = client.get(f"/admin/automations/workflow/{workflow.pk}/change/")
    pause = client.post(f"/admin/automations/workflow/{workflow.pk}/pause/")
    bulk = client.post(
        "/admin/automations/workflow/",
        {"action": "pause_selected", "_selected_action": [workflow.pk]},
        follow=True,
    )
    delete_page = client.get(f"/admin/automations/workflow/{money_draft.pk}/delete/")
    delete = client.post(f"/admin/automations/workflow/{money_draft.pk}/delete/", {"post": "yes"})
    bulk_delete = client.post(
        "/admin/automations/workflow/",
        {"action": "delete_selected", "_selected_action": [money_draft.pk], "post": "yes"},
    )

    assert page.status_code == 200
    assert 'form="kanri-pause"' not in page.content.decode()  # no Pause button offered
    assert pause.status_code == 403
    assert "an approver must pause it" in bulk.content.decode()
    assert (delete_page.status_code, delete.status_code) == (403, 403)
    assert bulk_delete.status_code == 403  # Django's delete_selected asks has_delete_permission
    workflow.refresh_from_db()
    assert workflow.status == Workflow.Status.ACTIVE
    assert Workflow.objects.filter(pk=money_draft.pk).exists()


def test_an_editor_can_neither_pause_nor_delete_a_money_moving_workflow_through_the_api(
    world, money_draft
):
    workflow = world["workflow"]
    client = client_for(world, "editor")

    pause = client.post(f"/api/workflows/{workflow.pk}/pause/", content_type="application/json")
    delete = client.delete(f"/api/workflows/{money_draft.pk}/")

    assert pause.status_code == 403
    assert "an approver must pause it" in pause.json()["detail"]
    assert delete.status_code == 403
    assert "an approver must delete it" in delete.json()["detail"]
    workflow.refresh_from_db()
    assert workflow.status == Workflow.Status.ACTIVE
    assert Workflow.objects.filter(pk=money_draft.pk).exists()


def test_an_approver_pauses_and_deletes_them_and_an_editor_still_pauses_one_without_money(
    world, money_draft, plain_workflow
):
    approver = client_for(world, "approver")
    editor = client_for(world, "editor")

    paused = approver.post(f"/admin/automations/workflow/{world['workflow'].pk}/pause/")
    deleted = approver.delete(f"/api/workflows/{money_draft.pk}/")
    plain = editor.post(
        f"/api/workflows/{plain_workflow.pk}/pause/", content_type="application/json"
    )

    assert (paused.status_code, deleted.status_code, plain.status_code) == (302, 204, 200)
    world["workflow"].refresh_from_db()
    plain_workflow.refresh_from_db()
    assert world["workflow"].status == Workflow.Status.PAUSED
    assert plain_workflow.status == Workflow.Status.PAUSED
    assert not Workflow.objects.filter(pk=money_draft.pk).exists()
    assert LogEntry.objects.filter(change_message="Paused.").count() == 2


# ---------------------------------------------------------------- dj-stripe's debug header


@pytest.mark.parametrize("debug", [False, True])
def test_dj_stripes_secret_override_header_never_bypasses_the_signature_check(
    settings, client, webhook_url, debug
):
    settings.DEBUG = debug
    body = json.dumps(event("charge.refunded", {"id": "ch_forged", "object": "charge"}))

    response = client.post(
        webhook_url,
        data=body,
        content_type="application/json",
        headers={
            "Stripe-Signature": sign(body, "whsec_attacker"),
            "X-Djstripe-Webhook-Secret": "whsec_attacker",
        },
    )

    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid signature")
    assert WebhookEventTrigger.objects.get().valid is False
    assert not Run.objects.exists()


def test_dj_stripes_own_check_takes_the_header_only_with_debug_on(settings, stripe_account):
    """Why Kanri never calls WebhookEventTrigger.validate: with DEBUG on it believes the
    secret the request itself names (it is meant for `stripe listen` forwarding)."""
    body = json.dumps(event("charge.refunded", {"id": "ch_forged", "object": "charge"}))
    delivery = WebhookEventTrigger(
        remote_ip="127.0.0.1",
        headers={
            "Stripe-Signature": sign(body, "whsec_attacker"),
            "X-Djstripe-Webhook-Secret": "whsec_attacker",
        },
        body=body,
        webhook_endpoint=stripe_account,
    )

    settings.DEBUG = False
    refused = delivery.validate(api_key="", secret=stripe_account.secret)
    settings.DEBUG = True
    believed = delivery.validate(api_key="", secret=stripe_account.secret)

    assert (refused, believed) == (False, True)
    assert settings.DJSTRIPE_WEBHOOK_VALIDATION == "verify_signature"


def test_every_url_dj_stripe_routes_to_its_own_webhook_view_reaches_kanris_receiver(
    stripe_account,
):
    from djstripe.views import ProcessWebhookView

    from integrations.stripe_webhooks import receive_webhook

    shadowed = [
        _fill(route, {"uuid": stripe_account.djstripe_uuid})
        for route, pattern in _walk(get_resolver())
        if getattr(pattern.callback, "view_class", None) is ProcessWebhookView
    ]

    assert shadowed  # dj-stripe's URL is still there, for its URL names …
    for path in shadowed:  # … but answered by Kanri's receiver
        assert resolve("/" + path).func is receive_webhook
