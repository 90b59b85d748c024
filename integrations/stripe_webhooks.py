"""Stripe webhook ingestion: verify, record, acknowledge; process in a worker.

Kanri serves dj-stripe's webhook URL (`stripe/webhook/<uuid>/`) with its own view.
dj-stripe's view syncs objects from the Stripe API inside the request (~84 events/s
here, ~16/s when Stripe answers slowly), and even with DJSTRIPE_WEBHOOK_EVENT_CALLBACK it
writes the trigger row twice and hands it to the callback before its final save, which a
worker can race. This view writes the evidence once, fully, and only then enqueues.

https://docs.stripe.com/webhooks#verify-events
"""

import json
import logging
import time
import traceback
from datetime import timedelta

import stripe
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.db.models import Q
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.settings import djstripe_settings

from integrations.models import SyncMark
from integrations.queue import enqueue
from integrations.signals import stripe_event_received
from integrations.stripe_client import classify

logger = logging.getLogger(__name__)

SYNC_TASK = "integrations.stripe_webhooks.sync_webhooks"
SYNC_QUEUED = "stripe-sync"
SYNC_BUDGET = 1.0  # seconds a sync batch works before yielding the worker to runs
SYNC_MARK_TTL = 60  # how long "a batch is queued" is believed without a batch finishing
SYNC_RETRY_AFTER = 300  # seconds before a failed (or orphaned) sync is tried again
SYNC_MAX_AGE_DAYS = 3  # Stripe stops redelivering after three days; so do we


class InvalidWebhook(Exception):
    """A request that is not a verified, well-formed Stripe event."""


def _error(status, message):
    return JsonResponse({"error": message}, status=status)


def parse_event(body):
    """Return the event dict from a verified body, or raise InvalidWebhook."""
    try:
        event = json.loads(body)
    except ValueError as e:
        raise InvalidWebhook(f"Malformed JSON: {e}") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise InvalidWebhook("Malformed event: the body is not a Stripe event object")
    missing = [key for key in ("id", "type", "livemode", "data") if key not in event]
    if missing:
        raise InvalidWebhook(f"Malformed event: missing {', '.join(missing)}")
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


@csrf_exempt
@login_not_required
@require_POST
@transaction.non_atomic_requests
def receive_webhook(request, uuid):
    """Verify a Stripe webhook, record it, queue its processing and answer 200."""
    # Checked before the body is read, so an oversized request is never buffered.
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.STRIPE_WEBHOOK_MAX_BYTES:
        return _error(413, f"Body larger than {settings.STRIPE_WEBHOOK_MAX_BYTES} bytes")
    signature = request.headers.get("Stripe-Signature")
    if not signature:
        # Not stored, like dj-stripe: anyone can post unsigned junk at a public URL.
        return _error(400, "Missing Stripe-Signature header")
    endpoint = (
        WebhookEndpoint.objects.select_related("djstripe_owner_account")
        .filter(djstripe_uuid=uuid)
        .first()
    )
    if endpoint is None:
        return _error(404, "Unknown webhook endpoint")

    body = request.body
    try:
        event = _verify(endpoint, body, signature)
    except InvalidWebhook as e:
        # Kept (valid=False) so staff can see forged posts or a rotated secret in the admin.
        _record(request, endpoint, body, valid=False, error=str(e))
        logger.warning("Rejected Stripe webhook on endpoint %s: %s", endpoint.id, e)
        return _error(400, str(e))

    # The evidence is committed first and kept whatever happens next.
    trigger = _record(request, endpoint, body, valid=True)
    try:
        accept(event, trigger.pk)
    except Exception:
        logger.exception("Starting workflow runs for %s failed", event["id"])
        return _error(500, "Could not start workflow runs; the event is kept, please retry")
    return JsonResponse({"received": event["id"], "trigger": trigger.pk})


def accept(event, trigger_id):
    """Send stripe_event_received for a recorded, verified event, then queue its sync.

    A receiver's failure is kept on the delivery row and raised again.
    """
    try:
        # Receivers write rows in their own transactions and queue work on commit; a
        # redelivery after a failure here starts only what is missing (runs are unique
        # per workflow and event).
        stripe_event_received.send(sender=WebhookEventTrigger, event=event, trigger_id=trigger_id)
    except Exception as e:
        WebhookEventTrigger.objects.filter(pk=trigger_id).update(
            exception=f"Starting runs failed: {type(e).__name__}: {e}"[:128],
            traceback=traceback.format_exc(),
        )
        raise
    request_sync()


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
    trigger = WebhookEventTrigger.objects.create(
        remote_ip="0.0.0.0",  # not from a request
        headers={"X-Kanri-Source": "reconcile_events"},
        body=body,
        valid=True,
        webhook_endpoint=endpoint,
        stripe_trigger_account=endpoint.djstripe_owner_account if endpoint else None,
    )
    accept(event, trigger.pk)
    return trigger.pk


def _record(request, endpoint, body, *, valid, error=""):
    return WebhookEventTrigger.objects.create(
        remote_ip=get_remote_ip(request),
        headers=dict(request.headers),
        body=body.decode("utf-8", "replace"),
        valid=valid,
        exception=error[:128],
        webhook_endpoint=endpoint,
        stripe_trigger_account=endpoint.djstripe_owner_account,
    )


def request_sync():
    """Queue one sync batch, unless one is already queued or running.

    dj-stripe's sync costs ~35 SQL statements and two Stripe calls per event, far more
    than a workflow run. One batch at a time, each working for SYNC_BUDGET seconds and
    then going to the back of the queue, keeps workflow runs from waiting behind a
    backlog of syncs. The mark expires by itself if its task is lost.
    """
    if SyncMark.claim(SYNC_QUEUED, SYNC_MARK_TTL):
        enqueue(SYNC_TASK)


def _pending(now):
    """Verified deliveries still to sync: new ones, and failed ones due for a retry."""
    return WebhookEventTrigger.objects.filter(
        Q(exception="") | Q(updated__lt=now - timedelta(seconds=SYNC_RETRY_AFTER)),
        valid=True,
        processed=False,
        created__gt=now - timedelta(days=SYNC_MAX_AGE_DAYS),
    ).order_by("pk")


def sync_webhooks(budget=SYNC_BUDGET):
    """Sync pending webhooks into dj-stripe for about `budget` seconds (django-q2 task).

    Stops early when Stripe is unreachable or failing: the rest wait for
    `retry_unprocessed_webhooks` instead of tying up workers that runs need. Returns how
    many deliveries it synced.
    """
    deadline = time.monotonic() + budget
    synced, stripe_down = 0, False
    try:
        while not stripe_down and (synced == 0 or time.monotonic() < deadline):
            batch = list(_pending(timezone.now()).values_list("pk", flat=True)[:20])
            if not batch:
                break
            for pk in batch:  # at least one per batch, however small the budget
                error = process_webhook(pk)
                if error is None:
                    synced += 1
                elif isinstance(error, stripe.StripeError) and not classify(error).permanent:
                    stripe_down = True
                    break
                if time.monotonic() >= deadline:
                    break
    finally:
        SyncMark.release(SYNC_QUEUED)
    if not stripe_down and _pending(timezone.now()).exists():
        request_sync()
    return synced


def process_webhook(trigger_id):
    """Sync one verified delivery's event into dj-stripe; return the error, or None.

    dj-stripe's Event.process creates the Event once per event id (a redelivery finds it
    and does nothing) and re-fetches the object from the Stripe API. Workflow runs do not
    wait for this: the receiver started them from the verified payload. A failure is
    recorded on the trigger for the admin and retried later. Only this function's own
    columns are updated.
    """
    trigger = WebhookEventTrigger.objects.select_related(
        "webhook_endpoint", "stripe_trigger_account"
    ).get(pk=trigger_id)
    if trigger.processed or not trigger.valid:
        return None
    account = trigger.stripe_trigger_account
    livemode = trigger.webhook_endpoint.livemode if trigger.webhook_endpoint else None
    api_key = (account.default_api_key if account else None) or (
        djstripe_settings.get_default_api_key(livemode)
    )
    rows = WebhookEventTrigger.objects.filter(pk=trigger_id)
    try:
        event = Event.process(trigger.json_body, api_key=api_key)
    except Exception as e:
        logger.warning("Syncing Stripe webhook %s failed: %s: %s", trigger_id, type(e).__name__, e)
        rows.update(
            exception=f"{type(e).__name__}: {e}"[:128],
            traceback=traceback.format_exc(),
            updated=timezone.now(),
        )
        return e
    rows.update(processed=True, event=event, exception="", traceback="", updated=timezone.now())
    return None


def retry_unprocessed_webhooks():
    """Queue a sync if deliveries are waiting: failed ones due for a retry, or ones whose
    batch was lost with a worker (django-q2 schedule, every few minutes). Stripe stops
    retrying a delivery after three days; so do we. Returns how many are due."""
    now = timezone.now()
    due = _pending(now).filter(updated__lt=now - timedelta(seconds=SYNC_RETRY_AFTER)).count()
    if due:
        request_sync()  # a lost batch's mark has expired by now (SYNC_MARK_TTL)
    return due
