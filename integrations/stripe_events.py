"""Build and sign Stripe events the way Stripe sends them (development and tests).

Used by `manage.py trigger_stripe_event` and the test suite, so both exercise the real
webhook URL with real signatures.
"""

import json
import secrets
import time
import urllib.error
import urllib.request

import stripe

# The API version events are rendered in; Kanri reads only fields stable across versions.
API_VERSION = stripe.api_version


def build_event(event_type, obj, *, event_id=None, created=None, livemode=False, previous=None):
    """Return an event dict around `obj` (a plain dict of a Stripe object)."""
    data = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": created or int(time.time()),
        "data": data,
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def sign(payload, secret, timestamp=None):
    """Return the Stripe-Signature header value for `payload` (a str)."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


def post_event(url, event, secret, timeout=10):
    """POST a signed event to a webhook URL; return (status, body)."""
    payload = json.dumps(event)
    request = urllib.request.Request(
        url,
        data=payload.encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload, secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def as_dict(stripe_object):
    """Return a plain dict of an SDK object, as it would appear in an event."""
    return json.loads(str(stripe_object))
