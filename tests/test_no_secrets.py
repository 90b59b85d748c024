"""No page staff can open shows a Stripe secret: every admin page each role can reach,
found by following links from the index (so a new page is covered without listing it
here), with data in every list and the account's keys and webhook secret in the database."""

import html
import re
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings
from djstripe.models import APIKey

from automations import workflows
from automations.admin.stripe import LISTS
from tests import stripe_objects as so
from tests.admin_helpers import staff_user
from tests.builders import create_workflow
from tests.conftest import WEBHOOK_SECRET

RESTRICTED_KEY = "rk_test_" + "7" * 24
# webhook.post's HMAC key: it has no prefix of its own, so it is looked for as it is.
WEBHOOK_SIGNING_SECRET = "kanri-webhook-signing-secret-7f3a9c"
# A Stripe secret by its documented prefix (https://docs.stripe.com/keys), and an
# intent's client secret (it lets anyone confirm the payment).
SECRET = re.compile(
    r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9_]+"
    r"|\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"
)
LINK = re.compile(r"""<a\s[^>]*?href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# Leaving is not a page; the short links to saved filters are redirects by design.
SKIP = ("/admin/logout/",)
LIMIT = 400

THANK = {
    "name": "Thank payers",
    "trigger": {"kind": "manual", "object": "charge"},
    "conditions": [],
    "steps": [
        {
            "name": "tell",
            "kind": "slack.post_message",
            "config": {"channel": "C0OPS", "text": "Paid: {{trigger.data.object.id}}"},
        }
    ],
}


def page_key(path):
    """One page per shape of URL: /admin/djstripe/charge/12/change/ → …/<id>/change/."""
    return re.sub(r"/\d+(?=/)", "/<id>", path)


def crawl(client, start="/admin/"):
    """Follow every same-site admin link from `start`, one URL per page shape.

    Returns {path with query: response}."""
    seen, queue, visited = {page_key(start)}, [start], {}
    while queue and len(visited) < LIMIT:
        target = queue.pop(0)
        response = client.get(target)
        visited[target] = response
        if "text/html" not in response.get("Content-Type", ""):
            continue
        for href in LINK.findall(response.content.decode()):
            parts = urlsplit(urljoin(target, html.unescape(href)))
            if parts.netloc not in ("", "testserver") or not parts.path.startswith("/admin/"):
                continue
            if parts.path in SKIP or page_key(parts.path) in seen:
                continue
            seen.add(page_key(parts.path))
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return visited


@pytest.fixture
def world(db, stripe_account, fake_slack, settings):
    """Data in every list, a manual workflow that ran once, and the account's secrets."""
    settings.KANRI_WEBHOOK_SIGNING_SECRET = WEBHOOK_SIGNING_SECRET
    APIKey.objects.create(
        secret=RESTRICTED_KEY,
        type="restricted",
        livemode=False,
        djstripe_owner_account=stripe_account.djstripe_owner_account,
    )
    rows = so.every_list()
    so.webhook_delivery(valid=False, processed=False, exception="Invalid signature")
    workflow = create_workflow(THANK, status="active")
    workflows.run_on(workflow, [rows["charge"].id])
    # A run whose snapshot holds a payment intent, client secret and all.
    intent_workflow = create_workflow(
        {
            **THANK,
            "name": "Thank intents",
            "trigger": {"kind": "manual", "object": "payment_intent"},
        },
        status="active",
    )
    workflows.run_on(intent_workflow, [rows["paymentintent"].id])
    # A signed outgoing webhook: its editor, preview and versions pages are crawled too.
    create_workflow(
        {
            **THANK,
            "name": "Tell the warehouse",
            "steps": [
                {
                    "name": "hook",
                    "kind": "webhook.post",
                    "config": {
                        "url": "https://warehouse.example.com/kanri",
                        "payload": {"charge": "{{trigger.data.object.id}}"},
                    },
                }
            ],
        },
        status="active",
    )
    return rows


def secrets_in_database():
    return [settings.STRIPE_SECRET_KEY, RESTRICTED_KEY, WEBHOOK_SECRET, WEBHOOK_SIGNING_SECRET]


def assert_no_secret_on(visited):
    problems = []
    for target, response in visited.items():
        body = response.content.decode(errors="replace")
        if response.status_code != 200:
            problems.append(f"{target}: status {response.status_code}")
        found = SECRET.findall(body) + [s for s in secrets_in_database() if s in body]
        if found:
            problems.append(f"{target}: shows {sorted(set(found))}")
    assert problems == []


@pytest.mark.parametrize("role", ["viewer", "editor", "approver"])
def test_no_page_a_kanri_role_can_reach_shows_a_stripe_secret(client, world, role):
    client.force_login(staff_user(role))

    visited = crawl(client)

    assert_no_secret_on(visited)
    shapes = {page_key(urlsplit(target).path) for target in visited}
    for model in LISTS:
        name = model._meta.model_name
        assert f"/admin/djstripe/{name}/" in shapes
        assert f"/admin/djstripe/{name}/<id>/change/" in shapes
    assert {
        "/admin/automations/workflow/",
        "/admin/automations/workflow/<id>/change/",
        "/admin/automations/workflow/inventory/",
        "/admin/automations/run/",
        "/admin/automations/run/<id>/change/",
    } <= shapes


def test_no_dj_stripe_page_a_superuser_reaches_shows_a_stripe_secret(client, world):
    user = staff_user(username="root")
    user.is_superuser = True
    user.save()
    client.force_login(user)

    visited = crawl(client)

    stripe_pages = {t: r for t, r in visited.items() if t.startswith("/admin/djstripe/")}
    assert_no_secret_on(stripe_pages)
    # dj-stripe's own account page lists every property, the secret key among them.
    assert any(t.startswith("/admin/djstripe/account/") and "/change/" in t for t in stripe_pages)


def test_the_crawler_finds_a_secret_when_a_page_shows_one(client, world, monkeypatch):
    # The check above is only as good as the crawl: a secret on a detail page is caught.
    from automations.admin import stripe

    monkeypatch.setattr(stripe, "redact", lambda text: str(text) + settings.STRIPE_SECRET_KEY)
    client.force_login(staff_user("viewer"))

    with pytest.raises(AssertionError, match="shows"):
        assert_no_secret_on(crawl(client))


def test_dj_stripes_stock_pages_show_the_secret_key_and_kanris_registration_does_not(world):
    # Why Kanri re-registers dj-stripe's remaining admins: the stock account page lists the
    # `default_api_key` property. URLs are bound once, so the views are called directly.
    from django.contrib import admin
    from django.test import RequestFactory
    from djstripe.admin.admin import AccountAdmin
    from djstripe.models import Account

    from automations.admin.stripe import hide_secrets

    user = staff_user(username="root")
    user.is_superuser = True
    user.save()

    def shown(model_admin_class):
        request = RequestFactory().get("/")
        request.user = user
        account = Account.objects.get()
        response = model_admin_class(Account, admin.site).change_view(request, str(account.pk))
        return SECRET.findall(response.render().content.decode())

    assert shown(AccountAdmin) == [settings.STRIPE_SECRET_KEY]
    assert shown(hide_secrets(AccountAdmin)) == []
    assert type(admin.site.get_model_admin(Account)).__mro__[1] is AccountAdmin
