"""The one Stripe API chokepoint for Kanri's own calls (dj-stripe keeps its global client).

Every workflow step that talks to Stripe goes through `request()`, and every Stripe error
is classified in `classify()`.
"""

from functools import cache

import stripe
from django.conf import settings

from integrations.base import ActionError

# Seconds to wait for Stripe; its p99 is well under this, and a worker must not hang.
TIMEOUT = 20

# Retrying these is safe and may succeed; every other Stripe error is permanent (closed
# by default). Writes are retried with the same idempotency key, so Stripe replays the
# first result rather than acting twice. https://docs.stripe.com/error-handling
TRANSIENT_ERRORS = (stripe.APIConnectionError, stripe.RateLimitError)
TRANSIENT_CODES = {"lock_timeout", "rate_limit"}


@cache
def get_client():
    """Return a StripeClient for the configured key and API host, built once per process.

    Network retries are off: the workflow runner decides when a call is retried.
    """
    base = getattr(settings, "STRIPE_API_HOST", None)
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base} if base else None,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
    )


def classify(error):
    """Return the ActionError for a Stripe SDK error."""
    status = getattr(error, "http_status", None)
    code = getattr(error, "code", None)
    message = getattr(error, "user_message", None) or str(error) or type(error).__name__
    text = f"Stripe {status or 'connection'} {type(error).__name__}"
    text += f" ({code}): {message}" if code else f": {message}"
    transient = (
        isinstance(error, TRANSIENT_ERRORS)
        or code in TRANSIENT_CODES
        or (isinstance(error, stripe.APIError) and (status is None or status >= 500))
    )
    retry_after = None
    headers = getattr(error, "headers", None) or {}
    if transient and headers.get("Retry-After", "").isdigit():
        retry_after = int(headers["Retry-After"])
    return ActionError(text, permanent=not transient, retry_after=retry_after)


def request(method, path, params=None, idempotency_key=None):
    """Call the Stripe API; return the response object as a dict, or raise ActionError."""
    options = {"idempotency_key": idempotency_key} if idempotency_key else {}
    try:
        response = get_client().raw_request(method, path, **(params or {}), **options)
    except stripe.StripeError as e:
        raise classify(e) from e
    return response.data


def mirrored_customer(customer_id):
    """Return a customer as Kanri's mirror (dj-stripe) last stored it, or a stand-in.

    Recording dry-runs read nothing from Stripe; the mirror's copy is what a real run
    would most likely find (email, preferred locales), so the dry-run says the same.
    """
    from djstripe.models import Customer

    stored = Customer.objects.filter(id=customer_id).values_list("stripe_data", flat=True).first()
    return stored or {"id": customer_id, "email": f"<email of {customer_id}>"}
