"""The one entry from Stripe events to workflow runs.

The webhook receiver sends `stripe_event_received` inside the transaction that records a
verified event. Matching uses an in-memory index of active versions by event type and
the event's own payload, so an event no workflow wants costs no query, and a run never
waits for dj-stripe's object sync (which calls the Stripe API). Each match creates one
Run — the unique (workflow, event id) constraint makes a redelivery start nothing — and
queues it when the transaction commits.
"""

import threading
import time

from django.db import IntegrityError, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from automations.engine.conditions import matches
from automations.engine.context import build_context
from automations.models import Run, Workflow, WorkflowVersion
from integrations.queue import enqueue
from integrations.signals import stripe_event_received

RUN_TASK = "automations.tasks.run_workflow"
# How stale another process's view of active workflows may be after one is activated
# or paused; within the process that changed it, the change applies at once.
INDEX_TTL = 1.0


class Index:
    """Active workflow versions by event type, rebuilt when the set of them changes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.token = None
        self.by_type = {}
        self.checked_at = float("-inf")

    def invalidate(self):
        """Rebuild on next use (this process changed a workflow)."""
        self.checked_at = float("-inf")
        self.token = None

    def versions_for(self, event_type):
        if time.monotonic() - self.checked_at > INDEX_TTL:
            with self.lock:
                self.refresh()
        return self.by_type.get(event_type, ())

    def refresh(self):
        token = tuple(
            Workflow.objects.filter(status=Workflow.Status.ACTIVE, active_version__isnull=False)
            .order_by("pk")
            .values_list("pk", "active_version_id")
        )
        if token != self.token:
            definitions = dict(
                WorkflowVersion.objects.filter(pk__in=[v for _, v in token]).values_list(
                    "pk", "definition"
                )
            )
            by_type = {}
            for workflow_id, version_id in token:
                definition = definitions[version_id]
                by_type.setdefault(definition["trigger"]["event_type"], []).append(
                    (workflow_id, version_id, definition["conditions"])
                )
            self.by_type, self.token = by_type, token
        self.checked_at = time.monotonic()


index = Index()


def origin_workflow(event):
    """Return the id of the workflow whose Stripe write caused this event, if any.

    Stripe echoes the idempotency key of the request behind an event, and Kanri's keys
    are "kanri-<workflow>-<run>-<step>"; so a workflow never re-triggers itself, while
    other workflows still react to what it did.
    """
    key = ((event.get("request") or {}).get("idempotency_key")) or ""
    parts = key.split("-")
    if len(parts) >= 4 and parts[0] == "kanri" and parts[1].isdigit():
        return int(parts[1])
    return None


def start_runs(event):
    """Create and queue a run for each active workflow this event matches; return their ids."""
    versions = index.versions_for(event.get("type"))
    if not versions:
        return []
    origin = origin_workflow(event)
    context = build_context(event)
    now = timezone.now()
    matched = [
        (workflow_id, version_id)
        for workflow_id, version_id, conditions in versions
        if workflow_id != origin and matches(conditions, context)[0]
    ]
    if not matched:
        return []
    # Redeliveries are common; finding their runs first keeps them out of the
    # IntegrityError path (and PostgreSQL's error log). The constraint stays the guard.
    existing = set(
        Run.objects.filter(
            workflow_id__in=[w for w, _ in matched], trigger_key=event["id"]
        ).values_list("workflow_id", flat=True)
    )
    started = []
    for workflow_id, version_id in matched:
        if workflow_id in existing:
            continue
        try:
            with transaction.atomic():
                run = Run.objects.create(
                    workflow_id=workflow_id,
                    version_id=version_id,
                    trigger_key=event["id"],
                    event_type=event["type"],
                    trigger_data=event,
                    next_attempt_at=now,
                )
        except IntegrityError:
            continue  # a redelivery: this event already started this workflow
        enqueue(RUN_TASK, run.pk)
        started.append(run.pk)
    return started


@receiver(stripe_event_received)
def on_stripe_event(sender, event, **kwargs):
    start_runs(event)


@receiver(post_save, sender=Workflow)
def on_workflow_saved(sender, **kwargs):
    # Activating or pausing applies at once in this process, and within INDEX_TTL elsewhere.
    index.invalidate()
