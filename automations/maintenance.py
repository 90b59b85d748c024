"""Bulk work the terminal and the schedules share: pruning runs, reconciling events (being
built: issue 10)."""


def prune_runs(
    older_than=None, include_failed=False, batch_size=1000, dry_run=False, on_batch=None
):
    """Delete finished runs (their steps and approvals by cascade) whose last activity is
    older than `older_than` (a timedelta; default settings.KANRI_RUN_RETENTION_DAYS), in
    batches of `batch_size`, each in its own transaction; return {"matched", "deleted"}.

    Succeeded and cancelled runs go; failed and held ones only with `include_failed`, as
    they are the ones a person may still look into. Queued, running and retrying runs are
    never deleted. A bulk request (Batch) keeps its items; its report shows a pruned run
    as one that did not run. `on_batch(deleted)` is called after each batch. The trigger
    events no run refers to any more go after the runs.
    """
    from datetime import timedelta

    from django.conf import settings
    from django.db import transaction
    from django.db.models import Q
    from django.utils import timezone

    from automations.models import Run

    if older_than is None:
        older_than = timedelta(days=settings.KANRI_RUN_RETENTION_DAYS)
    cutoff = timezone.now() - older_than
    statuses = [Run.Status.SUCCEEDED, Run.Status.CANCELLED]
    if include_failed:
        statuses += [Run.Status.FAILED, Run.Status.HELD]
    # A finished run's age is from when it finished; a held run has not, so from its start.
    old = Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)
    runs = Run.objects.filter(old, status__in=statuses)
    matched = runs.count()
    deleted = 0
    while not dry_run:
        with transaction.atomic():
            ids = list(runs.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            # Re-checked by status inside the delete: a run retried meanwhile is kept.
            count = runs.filter(pk__in=ids).delete()[1].get(Run._meta.label, 0)
        deleted += count
        if on_batch:
            on_batch(count)
    if not dry_run:
        _prune_events(cutoff, batch_size)
    return {"matched": matched, "deleted": deleted}


def _prune_events(cutoff, batch_size):
    """Delete the trigger events no run refers to any more (their runs were pruned or their
    workflow deleted); return how many. Only those stored before `cutoff`: a redelivery of
    a recent event may be about to point a new run at its row."""
    from django.db import transaction
    from django.db.models import Exists, OuterRef

    from automations.models import Run, TriggerEvent

    orphans = TriggerEvent.objects.filter(created_at__lt=cutoff).filter(
        ~Exists(Run.objects.filter(event=OuterRef("pk")))
    )
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(orphans.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            deleted += orphans.filter(pk__in=ids).delete()[0]


def reconcile_events(since=None, until=None, dry_run=False, tick=None):
    """Find the Stripe events of the last day (or since `since`) Kanri never received,
    record them and run them once (hourly schedule and `manage.py reconcile_events`).

    A webhook that answered 200 is no proof that the work ran: a delivery lost on the
    way starts no run, and nothing else would notice. See automations.replays.reconcile.
    """
    from automations import replays

    return replays.reconcile(since=since, until=until, dry_run=dry_run, tick=tick)
