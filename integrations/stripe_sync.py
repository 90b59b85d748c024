"""The dj-stripe mirror: backfill from Stripe's list API, and the sync of webhook events
from their verified payloads (below; stripe_webhooks.py queues and batches them).

Listing goes through Kanri's Stripe chokepoint (integrations/stripe_client.py); each
object is written with dj-stripe's own field mapping (`sync_from_stripe_data`), the same
one its webhook processing uses. Where a run got to is the caller's bookkeeping: this
module knows Stripe and dj-stripe, nothing of workflows.
"""

import contextvars
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone
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


# ------------------------------------------------------------------ the webhook mirror
#
# dj-stripe's Event.process re-fetches each event's object from Stripe, then its customer:
# two GETs and ~35 SQL statements per event, which cannot follow a busy account under
# Stripe's rate limit (100 requests/s live, 25/s in test). The mirror below writes the
# verified payload (`data.object`) with dj-stripe's own field mapping
# (`sync_from_stripe_data`) and asks Stripe only for what the payload lacks.

# The dj-stripe models whose events dj-stripe's handlers sync (djstripe/event_handlers.py),
# found by the payload's `object`. Events of other objects (accounts, external accounts,
# entitlement summaries) keep dj-stripe's own handler.
MIRRORED_MODELS = (
    "Charge",
    "Coupon",
    "Customer",
    "Dispute",
    "File",
    "Invoice",
    "InvoiceItem",
    "PaymentIntent",
    "PaymentMethod",
    "Payout",
    "Price",
    "Product",
    "PromotionCode",
    "Session",
    "SetupIntent",
    "Subscription",
    "SubscriptionSchedule",
    "TaxId",
    "TaxRate",
    "Transfer",
    "VerificationSession",
)

# An unknown related object of these types is fetched from Stripe (once: then it is
# known), as dj-stripe would. Any other unknown relation (a charge's balance transaction,
# a payment intent's new payment method) is left unlinked, its id kept in `stripe_data`:
# fetching those would cost a GET for nearly every event (balance transactions have no
# events of their own). Relations that cannot be null are always fetched.
FETCHED_RELATIONS = ("Customer", "Charge")

_batch = contextvars.ContextVar("kanri_mirror_batch", default=None)
_fetch_allowed = contextvars.ContextVar("kanri_mirror_fetch_allowed", default=True)


class _NotFetched(Exception):
    """A related object the mirror chose not to fetch (see FETCHED_RELATIONS)."""


class StripeDeferred(Exception):
    """Stripe failed earlier in this batch: a sync that needs it waits for a later one,
    while events that need nothing from Stripe go on syncing."""


@dataclass
class _Batch:
    """Per-batch memory: owner accounts by API key, and how many objects Stripe was asked
    for (dj-stripe looks the account of the key up again for every object it maps: seven
    identical SELECTs per payment intent)."""

    owners: dict = field(default_factory=dict)
    fetches: int = 0
    offline: bool = False  # set on a transient Stripe error: no more calls this batch
    failed_fetches: dict = field(default_factory=dict)  # object id -> its prefetch's error


@contextmanager
def batch():
    """Within this block dj-stripe's account lookups are cached and unknown relations
    are fetched only as FETCHED_RELATIONS says. Yields the _Batch."""
    _install_hooks()
    state = _Batch()
    token = _batch.set(state)
    try:
        yield state
    finally:
        _batch.reset(token)


_hooks_installed = False


def _install_hooks():
    """Wrap three dj-stripe 2.11 internals (it offers no seam for either concern); they
    behave exactly as before outside `batch()`."""
    global _hooks_installed
    if _hooks_installed:
        return
    from djstripe.models import Account
    from djstripe.models.base import StripeModel

    owner_for_key = Account.get_or_retrieve_for_api_key.__func__
    to_foreign_key = StripeModel._stripe_object_field_to_foreign_key.__func__
    api_retrieve = StripeModel.api_retrieve

    def cached_owner_for_key(cls, api_key):
        state = _batch.get()
        if state is None:
            return owner_for_key(cls, api_key)
        if api_key not in state.owners:
            state.owners[api_key] = owner_for_key(cls, api_key)
        return state.owners[api_key]

    def chosen_foreign_key(cls, field, manipulated_data, *args, **kwargs):
        if _batch.get() is None:
            return to_foreign_key(cls, field, manipulated_data, *args, **kwargs)
        allowed = (not field.null) or field.related_model.__name__ in FETCHED_RELATIONS
        token = _fetch_allowed.set(allowed)
        try:
            return to_foreign_key(cls, field, manipulated_data, *args, **kwargs)
        except _NotFetched:
            current_ids = kwargs.get("current_ids") or (args[0] if args else None)
            if current_ids is not None:
                current_ids.discard(manipulated_data.get(field.name))
            return None, True, False  # skipped, as dj-stripe skips what it cannot fetch
        finally:
            _fetch_allowed.reset(token)

    def counted_api_retrieve(self, *args, **kwargs):
        state = _batch.get()
        if state is not None:
            if not _fetch_allowed.get():
                raise _NotFetched(self.id)
            if self.id in state.failed_fetches:
                raise state.failed_fetches.pop(self.id)  # asked once already (prefetch)
            if state.offline:
                raise StripeDeferred(self.id)
            state.fetches += 1
        return api_retrieve(self, *args, **kwargs)

    Account.get_or_retrieve_for_api_key = classmethod(cached_owner_for_key)
    StripeModel._stripe_object_field_to_foreign_key = classmethod(chosen_foreign_key)
    StripeModel.api_retrieve = counted_api_retrieve
    _hooks_installed = True


@cache
def _models_by_object():
    from djstripe import models as djstripe_models

    found = {}
    for name in MIRRORED_MODELS:
        model = getattr(djstripe_models, name)
        found[model.stripe_class.OBJECT_NAME] = model
    return found


@dataclass(frozen=True)
class Plan:
    """What one event does to the mirror: "sync" or "delete" `object_id` of `model`,
    "handler" (dj-stripe's own handler), or "record" (the Event row only)."""

    action: str
    model: type | None = None
    object_id: str = ""

    @property
    def guarded(self):
        return self.action in ("sync", "delete")


def plan(event):
    """Return the Plan for an event dict, as dj-stripe's handlers would treat it."""
    from djstripe.models import Event, PaymentMethod, Subscription
    from djstripe.signals import WEBHOOK_SIGNALS

    signal = WEBHOOK_SIGNALS.get(event["type"])
    if signal is None or not signal.has_listeners(Event):
        return Plan("record")
    obj = event["data"]["object"]
    model = _models_by_object().get(obj.get("object"))
    if model is None:
        return Plan("handler")
    if not obj.get("id"):
        return Plan("record")  # e.g. invoice.upcoming: dj-stripe ignores it too
    verb = event["type"].split(".")[-1]
    deleted = verb == "deleted" and model is not Subscription  # a canceled one is kept
    if model is PaymentMethod and event["type"] == "payment_method.detached":
        deleted = obj["id"].startswith("card_")  # Stripe deletes a detached card
    return Plan("delete" if deleted else "sync", model, obj["id"])


def event_key(event):
    """The order of an object's events: `created`, then the event id."""
    return (int(event.get("created") or 0), event["id"])


def coalesce(events):
    """Split events into (to_apply, superseded): of the events for one object only the
    newest is applied; the others are recorded only. Returns plans alongside:
    to_apply is [(event, plan)], superseded is [event]."""
    newest, to_apply, superseded = {}, [], []
    planned = [(e, plan(e)) for e in events]
    for e, p in planned:
        if p.guarded:
            best = newest.get(p.object_id)
            if best is None or event_key(e) > event_key(best[0]):
                newest[p.object_id] = (e, p)
    for e, p in planned:
        if p.guarded and newest[p.object_id][0] is not e:
            superseded.append(e)
        else:
            to_apply.append((e, p))
    return to_apply, superseded


def prefetch(planned, state):
    """Fetch the unknown related objects of a batch's payloads from Stripe at once, a few
    requests in parallel, and write them into the mirror; return how many it fetched.

    `planned` is [(event, plan, api_key)] of the events about to be applied. dj-stripe
    would fetch each unknown relation (FETCHED_RELATIONS) one by one while mapping its
    object: with Stripe answering in 150 ms that is ~7 a second, far behind a busy
    account. Only HTTP runs in the threads (no database); the objects are written here,
    in the caller's transaction, each in its own savepoint.

    It asks in waves of KANRI_MIRROR_FETCHES and stops after a wave with a transient
    error, so an outage costs one wave of calls per batch, not one per object. A fetch
    that failed is not repeated: the event that needs the object meets that same error
    when dj-stripe asks (`counted_api_retrieve`), and records and classifies it as if
    it had been asked then.
    """
    from djstripe.models.base import StripeModel

    if state.offline:
        return 0  # Stripe failed earlier in this batch: nothing is asked of it
    wanted = {}  # (related model, api key) -> ids the payloads name
    for event, p, api_key in planned:
        if event.get("account"):
            continue  # a connected account's object: dj-stripe's own path knows whose
        obj = event["data"]["object"]
        for f in p.model._meta.fields:
            related = f.related_model if f.many_to_one else None
            if related is None or related.__name__ not in FETCHED_RELATIONS:
                continue
            if not issubclass(related, StripeModel) or not isinstance(obj.get(f.name), str):
                continue  # absent, or expanded in the payload (an object, not an id)
            wanted.setdefault((related, api_key), set()).add(obj[f.name])
    jobs = []
    for (model, api_key), ids in wanted.items():
        known = set(model.objects.filter(id__in=ids).values_list("id", flat=True))
        # Read here, not in the threads: dj-stripe looks the key's account up in the
        # database.
        account = model(id="")._get_stripe_account_id(api_key)
        jobs += [(model, object_id, api_key, account) for object_id in sorted(ids - known)]
    if not jobs:
        return 0

    def fetch(job):
        model, object_id, api_key, account = job
        try:
            return model(id=object_id).api_retrieve(api_key=api_key, stripe_account=account)
        except Exception as error:  # classified below, in this thread
            return error

    wave, asked, pool = settings.KANRI_MIRROR_FETCHES, 0, _fetch_pool()
    for start in range(0, len(jobs), wave):
        batch_jobs = jobs[start : start + wave]
        answers = list(pool.map(fetch, batch_jobs))
        asked += len(batch_jobs)
        failing = False
        for (model, object_id, api_key, _), answer in zip(batch_jobs, answers, strict=True):
            if isinstance(answer, stripe.StripeError):
                state.failed_fetches[object_id] = answer
                failing = failing or not classify_failure(answer).permanent
                continue
            if isinstance(answer, Exception):
                continue  # not Stripe's answer: the event's own sync meets it and says so
            try:
                with transaction.atomic():
                    model.sync_from_stripe_data(answer, api_key=api_key)
            except Exception:
                continue  # the event's own sync meets it again, and records why
        if failing:
            state.offline = True  # Stripe is failing: the batch asks it nothing more
            break
    state.fetches += asked
    return asked


_pool = {"pid": None, "executor": None}
_pool_lock = threading.Lock()


def _fetch_pool():
    """This process's fetch threads, started once: each keeps its HTTP session (Stripe's
    client has one per thread), so a batch reuses open connections instead of opening
    a TLS connection per thread, and the process keeps a fixed number of threads.
    Keyed by pid: django-q2 forks its workers."""
    with _pool_lock:
        if _pool["pid"] != os.getpid():
            _pool["pid"] = os.getpid()
            _pool["executor"] = ThreadPoolExecutor(
                max_workers=settings.KANRI_MIRROR_FETCHES, thread_name_prefix="kanri-fetch"
            )
        return _pool["executor"]


def event_row(event, api_key):
    """An unsaved dj-stripe Event for an event dict, mapped by dj-stripe."""
    from djstripe.models import Event

    return Event(**Event._stripe_object_to_record(event, api_key=api_key))


def apply(event, p, api_key):
    """Write one event's object into the mirror as its Plan says (inside a savepoint the
    caller holds). Raises whatever dj-stripe or Stripe raise."""
    from djstripe.event_handlers import update_customer_helper
    from djstripe.models import Customer, Event
    from djstripe.settings import djstripe_settings

    if p.action == "handler":
        Event.process(event, api_key=api_key)  # dj-stripe's own path, with its fetches
        return
    if p.action == "record":
        return
    obj = event["data"]["object"]
    if p.action == "delete":
        if p.model is Customer:
            # dj-stripe's purge() would DELETE the customer at Stripe, which has happened
            # already; only the local part is done here.
            row = Customer.objects.filter(id=p.object_id).first()
            if row is not None:
                row.subscriber = None
                row.stripe_data["default_source"] = None
                row.date_purged = timezone.now()
                row.save()
        else:
            p.model.objects.filter(id=p.object_id).delete()
        return
    # dj-stripe walks nested lists with auto_paging_iter, so it needs the SDK's objects.
    data = stripe_client.get_client().deserialize(obj, api_mode="V1")
    p.model.sync_from_stripe_data(data, api_key=api_key)
    if p.model is Customer:
        update_customer_helper(
            obj.get("metadata") or {}, p.object_id, djstripe_settings.SUBSCRIBER_CUSTOMER_KEY
        )


@dataclass(frozen=True)
class Failure:
    """How a sync failed: `kind` and `code` as SyncProblem stores them, the error's own
    text as `detail`, and Stripe's Retry-After if it sent one."""

    kind: str
    code: str
    detail: str
    retry_after: int | None = None

    @property
    def permanent(self):
        return self.kind == "permanent"


def classify_failure(error):
    """Return the Failure for an exception raised while syncing an event.

    Stripe's errors are classified by `stripe_client.classify` (429, 5xx and connection
    errors are transient); a 404 means the object is gone. A database error is
    transient, except a value the column cannot hold. Anything else came out of
    dj-stripe's mapping of the payload: a shape newer than its models (e.g. a discount
    whose coupon moved to `source.coupon`), which no retry can fix.
    """
    from django.db import DatabaseError, DataError

    if isinstance(error, stripe.StripeError):
        classified = stripe_client.classify(error)
        if not classified.permanent:
            limited = isinstance(error, stripe.RateLimitError) or error.http_status == 429
            code = "rate_limited" if limited else "stripe_unavailable"
            return Failure("transient", code, classified.message, classified.retry_after)
        missing = error.code == "resource_missing" or error.http_status == 404
        code = "resource_missing" if missing else "stripe_refused"
        return Failure("permanent", code, classified.message)
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, DatabaseError) and not isinstance(error, DataError):
        return Failure("transient", "database", detail)  # a lost connection, a lock, a race
    return Failure("permanent", "unmappable", detail)
