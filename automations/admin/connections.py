"""The Connections page: is Slack's token accepted (`auth.test`), which Stripe account and
mode does the key reach (`GET /v1/account`), and a form to save Slack's token without a
restart. Beside it, the messages the local Slack stand-in received, for trying Kanri
without a Slack workspace.

Only superusers and holders of "Can check and configure connections" see them. A saved
token is never shown back: its hint (`xoxb-…abcd`) is.
"""

from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations import audit
from automations.redaction import redact
from integrations import connections
from integrations.connections import Connection
from integrations.devstack.slack_api import received_messages, stand_in_url

PERMISSION = "integrations.manage_connections"

# Slack's error codes for auth.test, in words. https://api.slack.com/methods/auth.test#errors
SLACK_ERRORS = {
    "not_configured": _("No token is set."),
    "unreachable": _("Slack could not be reached."),
    "invalid_auth": _("Slack does not accept this token."),
    "not_authed": _("No token was sent."),
    "account_inactive": _("The token's user or workspace is deactivated."),
    "token_revoked": _("The token has been revoked."),
    "token_expired": _("The token has expired."),
}
MODES = {"test": _("test mode"), "live": _("live mode"), "unknown": _("unknown mode")}
KINDS = {"secret": _("secret key"), "restricted": _("restricted key"), "unknown": _("key")}
SOURCES = {
    "database": _("saved on this page"),
    "environment": _("SLACK_BOT_TOKEN (environment)"),
    "": _("not set"),
}


def slack_error(code):
    return str(SLACK_ERRORS.get(code, _("Slack answered “%(code)s”."))) % {"code": code}


class SlackTokenForm(forms.Form):
    token = forms.CharField(
        label=_("Slack bot token"),
        required=False,
        strip=True,
        # Never rendered back into the page, not even after an error.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("A bot token (xoxb-…). It is checked with Slack before it is saved."),
    )
    remove = forms.BooleanField(
        label=_("Remove the saved token (use SLACK_BOT_TOKEN from the environment)"),
        required=False,
    )

    def clean(self):
        data = super().clean()
        token, remove = data.get("token"), data.get("remove")
        if token and remove:
            raise forms.ValidationError(_("Either save a token or remove it, not both."))
        if not token and not remove:
            raise forms.ValidationError(_("Type a token to save, or tick “Remove”."))
        if token:
            if not token.startswith("xox"):
                self.add_error("token", _("A Slack token starts with “xox” (a bot token: xoxb-…)."))
                return data
            result = connections.check_slack(token)
            if not result["ok"]:
                self.add_error(
                    "token",
                    _("Not saved: %(reason)s") % {"reason": slack_error(result["error"])},
                )
            data["check"] = result
        return data


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    """The model's list is the Connections page; rows are only written through its form."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.has_perm(PERMISSION)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "slack-messages/",
                view(self.slack_messages_view),
                name="integrations_connection_slack_messages",
            ),
            path("", view(self.changelist_view), name="integrations_connection_changelist"),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_module_permission(request):
            raise PermissionDenied
        form = SlackTokenForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            self.save_slack(request, form.cleaned_data)
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Connections"),
            "opts": self.model._meta,
            "form": form,
            "slack": self.slack_status(),
            "stripe": self.stripe_status(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/automations/connections.html", context)

    def save_slack(self, request, data):
        if data.get("remove"):
            saved = Connection.objects.filter(provider=Connection.Provider.SLACK).first()
            if saved:
                audit.log(request.user, saved, "", DELETION)
                saved.delete()
            messages.success(request, _t("The saved Slack token was removed."))
            return
        existed = Connection.objects.filter(provider=Connection.Provider.SLACK).exists()
        saved = Connection.save_token(Connection.Provider.SLACK, data["token"], request.user)
        flag = CHANGE if existed else ADDITION
        audit.log(request.user, saved, [{"changed": {"fields": ["token"]}}], flag)
        check = data["check"]
        messages.success(
            request,
            _t("Saved the Slack token %(hint)s: workspace “%(team)s”, as “%(user)s”.")
            % {"hint": saved.hint, "team": check["team"], "user": check["user"]},
        )

    def slack_status(self):
        from django.conf import settings

        result = connections.check_slack()
        source = connections.slack_source()
        return {
            "ok": result["ok"],
            "reason": "" if result["ok"] else slack_error(result["error"]),
            "team": result.get("team", ""),
            "user": result.get("user", ""),
            "url": result.get("url", ""),
            "source": str(SOURCES[source]),
            "hint": connections.hint(connections.slack_token()),
            "api_url": settings.SLACK_API_URL,
            "stand_in": bool(stand_in_url(settings.SLACK_API_URL)),
            "messages_url": reverse("admin:integrations_connection_slack_messages"),
        }

    def stripe_status(self):
        mode = connections.stripe_mode()
        result = connections.check_stripe()
        return {
            "ok": result["ok"],
            "reason": redact(result["error"]),
            "account": result.get("account", ""),
            "name": result.get("name", ""),
            "country": result.get("country", ""),
            "charges_enabled": result.get("charges_enabled"),
            "mode": str(MODES[mode["mode"]]),
            "live": mode["mode"] == "live",
            "kind": str(KINDS[mode["kind"]]),
            "hint": mode["hint"],
        }

    def slack_messages_view(self, request):
        """List what the local Slack stand-in received, newest first."""
        from django.conf import settings

        if not self.has_module_permission(request):
            raise PermissionDenied
        url = stand_in_url(settings.SLACK_API_URL)
        rows, error = [], ""
        if url:
            try:
                received = received_messages(url)
            except (OSError, ValueError, KeyError) as e:
                error = _t("The Slack stand-in did not answer at %(url)s (%(error)s).") % {
                    "url": url,
                    "error": e,
                }
            else:
                rows = [
                    {
                        "channel": m.get("channel") or "",
                        "text": m.get("text") or "",
                        "ts": m.get("ts") or "",
                        "received_at": datetime.fromtimestamp(m["received_at"], UTC),
                    }
                    for m in reversed(received)
                ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Messages the Slack stand-in received"),
            "opts": self.model._meta,
            "stand_in": bool(url),
            "api_url": settings.SLACK_API_URL,
            "rows": rows,
            "error": error,
            "connections_url": reverse("admin:integrations_connection_changelist"),
        }
        return TemplateResponse(
            request, "admin/automations/connections_slack_messages.html", context
        )
