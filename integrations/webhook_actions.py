"""Post signed JSON to a receiver's URL; the webhook's errors are classified here and nowhere else.

Requests go through requests-hardened, which resolves the host once, refuses loopback,
private, link-local, CG-NAT and cloud-metadata addresses (169.254.169.254, fd00:ec2::254,
100.100.100.200 …) and connects to the very address it checked, so a DNS answer cannot
change between the check and the connection. It follows no redirects: this module follows
up to MAX_REDIRECTS itself, each hop through the same check.

The receiver verifies each request with the `Kanri-Signature` header, Stripe's scheme:
`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with
KANRI_WEBHOOK_SIGNING_SECRET>`; `verify_signature` below is the reference check. Every
attempt of a step carries the same `Kanri-Idempotency-Key`, so a receiver can recognise
a request sent again.

A POST is not idempotent: `deduplicates` stays False, so a worker that dies mid-send
leaves the step "outcome unknown" for a person to decide, never resent silently.
"""

import hashlib
import hmac
import json
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress

from integrations.base import Action, ActionError

SIGNATURE_HEADER = "Kanri-Signature"
IDEMPOTENCY_HEADER = "Kanri-Idempotency-Key"
USER_AGENT = "Kanri-Webhook/1"
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept a timestamp for
MAX_REDIRECTS = 3
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# Response headers worth keeping in the audit; the rest (cookies, tokens) are not kept.
SAFE_HEADERS = ("content-type", "content-length", "retry-after", "date", "x-request-id")
# A receiver cannot park a run for days with a huge Retry-After.
MAX_RETRY_AFTER = 3600
MAX_URL_LENGTH = 2048


# ---------------------------------------------------------------- the signature


def sign(body, secret, timestamp):
    """Return the `Kanri-Signature` value for `body` (bytes) sent at `timestamp`."""
    signed = f"{int(timestamp)}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={digest}"


def verify_signature(header, body, secret, tolerance=SIGNATURE_TOLERANCE, now=None):
    """Return whether `header` signs `body` (bytes) with `secret` within `tolerance` s.

    What a receiver does: split the header on "," into t= and v1= items, recompute the
    HMAC over "<t>.<body>", compare in constant time, and refuse old timestamps (replays).
    """
    items = {}
    for part in str(header or "").split(","):
        key, _sep, value = part.strip().partition("=")
        items.setdefault(key, []).append(value)
    try:
        timestamp = int(items["t"][0])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(body, secret, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, given) for given in items.get("v1", []))


def encode(payload):
    """Return the exact bytes sent for a payload: compact JSON, Japanese kept as UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------- where it may go


def http_allowed():
    # Plain http only for local development: in production every receiver is https.
    return settings.DEBUG and settings.KANRI_WEBHOOK_ALLOW_HTTP


def loopback_allowed(port):
    """Return whether a loopback receiver on `port` may be reached: development and the
    test suite only (KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS is ignored with DEBUG off)."""
    return bool(settings.DEBUG) and port in settings.KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS


def url_problem(url):
    """Return why `url` may not be posted to (before resolving it), or None."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        return "not a URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "not an http(s) URL"
    if parts.scheme == "http" and not http_allowed():
        return "https is required"
    if parts.username or parts.password:
        # Credentials in a URL would show on every page and in every audit row.
        return "a URL may not carry a user name or password"
    return None


def _port(url):
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def session(allow_loopback=False):
    """Return a session that checks every address it connects to and follows no redirect."""
    web = HTTPSession(
        Config(
            ip_filter_enable=True,
            ip_filter_allow_loopback_ips=allow_loopback,
            never_redirect=True,
            default_timeout=timeouts(),
            user_agent_override=USER_AGENT,
        )
    )
    # No proxy, netrc or CA bundle from the environment: a proxy would be connected to
    # instead of the address the filter checked.
    web.trust_env = False
    return web


def timeouts():
    return (settings.KANRI_WEBHOOK_CONNECT_TIMEOUT, settings.KANRI_WEBHOOK_READ_TIMEOUT)


# ---------------------------------------------------------------- errors

# (name, exception classes, permanent, why) — the first match wins, so subclasses come
# before their bases (ConnectTimeout and SSLError are ConnectionErrors). Anything else
# requests raises is permanent: closed by default. A read timeout is "outcome unknown"
# (UNKNOWN_OUTCOME): the receiver had the request and may have acted on it.
UNKNOWN_OUTCOME = {"read_timeout"}
REQUEST_ERRORS = (
    ("blocked_address", (InvalidIPAddress,), True, "the address is not a public one"),
    ("connect_timeout", (requests.ConnectTimeout,), False, "no connection in time"),
    ("read_timeout", (requests.ReadTimeout,), False, "no answer in time"),
    ("tls", (requests.exceptions.SSLError,), True, "the TLS certificate was refused"),
    (
        "invalid_url",
        (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema),
        True,
        "not a URL",
    ),
    ("unreachable", (requests.ConnectionError,), False, "the receiver was not reached"),
)


def retry_after(value):
    """Return Retry-After (seconds or an HTTP date) as whole seconds, capped, or None."""
    value = str(value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(int(when.timestamp() - time.time()), 0), MAX_RETRY_AFTER)


def classify(error):
    """Return the ActionError for an exception raised while posting."""
    for name, classes, permanent, why in REQUEST_ERRORS:
        if isinstance(error, classes):
            return ActionError(
                f"Webhook {name}: {why} ({error})",
                permanent=permanent,
                unknown=name in UNKNOWN_OUTCOME,
            )
    return ActionError(f"Webhook failed: {type(error).__name__}: {error}", permanent=True)


def classify_status(status, headers, excerpt):
    """Return the ActionError for a non-2xx answer: 408, 429 and 5xx are worth retrying
    (after Retry-After when given), every other status is permanent."""
    transient = status in (408, 429) or status >= 500
    return ActionError(
        f"Webhook answered HTTP {status}: {excerpt[:200]}",
        permanent=not transient,
        retry_after=retry_after(headers.get("Retry-After")) if transient else None,
    )


def read_capped(response, limit, deadline):
    """Return (text, truncated): at most `limit` bytes of the body, read before `deadline`
    (a receiver dripping bytes cannot hold the worker)."""
    data = b""
    truncated = False
    try:
        for chunk in response.iter_content(chunk_size=1024):
            data += chunk
            if len(data) > limit or time.monotonic() > deadline:
                truncated = True
                break
    except requests.RequestException:
        # The status is what the receiver decided; a body cut short does not change it.
        truncated = True
    return data[:limit].decode("utf-8", errors="replace"), truncated


# ---------------------------------------------------------------- the action


class PostWebhookForm(forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=MAX_URL_LENGTH,
        help_text=_(
            "The receiver's https address. Each request is JSON with the header "
            'Kanri-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed '
            "with KANRI_WEBHOOK_SIGNING_SECRET>; refuse it when the signature differs or "
            "t is more than 5 minutes old. Kanri-Idempotency-Key is the same on every "
            "attempt of the step. Private, loopback and cloud-metadata addresses are refused."
        ),
    )
    payload = forms.JSONField(
        required=False,
        label=_("JSON body"),
        help_text=_(
            'A JSON object; its text may use references, e.g. {"charge": '
            '"{{trigger.data.object.id}}", "amount": "{{trigger.data.object.amount}}"}.'
        ),
    )

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if "{{" in url:
            raise ValidationError(_("The URL is fixed: it may not use references."))
        problem = url_problem(url)
        if problem:
            raise ValidationError(_("This URL cannot be used: %(why)s.") % {"why": problem})
        return url

    def clean_payload(self):
        payload = self.cleaned_data["payload"]
        if payload in (None, ""):
            return {}
        if not isinstance(payload, dict):
            raise ValidationError(_("The body must be a JSON object."))
        return payload


class PostWebhook(Action):
    kind = "webhook.post"
    label = _("Webhook: post JSON to a URL")
    provider = "Webhook"
    form_class = PostWebhookForm
    outputs = {"status": _("HTTP status"), "body": _("response body (truncated)")}

    def prepare(self, config, call):
        if not settings.KANRI_WEBHOOK_SIGNING_SECRET:
            raise ActionError(
                "Webhooks are not configured: KANRI_WEBHOOK_SIGNING_SECRET is empty.",
                permanent=True,
            )
        url = config.get("url")
        problem = url_problem(url)
        if problem:
            raise ActionError(f"Webhook URL refused: {problem}.", permanent=True)
        payload = config.get("payload") or {}
        if not isinstance(payload, dict):
            raise ActionError("The webhook body is not a JSON object.", permanent=True)
        # The signature is made at send time (its timestamp is the attempt's), so neither
        # it nor the secret is part of the request kept in the audit.
        return {
            "url": url,
            "headers": {
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: call.idempotency_key,
            },
            "body": payload,
        }

    def send(self, request, call):
        body = encode(request["body"])
        headers = {
            **request["headers"],
            SIGNATURE_HEADER: sign(body, settings.KANRI_WEBHOOK_SIGNING_SECRET, time.time()),
            # A compressed answer could expand far past the cap before it is cut.
            "Accept-Encoding": "identity",
        }
        url, redirects = request["url"], []
        for _hop in range(MAX_REDIRECTS + 1):
            problem = url_problem(url)
            if problem:
                raise ActionError(f"Webhook URL refused: {problem} ({url}).", permanent=True)
            try:
                with session(loopback_allowed(_port(url))) as web:
                    response = web.post(url, data=body, headers=headers, stream=True)
                    with response:
                        location = response.headers.get("Location")
                        if response.status_code in REDIRECT_STATUSES and location:
                            # The same POST goes on (as curl's --post30x does): the body
                            # is the point of a webhook. The next hop is checked again.
                            url = urljoin(url, location)
                            redirects.append({"status": response.status_code, "location": url})
                            continue
                        return self._answer(response, url, redirects)
            except requests.RequestException as e:
                raise classify(e) from e
        raise ActionError(
            f"Webhook redirected more than {MAX_REDIRECTS} times (last to {url}).",
            permanent=True,
        )

    def _answer(self, response, url, redirects):
        deadline = time.monotonic() + settings.KANRI_WEBHOOK_READ_TIMEOUT
        text, truncated = read_capped(response, settings.KANRI_WEBHOOK_MAX_RESPONSE_BYTES, deadline)
        status = response.status_code
        if not 200 <= status < 300:
            raise classify_status(status, response.headers, text)
        return {
            "status": status,
            "url": url,
            "redirects": redirects,
            "headers": {
                name: response.headers[name] for name in SAFE_HEADERS if name in response.headers
            },
            "body": text,
            "truncated": truncated,
        }

    def dry_output(self, request):
        return {"status": 200, "body": f"<body from {self.kind}>"}
