"""What starts runs: a Trigger value, and `start_runs`, the one entry every kind goes through.

Each kind of trigger is one module here named after its `TriggerKind` value (to add one:
a module and a choice). A kind module provides:

    COLUMNS              trigger dict key -> Workflow column, for rows <-> definition
    OPTIONS              (optional) other trigger dict keys, kept in Workflow.trigger_options
    PARAM                the key the editor's trigger menu sets
    label                what staff call it
    choices()            Django grouped choices of PARAM values, for the editor
    validate(trigger)    [Problem] for the definition's trigger dict
    fields(trigger)      the catalog fields `{{trigger.…}}` offers
    describe(trigger)    a short name for messages ("charge.succeeded events")
    title(trigger)       what staff call it ("Payment intent succeeded")
    starts_on(trigger, data)  whether this trigger would start on a Trigger's data
    samples(trigger, limit)   [(id, created)] of stored events or objects to preview on
    sample(trigger, id)  the Trigger data of one of them, or None
    candidates(trigger)  [(workflow id, version id, conditions)] a Trigger may start

`start_runs` evaluates conditions on the trigger's data, creates one Run per matching
workflow (the unique (workflow, trigger key) constraint makes a repeat start nothing),
and queues each when the transaction commits.
"""

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from automations.engine.conditions import matches
from automations.engine.context import build_context
from automations.models import Run, TriggerEvent, TriggerKind


@dataclass(frozen=True)
class Trigger:
    """One occurrence of something that may start runs; plain values only."""

    kind: str
    key: str  # unique per workflow: the event id, or object + request for manual runs
    data: dict = field(hash=False)  # the run's snapshot, event-shaped: {"data": {"object": …}}
    label: str = ""
    started_by: int | None = None  # a user id, when a person started it
    workflow_id: int | None = None  # only this workflow (manual runs), else any that match
    batch_id: int | None = None  # the bulk request it belongs to, if any


@cache
def kind(name):
    """Return the module of a trigger kind, or None if there is no such kind."""
    if name not in TriggerKind.values:
        return None
    return import_module(f"automations.triggers.{name}")


def start_runs(trigger):
    """Create and queue a run for each workflow this trigger starts; return their ids."""
    from automations.tasks import queue_run

    candidates = kind(trigger.kind).candidates(trigger)
    if not candidates:
        return []
    context = build_context(trigger.data)
    matched = [(w, v) for w, v, conditions in candidates if matches(conditions, context)[0]]
    if not matched:
        return []
    # One transaction for the event and its runs (inside the webhook receiver's): their
    # tasks are queued when it commits.
    with transaction.atomic(savepoint=False):
        event_id, stored_now = store_event(trigger)
        if stored_now and trigger.kind in SHARED_KEY_KINDS and not _runs_without_event():
            # A Stripe event id stored just now has no runs yet (a run's event is stored
            # first, in its transaction; a concurrent delivery of the same event waits on
            # this row and then finds it stored): the runs are inserted in one statement.
            runs = Run.objects.bulk_create([_new_run(trigger, w, v, event_id) for w, v in matched])
            for run in runs:
                queue_run(run.pk)
            return [run.pk for run in runs]
        return _start_missing(trigger, matched, event_id)


_legacy = {"exist": None}


def _runs_without_event():
    """Whether runs from before events were stored apart (migration 0011) remain: such a
    run keeps its event inline, so a new event row does not prove it has no runs. Once
    none remain none can appear, so the answer False is kept."""
    if _legacy["exist"] is not False:
        _legacy["exist"] = Run.objects.filter(
            event__isnull=True, trigger_kind__in=SHARED_KEY_KINDS
        ).exists()
    return _legacy["exist"]


def forget_legacy_runs():
    """Ask again (tests: a rolled-back test may have made such a run)."""
    _legacy["exist"] = None


def _new_run(trigger, workflow_id, version_id, event_id):
    return Run(
        workflow_id=workflow_id,
        version_id=version_id,
        trigger_kind=trigger.kind,
        trigger_key=trigger.key,
        event_type=str(trigger.data.get("type") or "")[:100],
        event_id=event_id,
        started_by_id=trigger.started_by,
        batch_id=trigger.batch_id,
        next_attempt_at=timezone.now(),
    )


def _start_missing(trigger, matched, event_id):
    """Create the runs this trigger has not started yet (a redelivery, a replay)."""
    from automations.tasks import queue_run

    # Redeliveries are common; finding their runs first keeps them out of the
    # IntegrityError path (and PostgreSQL's error log). The constraint stays the guard.
    existing = set(
        Run.objects.filter(
            workflow_id__in=[w for w, _ in matched], trigger_key=trigger.key
        ).values_list("workflow_id", flat=True)
    )
    started = []
    for workflow_id, version_id in matched:
        if workflow_id in existing:
            continue
        try:
            with transaction.atomic():
                run = _new_run(trigger, workflow_id, version_id, event_id)
                run.save(force_insert=True)
        except IntegrityError:
            continue  # a repeat: this trigger already started this workflow
        queue_run(run.pk)
        started.append(run.pk)
    return started


# Stripe event ids name one immutable event, whichever way it arrived (webhook or replay).
SHARED_KEY_KINDS = (TriggerKind.STRIPE_EVENT, TriggerKind.REPLAY)


def event_key(trigger):
    """Return the TriggerEvent key of a trigger: one row per distinct event.

    Other kinds' keys do not name one content (a schedule tick's key is the same for two
    workflows with different digests), so a digest of the data is added to them.
    """
    if trigger.kind in SHARED_KEY_KINDS:
        return trigger.key
    digest = hashlib.sha256(
        json.dumps(trigger.data, sort_keys=True, cls=DjangoJSONEncoder).encode()
    ).hexdigest()[:24]
    return f"{trigger.key[:250]}#{digest}"


def store_event(trigger):
    """Store the trigger's data once (a repeat or a second workflow reuses the row); return
    (its id, whether it was stored just now).

    INSERT … ON CONFLICT DO NOTHING RETURNING, then a SELECT only for a repeat: two
    workers storing it at once both win. Django's bulk_create(ignore_conflicts=True)
    does not return the id, so this one statement is written out.
    """
    key = event_key(trigger)
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ops.quote_name(TriggerEvent._meta.db_table)} (key, data, created_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id",
            [
                key,
                TriggerEvent._meta.get_field("data").get_db_prep_save(trigger.data, connection),
                ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        row = cursor.fetchone()
    if row:
        return row[0], True
    return TriggerEvent.objects.filter(key=key).values_list("pk", flat=True).get(), False


def connect():
    """Import the kinds that listen for signals (called from the app's ready())."""
    for name in TriggerKind.values:
        kind(name)
