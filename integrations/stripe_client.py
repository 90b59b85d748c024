"""The one Stripe API client Kanri's own code uses (dj-stripe keeps its global one)."""

from functools import cache

import stripe
from django.conf import settings

# Seconds to wait for Stripe; its p99 is well under this, and a worker must not hang.
TIMEOUT = 20


@cache
def get_client():
    """Return a StripeClient for the configured key and API host, built once per process.

    Network retries are off: the workflow runner decides when a call is retried, and a
    retried write always carries the same idempotency key.
    """
    base = getattr(settings, "STRIPE_API_HOST", None)
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base} if base else None,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
    )
