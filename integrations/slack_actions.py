"""Post to Slack with slack-sdk; Slack's errors are classified here and nowhere else."""

import socket

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from integrations.base import Action, ActionError
from integrations.connections import slack_token
from integrations.fields import TemplateField

# Errors worth retrying; every other Slack error (channel_not_found, not_in_channel,
# invalid_auth, is_archived, msg_too_long, …) is permanent: closed by default.
# https://api.slack.com/methods/chat.postMessage#errors
TRANSIENT_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
}

MENTIONS = {"": "", "here": "<!here>", "channel": "<!channel>"}


def escape(value):
    """Escape Slack's control characters in data, so "<!channel>" in a customer's name
    shows as text instead of notifying everyone.
    https://api.slack.com/reference/surfaces/formatting#escaping"""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def classify(error):
    """Return the ActionError for a slack-sdk error."""
    if isinstance(error, SlackApiError):
        status = error.response.status_code
        code = error.response.get("error") or f"HTTP {status}"
        transient = code in TRANSIENT_ERRORS or status == 429 or status >= 500
        retry_after = error.response.headers.get("Retry-After")
        return ActionError(
            f"Slack {code}",
            permanent=not transient,
            retry_after=int(retry_after) if str(retry_after or "").isdigit() else None,
        )
    if _not_reached(error):
        return ActionError(f"Slack unreachable: {error}", permanent=False)
    # A timeout or a dropped connection after the request went out: Slack may have posted.
    return ActionError(f"Slack did not answer: {error}", permanent=False, unknown=True)


def _not_reached(error):
    """True if the error proves the request never reached Slack (refused, DNS failure)."""
    reason = getattr(error, "reason", error)  # urllib wraps socket errors in URLError
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def client():
    # No retry handlers: chat.postMessage is not idempotent, and the runner owns retries.
    # The token saved on the Connections page, else SLACK_BOT_TOKEN: no restart needed.
    web = WebClient(token=slack_token(), base_url=settings.SLACK_API_URL, timeout=10)
    web.retry_handlers = []
    return web


class PostMessageForm(forms.Form):
    channel = forms.CharField(help_text=_("Channel id (C…) or name (#ops)."))
    text = TemplateField(widget=forms.Textarea, help_text=_("Fallback text; may use references."))
    blocks = forms.JSONField(required=False, help_text=_("Optional Block Kit blocks (a list)."))
    mention = forms.ChoiceField(
        required=False,
        choices=[("", _("(nobody)")), ("here", "@here"), ("channel", "@channel")],
    )
    users = forms.CharField(required=False, help_text=_("User ids to mention, comma-separated."))

    def clean_blocks(self):
        blocks = self.cleaned_data["blocks"]
        if blocks not in (None, "") and not (
            isinstance(blocks, list) and all(isinstance(b, dict) for b in blocks)
        ):
            raise ValidationError(_("Blocks must be a list of Block Kit objects."))
        return blocks


class PostMessage(Action):
    kind = "slack.post_message"
    label = _("Slack: post a message")
    provider = "Slack"
    form_class = PostMessageForm
    outputs = {"channel": _("channel id"), "ts": _("message timestamp")}
    escape = staticmethod(escape)

    def prepare(self, config, call):
        if not slack_token():
            raise ActionError("Slack is not configured: SLACK_BOT_TOKEN is empty.", permanent=True)
        mentions = [MENTIONS.get(config.get("mention") or "", "")]
        users = [u.strip() for u in str(config.get("users") or "").split(",") if u.strip()]
        mentions += [f"<@{escape(u)}>" for u in users]
        prefix = " ".join(m for m in mentions if m)
        text = str(config.get("text") or "")
        request = {"channel": config["channel"], "text": f"{prefix} {text}" if prefix else text}
        if config.get("blocks"):
            request["blocks"] = config["blocks"]
        return request

    def send(self, request, call):
        if not request.get("channel"):
            raise ActionError("No Slack channel to post to.", permanent=True)
        try:
            response = client().chat_postMessage(**request)
        except SlackClientError as e:
            raise classify(e) from e
        except OSError as e:
            raise classify(e) from e
        return {"channel": response.get("channel"), "ts": response.get("ts")}
