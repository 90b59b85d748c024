"""Connections to the providers: the Slack token saved in the admin, and the checks the
Connections page shows (Slack's `auth.test`, Stripe's `GET /v1/account`).

A token saved here wins over SLACK_BOT_TOKEN from the environment, and takes effect at
once in the process that saved it and within TOKEN_TTL seconds in the others (no
restart). It is written, used and replaced, never shown back:
pages show its hint (`xoxb-…abcd`). It lives in integrations, beside the action that
uses it, because integrations never imports automations.
"""

import time

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from integrations.base import ActionError

# How long a process believes the token it read: each Slack post would otherwise read it
# from the database first.
TOKEN_TTL = 5.0
_token = {"value": None, "read_at": None}  # per process; a stale pair costs one more read


def hint(secret):
    """Return a recognisable, harmless form of a secret: its prefix and last 4 characters."""
    if not secret:
        return ""
    prefix = secret.split("-", 1)[0] + "-" if "-" in secret[:6] else secret[:8]
    return f"{prefix}…{secret[-4:]}"


class Connection(models.Model):
    """A provider's credentials as saved in the admin (one row per provider)."""

    class Provider(models.TextChoices):
        SLACK = "slack", _("Slack")

    provider = models.CharField(
        _("provider"), max_length=20, primary_key=True, choices=Provider.choices
    )
    token = models.TextField(_("token"), editable=False)
    hint = models.CharField(_("hint"), max_length=40, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")
        permissions = [("manage_connections", _("Can check and configure connections"))]

    def __str__(self):
        return f"{self.get_provider_display()} ({self.hint})"

    @classmethod
    def save_token(cls, provider, token, user=None):
        return cls.objects.update_or_create(
            provider=provider,
            defaults={
                "token": token,
                "hint": hint(token),
                "updated_at": timezone.now(),
                "updated_by": user,
            },
        )[0]


def slack_token():
    """Return the Slack bot token to use: the one saved in the admin, else the environment's."""
    read_at = _token["read_at"]
    if read_at is None or time.monotonic() - read_at > TOKEN_TTL:
        saved = Connection.objects.filter(provider=Connection.Provider.SLACK).values_list(
            "token", flat=True
        )
        _token.update(value=saved.first(), read_at=time.monotonic())
    return _token["value"] or settings.SLACK_BOT_TOKEN


def forget_token(**kwargs):
    """Read the token again on next use (this process saved or removed one)."""
    _token["read_at"] = None


post_save.connect(forget_token, sender=Connection, dispatch_uid="kanri-forget-token")
post_delete.connect(forget_token, sender=Connection, dispatch_uid="kanri-forget-token-del")


def slack_source():
    """Return where the Slack token comes from: "database", "environment" or ""."""
    if Connection.objects.filter(provider=Connection.Provider.SLACK).exists():
        return "database"
    return "environment" if settings.SLACK_BOT_TOKEN else ""


def check_slack(token=None, timeout=5):
    """Call Slack's auth.test with `token` (default: the one in use); return a plain dict
    {ok, error, team, user, url}. https://api.slack.com/methods/auth.test"""
    token = slack_token() if token is None else token
    if not token:
        return {"ok": False, "error": "not_configured"}
    web = WebClient(token=token, base_url=settings.SLACK_API_URL, timeout=timeout)
    web.retry_handlers = []
    try:
        answer = web.auth_test()
    except SlackApiError as e:
        return {"ok": False, "error": e.response.get("error") or f"HTTP {e.response.status_code}"}
    except (SlackClientError, OSError):
        return {"ok": False, "error": "unreachable"}
    return {
        "ok": True,
        "error": "",
        "team": answer.get("team") or "",
        "user": answer.get("user") or "",
        "url": answer.get("url") or "",
    }


def stripe_mode(key=None):
    """Return the mode and kind of a Stripe key from its documented prefix.
    https://docs.stripe.com/keys"""
    key = settings.STRIPE_SECRET_KEY if key is None else key
    kind = {"sk": "secret", "rk": "restricted"}.get(key[:2], "unknown")
    mode = "live" if key[3:8] == "live_" else "test" if key[3:8] == "test_" else "unknown"
    return {"mode": mode, "kind": kind, "hint": f"{key[:8]}…{key[-4:]}" if key else ""}


def check_stripe():
    """Fetch the account the Stripe key belongs to; return a plain dict {ok, error,
    account, name, country, charges_enabled}. https://docs.stripe.com/api/accounts/retrieve"""
    from integrations import stripe_client

    try:
        account = stripe_client.request("get", "/v1/account")
    except ActionError as e:
        return {"ok": False, "error": e.message}
    profile = account.get("business_profile") or {}
    dashboard = (account.get("settings") or {}).get("dashboard") or {}
    return {
        "ok": True,
        "error": "",
        "account": account.get("id") or "",
        "name": dashboard.get("display_name") or profile.get("name") or "",
        "country": account.get("country") or "",
        "charges_enabled": bool(account.get("charges_enabled")),
    }
