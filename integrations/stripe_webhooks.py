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
import traceback

import stripe
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.settings import djstripe_settings

from integrations.queue import enqueue
from integrations.signals import stripe_event_received

logger = logging.getLogger(__name__)

PROCESS_TASK = "integrations.stripe_webhooks.process_webhook"


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
        # Receivers write rows in their own transactions and queue work on commit; a
        # redelivery after a failure here starts only what is missing (runs are unique
        # per workflow and event).
        stripe_event_received.send(sender=WebhookEventTrigger, event=event, trigger_id=trigger.pk)
    except Exception as e:
        logger.exception("Starting workflow runs for %s failed", event["id"])
        WebhookEventTrigger.objects.filter(pk=trigger.pk).update(
            exception=f"Starting runs failed: {type(e).__name__}: {e}"[:128],
            traceback=traceback.format_exc(),
        )
        return _error(500, "Could not start workflow runs; the event is kept, please retry")
    enqueue(PROCESS_TASK, trigger.pk)
    return JsonResponse({"received": event["id"], "trigger": trigger.pk})


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


def process_webhook(trigger_id):
    """Sync a verified webhook's event into dj-stripe (django-q2 task).

    dj-stripe's Event.process creates the Event once per event id (a redelivery finds it
    and does nothing) and re-fetches the object from the Stripe API. Workflow runs do not
    wait for this: the receiver started them from the verified payload. A failure is
    recorded on the trigger and retried by `retry_unprocessed_webhooks`. Only this task's
    own columns are updated.
    """
    trigger = WebhookEventTrigger.objects.select_related(
        "webhook_endpoint", "stripe_trigger_account"
    ).get(pk=trigger_id)
    if trigger.processed or not trigger.valid:
        return
    account = trigger.stripe_trigger_account
    livemode = trigger.webhook_endpoint.livemode if trigger.webhook_endpoint else None
    api_key = (account.default_api_key if account else None) or (
        djstripe_settings.get_default_api_key(livemode)
    )
    rows = WebhookEventTrigger.objects.filter(pk=trigger_id)
    try:
        event = Event.process(trigger.json_body, api_key=api_key)
    except Exception as e:
        logger.exception("Processing Stripe webhook trigger %s failed", trigger_id)
        rows.update(
            exception=f"{type(e).__name__}: {e}"[:128],
            traceback=traceback.format_exc(),
            updated=timezone.now(),
        )
        return
    rows.update(processed=True, event=event, exception="", traceback="", updated=timezone.now())


def retry_unprocessed_webhooks(older_than_seconds=300, max_age_days=3):
    """Re-queue verified webhooks not yet processed (django-q2 schedule).

    A worker can die mid-task (the Redis broker then loses the task) or Stripe's API can
    fail during the sync. Stripe itself stops retrying after three days; so do we.
    Returns the number re-queued.
    """
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=older_than_seconds)
    due = WebhookEventTrigger.objects.filter(
        valid=True,
        processed=False,
        updated__lt=stale,
        created__gt=now - timezone.timedelta(days=max_age_days),
    ).values_list("pk", flat=True)
    count = 0
    for pk in due[:1000]:
        # Claim by touching `updated`: a second sweeper running beside this one skips it.
        if WebhookEventTrigger.objects.filter(pk=pk, updated__lt=stale).update(updated=now):
            enqueue(PROCESS_TASK, pk)
            count += 1
    return count
