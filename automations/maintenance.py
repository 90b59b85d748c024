"""Bulk work the terminal and the schedules share: pruning runs, reconciling events (being
built: issue 10)."""


def prune_runs():
    raise NotImplementedError


def reconcile_events():
    raise NotImplementedError
