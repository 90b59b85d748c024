"""Backfill the dj-stripe mirror from Stripe's list API, one page at a time.

Listing goes through Kanri's Stripe chokepoint (integrations/stripe_client.py); each
object is written with dj-stripe's own field mapping (`sync_from_stripe_data`), the same
one its webhook processing uses. Where a run got to is the caller's bookkeeping: this
module knows Stripe and dj-stripe, nothing of workflows.
"""

import time
from dataclasses import dataclass

import stripe
from django.db import transaction
from django.utils.module_loading import import_string

from integrations import stripe_client
from integrations.base import ActionError

# Stripe's largest page. https://docs.stripe.com/api/pagination
PAGE_SIZE = 100

# A 429 without Retry-After waits 1, 2, 4, … seconds, never more than the cap; after
# this many 429s in a row for one page the sync stops (the cursor keeps its place).
BACKOFF_BASE = 1
BACKOFF_CAP = 60
MAX_RATE_LIMITED = 8

# The seam tests patch, so nothing really sleeps.
sleep = time.sleep


@dataclass(frozen=True)
class ObjectType:
    name: str
    path: str
    model: str
    # Extra list parameters: Stripe leaves canceled subscriptions out unless asked.
    # https://docs.stripe.com/api/subscriptions/list#list_subscriptions-status
    params: tuple = ()


# In an order where an object's relations are usually synced before it, so dj-stripe
# fetches fewer of them one by one.
TYPES = {
    t.name: t
    for t in (
        ObjectType("product", "/v1/products", "djstripe.models.Product"),
        ObjectType("price", "/v1/prices", "djstripe.models.Price"),
        ObjectType("customer", "/v1/customers", "djstripe.models.Customer"),
        ObjectType("payment_intent", "/v1/payment_intents", "djstripe.models.PaymentIntent"),
        ObjectType("charge", "/v1/charges", "djstripe.models.Charge"),
        ObjectType("refund", "/v1/refunds", "djstripe.models.Refund"),
        ObjectType(
            "subscription",
            "/v1/subscriptions",
            "djstripe.models.Subscription",
            (("status", "all"),),
        ),
        ObjectType("invoice", "/v1/invoices", "djstripe.models.Invoice"),
    )
}


class SyncError(Exception):
    """Listing a page failed (not a rate limit we waited out): the sync cannot go on."""


def object_type(name):
    """Return the ObjectType called `name`, or raise KeyError."""
    return TYPES[name]


def list_page(kind, since=None, starting_after=None, limit=PAGE_SIZE):
    """Return one page of Stripe's list for `kind` (an ObjectType), newest first, as a
    dict {"data": [...], "has_more": bool}.

    A 429 waits (Retry-After if Stripe sent one, else exponential backoff with a cap)
    and asks again; any other error raises SyncError.
    """
    params = {"limit": limit, "created": {"gte": int(since.timestamp()) if since else 0}}
    params.update(kind.params)
    if starting_after:
        params["starting_after"] = starting_after
    for attempt in range(MAX_RATE_LIMITED + 1):
        try:
            return stripe_client.request("get", kind.path, params)
        except ActionError as e:
            if not isinstance(e.__cause__, stripe.RateLimitError):
                raise SyncError(e.message) from e
            if attempt == MAX_RATE_LIMITED:
                raise SyncError(
                    f"Stripe kept answering 429 (rate limited) {attempt + 1} times: {e.message}"
                ) from e
            sleep(
                e.retry_after
                if e.retry_after is not None
                else min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
            )
    raise AssertionError("unreachable")


def sync_object(kind, data):
    """Write one listed object into the mirror; return "created" or "updated".

    Raises whatever dj-stripe raises; the savepoint keeps a failed object from spoiling
    the caller's transaction (PostgreSQL aborts it otherwise).
    """
    model = import_string(kind.model)
    existed = model.objects.filter(id=data["id"]).exists()
    # dj-stripe walks nested lists with auto_paging_iter, so it needs the SDK's objects
    # (as its webhook processing gets them), not the plain dicts a list answer holds.
    obj = stripe_client.get_client().deserialize(data, api_mode="V1")
    with transaction.atomic():
        model.sync_from_stripe_data(obj)
    return "updated" if existed else "created"
