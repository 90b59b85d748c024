"""Stripe webhook ingestion: verify, record, acknowledge; process in a worker.

Kanri serves dj-stripe's webhook URL (`stripe/webhook/<uuid>/`) with its own view.
dj-stripe's view syncs objects from the Stripe API inside the request (~84 events/s
here, ~16/s when Stripe answers slowly), and even with DJSTRIPE_WEBHOOK_EVENT_CALLBACK it
writes the trigger row twice and hands it to the callback before its final save, which a
worker can race. This view writes the evidence once, fully, and only then enqueues.

https://docs.stripe.com/webhooks#verify-events
"""

import ipaddress
import json
import logging
import math
import re
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import stripe
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, transaction
from django.db.models import Case, CharField, Value, When
from django.dispatch import receiver
from django.http import JsonResponse, UnreadablePostError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger
from djstripe.settings import djstripe_settings

from integrations import stripe_sync
from integrations.models import AppliedEvent, SyncMark, SyncProblem, SyncQueue
from integrations.queue import enqueue
from integrations.signals import stripe_event_received

logger = logging.getLogger(__name__)

SYNC_TASK = "integrations.stripe_webhooks.sync_webhooks"
SYNC_QUEUED = "stripe-sync"
SYNC_BUDGET = 1.0  # seconds a sync batch works before yielding the worker to runs
SYNC_MARK_TTL = 60  # how long "a batch is queued" is believed without a batch finishing
SYNC_BATCH = 100  # deliveries read, coalesced and written together
SYNC_BACKOFF_FIRST = 30  # seconds before a transient failure is retried, doubling …
SYNC_BACKOFF_CAP = 3600  # … up to an hour
SYNC_MAX_AGE_DAYS = 3  # Stripe stops redelivering after three days; so do we


# Stripe's events nest about ten levels deep; anything far deeper is hostile, and would
# break recursive code further on (Django's JSONField encoder, the run context).
MAX_DEPTH = 64
MAX_ID_LENGTH = 255  # Run.trigger_key and dj-stripe's Event.id
# PostgreSQL's text and jsonb cannot hold NUL, and jsonb refuses lone surrogates; the
# json module decodes both from escapes (\u0000, \ud800) without complaint.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Stripe signs with a Content-Type of "application/json; charset=utf-8".
JSON_CHARSETS = ("utf-8", "utf8")


class InvalidWebhook(Exception):
    """A request that is not a verified, well-formed Stripe event."""


def _error(status, message):
    return JsonResponse({"error": message}, status=status)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text):
    number = float(text)
    if not math.isfinite(number):  # 1e400: PostgreSQL's jsonb has no infinity
        raise ValueError(f"{text[:20]} is out of range")
    return number


def _check_tree(event):
    """Raise InvalidWebhook if the parsed event nests deeper than MAX_DEPTH or holds text
    that the database cannot store. Iterative, so deep input cannot exhaust the stack."""
    stack = [(event, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidWebhook(f"Malformed JSON: nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and _UNSTORABLE.search(key):
                raise InvalidWebhook("Malformed JSON: a NUL or lone surrogate character")
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif isinstance(item, str) and _UNSTORABLE.search(item):
                raise InvalidWebhook("Malformed JSON: a NUL or lone surrogate character")


def parse_event(body):
    """Return the event dict from a verified body, or raise InvalidWebhook."""
    # No well-kept JSON library here caps nesting (orjson's fixed 1,024 is deeper than
    # the stdlib can take). CPython's C decoder raises RecursionError, not a crash, at
    # about 1,000 levels; that is refused here, and whatever parses is walked once,
    # iteratively, to cap depth at MAX_DEPTH before any recursive code sees it.
    try:
        event = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidWebhook(f"Malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise InvalidWebhook(f"Malformed JSON: {e}") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise InvalidWebhook("Malformed event: the body is not a Stripe event object")
    _check_tree(event)
    missing = [key for key in ("id", "type", "livemode", "data") if key not in event]
    if missing:
        raise InvalidWebhook(f"Malformed event: missing {', '.join(missing)}")
    # Runs are keyed, matched and indexed on these: a list as the type, or an id longer
    # than the key column, must be refused here rather than fail (500) further on.
    for key in ("id", "type"):
        if not isinstance(event[key], str) or not 0 < len(event[key]) <= MAX_ID_LENGTH:
            raise InvalidWebhook(f"Malformed event: {key} is not a short string")
    if not isinstance(event["livemode"], bool):
        raise InvalidWebhook("Malformed event: livemode is not true or false")
    if not isinstance(event["data"], dict) or not isinstance(event["data"].get("object"), dict):
        raise InvalidWebhook("Malformed event: data.object is not an object")
    return event


def _verify(endpoint, body, signature):
    """Return the event dict if `body` is signed by the endpoint's secret."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWebhook("Malformed body: not UTF-8") from None
    try:
        stripe.WebhookSignature.verify_header(
            text, signature, endpoint.secret, endpoint.djstripe_tolerance
        )
    except stripe.SignatureVerificationError as e:
        raise InvalidWebhook(f"Invalid signature: {e.user_message or e}") from None
    return parse_event(text)


def _unsupported_content_type(request):
    """Return why the request's Content-Type is not Stripe's, or None if it is."""
    if request.content_type != "application/json":
        return f"Unsupported content type {request.content_type or 'none'!r}: expected JSON"
    charset = request.content_params.get("charset", "utf-8").lower()
    if charset not in JSON_CHARSETS:
        return f"Unsupported charset {charset!r}: expected utf-8"
    return None


@csrf_exempt
@login_not_required
@transaction.non_atomic_requests
def receive_webhook(request, uuid):
    """Verify a Stripe webhook, record it, queue its processing and answer 200.

    Every request that names a known endpoint and carries a signature header is kept as a
    delivery row, refused ones with valid=False and the reason, and answered with a JSON
    body: a 4xx for anything wrong with the request, never a 500.
    """
    if request.method != "POST":
        # Django's require_POST answers with an empty text body; a JSON one is clearer.
        response = _error(405, "Method not allowed: Stripe POSTs webhooks")
        response["Allow"] = "POST"
        return response
    signature = request.headers.get("Stripe-Signature")
    if not signature:
        # Not stored, like dj-stripe: anyone can post unsigned junk at a public URL.
        return _error(400, "Missing Stripe-Signature header")
    endpoint = endpoints.get(uuid)
    if endpoint is None:
        return _error(404, "Unknown webhook endpoint")

    def refuse(status, message, body=b""):
        # Kept (valid=False) so staff can see forged posts or a rotated secret in the admin.
        _record(request, endpoint, body, valid=False, error=message)
        logger.warning("Rejected Stripe webhook on endpoint %s: %s", endpoint.id, message)
        return _error(status, message)

    # Checked before the body is read, so an oversized request is never buffered. Stripe
    # always sends a Content-Length; without one (chunked), Django would read no body.
    declared = request.META.get("CONTENT_LENGTH")
    if not declared:
        return refuse(411, "Content-Length required")
    try:
        length = int(declared)
    except ValueError:
        length = -1
    if length < 0:
        return refuse(400, "Invalid Content-Length")
    if length > settings.STRIPE_WEBHOOK_MAX_BYTES:
        return refuse(413, f"Body larger than {settings.STRIPE_WEBHOOK_MAX_BYTES} bytes")
    try:
        # read(), not .body: the size was checked above, against Kanri's own limit.
        body = request.read()
    except UnreadablePostError:
        return refuse(400, "Truncated body: the connection closed before Content-Length")
    if len(body) < length:
        return refuse(400, "Truncated body: shorter than its Content-Length", body)
    # Stripe always sends JSON; anything else is not Stripe (or a proxy rewrote it).
    unsupported = _unsupported_content_type(request)
    if unsupported:
        return refuse(415, unsupported, body)
    try:
        event = _verify(endpoint, body, signature)
    except InvalidWebhook as e:
        # The secret may have been rotated (or the endpoint removed) since this process
        # read it: the stored one decides.
        stored = endpoints.reread(uuid)
        if stored is None:
            return _error(404, "Unknown webhook endpoint")
        if (stored.pk, stored.secret) == (endpoint.pk, endpoint.secret):
            return refuse(400, str(e), body)
        endpoint = stored
        try:
            event = _verify(endpoint, body, signature)
        except InvalidWebhook as e:
            return refuse(400, str(e), body)

    try:
        trigger_id = accept(event, lambda **error: _record(request, endpoint, body, **error))
    except Exception:
        # Not the request's fault (the database failed): Stripe retries, and a retry
        # starts only what is missing.
        logger.exception("Starting workflow runs for %s failed", event["id"])
        return _error(500, "Could not start workflow runs; the event is kept, please retry")
    return JsonResponse({"received": event["id"], "trigger": trigger_id})


class Endpoints:
    """The webhook endpoints by URL uuid, read once per ENDPOINT_TTL per process.

    Every delivery would otherwise read its endpoint (and account) first. A signature
    that fails with a cached secret is checked again with the stored one, so a rotated
    secret never refuses a good delivery; a removed endpoint is noticed within the TTL.
    """

    def __init__(self):
        self.rows = {}  # uuid -> (endpoint or None, read at)

    def get(self, uuid):
        cached = self.rows.get(uuid)
        if cached and time.monotonic() - cached[1] < ENDPOINT_TTL:
            return cached[0]
        endpoint = (
            WebhookEndpoint.objects.select_related("djstripe_owner_account")
            .filter(djstripe_uuid=uuid)
            .first()
        )
        self.rows[uuid] = (endpoint, time.monotonic())
        return endpoint

    def reread(self, uuid):
        """Return the endpoint as stored now (read again, and kept)."""
        self.rows.pop(uuid, None)
        return self.get(uuid)

    def clear(self):
        self.rows.clear()


ENDPOINT_TTL = 10.0
endpoints = Endpoints()


def accept(event, record):
    """Record a verified event and start what it starts, in one transaction; return the
    delivery row's id.

    `record(**error)` writes the delivery row. In the same transaction the receivers of
    stripe_event_received store the event, create its runs and queue it for the mirror,
    and their tasks are queued once it commits: one commit per delivery. If that fails,
    the delivery is recorded again on its own with the reason (the evidence is kept
    whatever happened), queued for the mirror, and the error raised; Stripe's retry
    starts only what is missing (runs are unique per workflow and event).
    """
    try:
        with transaction.atomic():
            trigger = record()
            stripe_event_received.send(
                sender=WebhookEventTrigger, event=event, trigger_id=trigger.pk
            )
    except Exception as e:
        reason = f"Starting runs failed: {type(e).__name__}: {e}"
        with transaction.atomic():
            trigger = record(error=reason, traceback=traceback.format_exc())
            queue_for_sync(WebhookEventTrigger, event, trigger.pk)
        request_sync()
        raise
    request_sync()
    return trigger.pk


def record_listed(event):
    """Record an event read from Stripe's event list as a verified delivery and accept it
    as a signed one is; return the delivery row's id (automations' reconcile_events).

    Stripe's API answered Kanri's own key, so no signature is needed. The row's headers
    name its source, so the admin tells a recovered event from a delivered one.
    """
    body = json.dumps(event)
    parse_event(body)  # the same shape checks as a delivery
    endpoint = (
        WebhookEndpoint.objects.select_related("djstripe_owner_account")
        .filter(livemode=bool(event.get("livemode")))
        .order_by("created")
        .first()
    )

    def record(error="", traceback=""):
        return WebhookEventTrigger.objects.create(
            remote_ip="0.0.0.0",  # not from a request
            headers={"X-Kanri-Source": "reconcile_events"},
            body=body,
            valid=True,
            exception=error[:128],
            traceback=traceback,
            webhook_endpoint=endpoint,
            stripe_trigger_account=endpoint.djstripe_owner_account if endpoint else None,
        )

    return accept(event, record)


def _remote_ip(request):
    """Return the client's address as dj-stripe reads it (the proxy's X-Forwarded-For
    first), or 0.0.0.0: a forged header must not fail the row (an inet column)."""
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
    for candidate in (forwarded, request.META.get("REMOTE_ADDR") or ""):
        if candidate.startswith("[") and "]" in candidate:  # [v6]:port
            candidate = candidate[1 : candidate.index("]")]
        elif candidate.count(":") == 1:  # v4:port
            candidate = candidate.split(":")[0]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return "0.0.0.0"


def _storable(text):
    return _UNSTORABLE.sub("\ufffd", text)


def _record(request, endpoint, body, *, valid=True, error="", traceback=""):
    return WebhookEventTrigger.objects.create(
        remote_ip=_remote_ip(request),
        headers={_storable(k): _storable(v) for k, v in request.headers.items()},
        body=_storable(body.decode("utf-8", "replace")),
        valid=valid,
        exception=error[:128],
        traceback=traceback,
        webhook_endpoint=endpoint,
        stripe_trigger_account=endpoint.djstripe_owner_account,
    )


def request_sync(force=False):
    """Queue one sync batch, unless one is already queued or running.

    One batch at a time, each working for SYNC_BUDGET seconds and then going to the back
    of the queue, keeps workflow runs from waiting behind a backlog of syncs. The mark
    expires by itself if its task is lost.

    A process that found the mark held believes it for SYNC_HELD_BELIEF seconds without
    asking again (unless `force`d): under load every delivery would otherwise spend a
    round trip learning that a batch is queued. That batch looks for pending work when
    it ends and queues the next; what arrives just after that look waits at most for
    the next delivery or the workers' sweep (`kick_sync_if_due`, every few seconds).
    """
    global _held_seen_at
    if not force and time.monotonic() - _held_seen_at < SYNC_HELD_BELIEF:
        return
    if SyncMark.claim(SYNC_QUEUED, SYNC_MARK_TTL):
        enqueue(SYNC_TASK)
    else:
        _held_seen_at = time.monotonic()


SYNC_HELD_BELIEF = 0.5
_held_seen_at = float("-inf")


def kick_sync_if_due():
    """Queue a sync batch if deliveries wait and none is queued (the workers' sweep)."""
    if _pending(timezone.now()).exists():
        request_sync(force=True)


@receiver(stripe_event_received, dispatch_uid="kanri-mirror-queue")
def queue_for_sync(sender, event, trigger_id, **kwargs):
    """Put a verified delivery on the mirror's to-do list: one INSERT, nothing scanned."""
    SyncQueue.objects.bulk_create(
        [SyncQueue(delivery_id=trigger_id, due=timezone.now())], ignore_conflicts=True
    )


def _pending(now):
    """Deliveries due for a sync: new ones, and failed ones whose backoff has passed.

    Read from the queue's `due` index, so the cost does not grow with the delivery table.
    """
    return SyncQueue.objects.filter(due__lte=now).order_by("due", "delivery_id")


def sync_webhooks(budget=SYNC_BUDGET):
    """Sync pending webhooks into dj-stripe for about `budget` seconds (django-q2 task).

    Stops early when Stripe is unreachable or failing: the rest wait for their backoff
    and `retry_unprocessed_webhooks` instead of tying up workers that runs need. Returns
    how many deliveries it synced.
    """
    deadline = time.monotonic() + budget
    synced, stripe_down = 0, False
    try:
        while not stripe_down and (synced == 0 or time.monotonic() < deadline):
            batch = list(_pending(timezone.now())[:SYNC_BATCH])
            if not batch:
                break
            result = _sync(batch, deadline)
            synced += len(result.synced)
            stripe_down = result.stripe_down
            if not result.synced and not result.failed:
                break  # nothing could be done now (every one waits on something)
    finally:
        SyncMark.release(SYNC_QUEUED)
    if not stripe_down and _pending(timezone.now()).exists():
        request_sync(force=True)
    return synced


def process_webhook(trigger_id):
    """Sync one verified delivery's event into dj-stripe now; return the error, or None.

    The same path as a batch of one. A delivery already synced does nothing.
    """
    queued = SyncQueue.objects.filter(delivery_id=trigger_id).first()
    result = _sync([queued or SyncQueue(delivery_id=trigger_id, due=timezone.now())])
    return result.failed.get(trigger_id)


@dataclass
class _Result:
    synced: dict = field(default_factory=dict)  # delivery id -> event id
    failed: dict = field(default_factory=dict)  # delivery id -> exception
    stripe_down: bool = False
    fetches: int = 0  # objects asked of Stripe


def _api_key(trigger, keys):
    """The API key dj-stripe would use for a delivery, looked up once per batch."""
    account = trigger.stripe_trigger_account
    livemode = trigger.webhook_endpoint.livemode if trigger.webhook_endpoint else None
    cache_key = (account.pk if account else None, livemode)
    if cache_key not in keys:
        keys[cache_key] = (account.get_default_api_key(livemode) if account else None) or (
            djstripe_settings.get_default_api_key(livemode)
        )
    return keys[cache_key]


def _sync(queued, deadline=None):
    """Sync a batch of queued deliveries (SyncQueue rows) from their verified payloads.

    For each object only the newest event is applied (coalesced), and never one older
    than the last applied to it (AppliedEvent, the ordering guard); the others are
    recorded as Events only. One transaction; one savepoint per applied event, so one
    failure spoils nothing else. Bookkeeping is a few statements per batch, not per
    delivery. Stops applying at `deadline` (after at least one); after a transient
    Stripe error it asks Stripe nothing more. What it did not reach stays queued as it
    was.
    """
    result = _Result()
    attempts = {q.delivery_id: q.attempts for q in queued}
    triggers = {
        t.pk: t
        for t in WebhookEventTrigger.objects.select_related(
            "webhook_endpoint", "stripe_trigger_account"
        ).filter(pk__in=list(attempts))
    }
    gone = [pk for pk in attempts if pk not in triggers]
    keys, events, pk_of = {}, [], {}
    for pk, trigger in sorted(triggers.items()):
        if trigger.processed or not trigger.valid:
            gone.append(pk)
            continue
        try:
            event = json.loads(trigger.body)
            # The receiver checked these; rows recorded before it did may not pass.
            if not isinstance(event["data"]["object"], dict):
                raise ValueError("data.object is not an object")
            if not (isinstance(event["id"], str) and isinstance(event["type"], str)):
                raise ValueError("the event's id or type is not a string")
        except (ValueError, KeyError, TypeError) as e:
            result.failed[pk] = e
            continue
        events.append(event)
        pk_of[id(event)] = pk
    now = timezone.now()
    with stripe_sync.batch() as state, transaction.atomic():
        to_apply, superseded = stripe_sync.coalesce(events)
        guarded = [p.object_id for _, p in to_apply if p.guarded]
        applied = {
            a.object_id: (int(a.created.timestamp()), a.event_id)
            for a in AppliedEvent.objects.filter(object_id__in=guarded)
        }
        existing = set(
            Event.objects.filter(id__in={e["id"] for e in events}).values_list("id", flat=True)
        )
        record, marks, winners_done = [], {}, set()

        def due(event, p):
            """Whether the event's object is to be written (not only its Event row)."""
            newest = applied.get(p.object_id, (-1, ""))
            stale = p.guarded and newest >= stripe_sync.event_key(event)
            return not (event["id"] in existing or stale or p.action == "record")

        # The unknown customers of the whole batch first, several at once. With a slow
        # Stripe this can outlast SYNC_BUDGET: what it fetched is what the loop needs.
        stripe_sync.prefetch(
            [
                (event, p, _api_key(triggers[pk_of[id(event)]], keys))
                for event, p in to_apply
                if p.action == "sync" and due(event, p)
            ],
            state,
        )
        for event, p in to_apply:
            pk = pk_of[id(event)]
            key = _api_key(triggers[pk], keys)
            if not due(event, p):  # recorded already, older than what was applied, or no object
                record.append((event, key))
                result.synced[pk] = event["id"]
                winners_done.add(p.object_id)
                continue
            if deadline is not None and result.synced and time.monotonic() >= deadline:
                continue
            if state.offline and p.action == "handler":
                continue  # dj-stripe's handler always asks Stripe
            try:
                with transaction.atomic():
                    stripe_sync.apply(event, p, key)
            except stripe_sync.StripeDeferred:
                continue  # stays queued as it was
            except Exception as e:
                result.failed[pk] = e
                failure = stripe_sync.classify_failure(e)
                if isinstance(e, stripe.StripeError) and not failure.permanent:
                    # Stripe is failing: ask it nothing more this batch, but go on with
                    # the events whose payload is all they need.
                    result.stripe_down = state.offline = True
                continue
            if p.action != "handler":  # dj-stripe's handler wrote its own Event row
                record.append((event, key))
            else:
                existing.add(event["id"])
            result.synced[pk] = event["id"]
            if p.guarded:
                winners_done.add(p.object_id)
                marks[p.object_id] = event
        for event in superseded:
            # Recorded only, once a newer event of its object is in the mirror; if that
            # one failed or was not reached, this one waits with it.
            if stripe_sync.plan(event).object_id in winners_done:
                record.append((event, _api_key(triggers[pk_of[id(event)]], keys)))
                result.synced[pk_of[id(event)]] = event["id"]
        new = {e["id"]: (e, k) for e, k in record if e["id"] not in existing}
        _insert_events(new.values(), result)
        if marks:
            AppliedEvent.objects.bulk_create(
                [
                    AppliedEvent(
                        object_id=object_id,
                        created=datetime.fromtimestamp(stripe_sync.event_key(e)[0], UTC),
                        event_id=e["id"],
                    )
                    for object_id, e in marks.items()
                ],
                update_conflicts=True,
                unique_fields=["object_id"],
                update_fields=["created", "event_id"],
            )
        if result.synced:
            WebhookEventTrigger.objects.filter(pk__in=list(result.synced)).update(
                processed=True,
                event_id=Case(
                    *(When(pk=pk, then=Value(e)) for pk, e in result.synced.items()),
                    output_field=CharField(),
                ),
                updated=now,
            )
            # The error columns are shared with the receiver ("Starting runs failed"):
            # only an error this sync recorded itself is cleared.
            solved = SyncProblem.objects.filter(delivery_id__in=list(result.synced))
            solved_ids = list(solved.values_list("delivery_id", flat=True))
            if solved_ids:
                WebhookEventTrigger.objects.filter(pk__in=solved_ids).update(
                    exception="", traceback=""
                )
                solved.delete()
        done = [*result.synced, *gone]
        if done:
            SyncQueue.objects.filter(delivery_id__in=done).delete()
        for pk, error in result.failed.items():
            _record_failure(triggers[pk], attempts[pk] + 1, error, now)
    result.fetches = state.fetches
    logger.debug(
        "Synced %d of %d deliveries (%d failed), %d objects fetched from Stripe",
        len(result.synced),
        len(queued),
        len(result.failed),
        result.fetches,
    )
    return result


def _insert_events(events, result):
    """Write the Event rows of synced deliveries: one INSERT, or, if that fails, one per
    event, so that one unstorable event fails alone instead of blocking every batch."""
    rows = {}
    for event, key in events:
        try:
            rows[event["id"]] = stripe_sync.event_row(event, key)
        except Exception as e:
            _unsync(event["id"], e, result)
    try:
        with transaction.atomic():
            Event.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
        return
    except DatabaseError:
        pass
    for event_id, row in rows.items():
        try:
            with transaction.atomic():
                Event.objects.bulk_create([row], ignore_conflicts=True)
        except DatabaseError as e:
            _unsync(event_id, e, result)


def _unsync(event_id, error, result):
    for pk in [pk for pk, e in result.synced.items() if e == event_id]:
        del result.synced[pk]
        result.failed[pk] = error


def _backoff(attempt, retry_after=None):
    """Seconds before retry `attempt` (1, 2, …): 30 s doubling to an hour, or longer if
    Stripe's Retry-After asks."""
    wait = min(SYNC_BACKOFF_CAP, SYNC_BACKOFF_FIRST * 2 ** (attempt - 1))
    return max(wait, retry_after or 0)


def _record_failure(trigger, attempt, error, now):
    """Keep a failure on the delivery, reschedule or drop its queue row, and keep the
    SyncProblem the admin lists. One warning when a problem is first seen (or changes),
    one at give-up; retries in between log at debug level."""
    failure = stripe_sync.classify_failure(error)
    too_old = trigger.created < now - timedelta(days=SYNC_MAX_AGE_DAYS)
    give_up = not failure.permanent and too_old
    event = _event_summary(trigger)
    if failure.permanent or give_up:
        kind, code, next_try = SyncProblem.Kind.PERMANENT, failure.code, None
        if give_up:
            code = SyncProblem.Code.GAVE_UP
        SyncQueue.objects.filter(delivery_id=trigger.pk).delete()
    else:
        kind, code = SyncProblem.Kind.TRANSIENT, failure.code
        next_try = now + timedelta(seconds=_backoff(attempt, failure.retry_after))
        SyncQueue.objects.update_or_create(
            delivery_id=trigger.pk, defaults={"due": next_try, "attempts": attempt}
        )
    WebhookEventTrigger.objects.filter(pk=trigger.pk).update(
        exception=f"{type(error).__name__}: {error}"[:128],
        traceback="".join(traceback.format_exception(error)),
        updated=now,
    )
    previous = SyncProblem.objects.filter(delivery_id=trigger.pk).first()
    SyncProblem.objects.update_or_create(
        delivery_id=trigger.pk,
        defaults={
            **event,
            "kind": kind,
            "code": code,
            "detail": failure.detail,
            "attempts": attempt,
            "last_tried": now,
            "next_try": next_try,
        },
        create_defaults={
            **event,
            "kind": kind,
            "code": code,
            "detail": failure.detail,
            "attempts": attempt,
            "first_seen": now,
            "last_tried": now,
            "next_try": next_try,
        },
    )
    if previous is None or (previous.kind, previous.code) != (kind, code):
        logger.warning(
            "Syncing Stripe webhook %s (%s %s) failed, %s (%s): %s",
            trigger.pk,
            event["event_type"],
            event["event_id"],
            "given up" if give_up else kind,
            failure.code,
            failure.detail,
        )
    else:
        logger.debug("Syncing Stripe webhook %s failed again: %s", trigger.pk, failure.detail)


def _event_summary(trigger):
    try:
        event = json.loads(trigger.body)
        obj = event["data"]["object"]
        return {
            "event_id": str(event.get("id", ""))[:255],
            "event_type": str(event.get("type", ""))[:255],
            "object_id": str(obj.get("id") or "")[:255],
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"event_id": "", "event_type": "", "object_id": ""}


def retry_syncs(delivery_ids):
    """Queue these deliveries for a sync now, whatever their problem was (the admin's
    "retry" action); return how many were queued."""
    ids = list(
        WebhookEventTrigger.objects.filter(
            pk__in=list(delivery_ids), valid=True, processed=False
        ).values_list("pk", flat=True)
    )
    now = timezone.now()
    for pk in ids:
        SyncQueue.objects.update_or_create(delivery_id=pk, defaults={"due": now})
    SyncProblem.objects.filter(delivery_id__in=ids).update(next_try=now)
    if ids:
        transaction.on_commit(lambda: request_sync(force=True))
    return len(ids)


def retry_unprocessed_webhooks():
    """Queue a sync if deliveries are due: failed ones whose backoff has passed, or ones
    whose batch was lost with a worker (django-q2 schedule, every few minutes). Stripe
    stops retrying a delivery after three days; so do we. Returns how many are due."""
    due = _pending(timezone.now()).count()
    if due:
        request_sync(force=True)  # a lost batch's mark has expired by now (SYNC_MARK_TTL)
    return due
