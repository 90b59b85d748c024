"""When a queue worker's commit must be on disk before it returns, and when it need not.

A webhook's delivery is committed durably before Stripe is answered, by the web process.
What a worker writes afterwards (claiming a run, an attempt's outcome, the mirror's
copies, leases, sweeps) is bookkeeping that PostgreSQL can flush a moment later: with
every such commit waiting for its own WAL flush, the flushes queued behind each other on
a busy disk, and the webhook acknowledgements waited behind them (make bench: ack p99 at
200/s went from 113 and 37 ms to 22 and 19 ms in two sittings each).

So, in worker processes on PostgreSQL, `synchronous_commit` is off for their sessions
(QUEUE_WORKER_ASYNC_COMMIT): a crash of the database server, not of Kanri, can lose its
last fraction of a second of those commits, never corrupt them. WAL is written in order,
so what survives is always an earlier state of the same history, one a worker killed at
that moment would have left, and the engine resumes from it as it does after a kill.

The one thing a kill never leaves is an external call whose evidence is lost. So every
write that precedes one (a step's "started" row, a failure alert's claim) is made in
`durable()`: its commit, and with it everything this session wrote before, is on disk
before the call goes out.
"""

import contextlib

from django.conf import settings
from django.db import connection, connections, transaction

from integrations.queue import in_worker_process

_relaxed = False  # this process is a queue worker whose commits may be asynchronous


@contextlib.contextmanager
def durable():
    """Make the writes of this block, and every earlier one of this session, durable once
    the block's transaction commits (inside an outer transaction: once that one does).

    Only a worker's relaxed session needs it; elsewhere every commit is durable already
    and this is a plain block.
    """
    if not (_relaxed and connection.vendor == "postgresql"):
        yield
        return
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO on")
        yield


def relax_in_workers(**kwargs):
    """In a django-q2 worker process (post_spawn): its sessions commit asynchronously."""
    global _relaxed
    if not in_worker_process():
        return
    if not settings.KANRI_WORKER_ASYNC_COMMIT or _relaxed:
        return
    _relaxed = True
    relax_sessions()
    # django-q2 closes every connection before it forks a worker; one opened since (by
    # another post_spawn handler) has the server's default: the next query opens one
    # that gets the setting.
    connection.close()


ASYNC_COMMIT = "-c synchronous_commit=off"


def relax_sessions():
    """Make this process's new PostgreSQL sessions ask for asynchronous commits.

    As a startup option, not a SET: no round trip, and a pooling proxy applies it per
    client, refuses it or ignores it, but never hands it to another client's session (a
    SET would ride on the server connection, to the web's delivery commits). The
    settings dict is this process's own (forked), shared by its threads' connections.
    """
    for alias in connections:
        wrapper = connections[alias]
        if wrapper.vendor != "postgresql":
            continue
        options = wrapper.settings_dict.setdefault("OPTIONS", {})
        given = options.get("options", "")
        if ASYNC_COMMIT not in given:
            options["options"] = f"{given} {ASYNC_COMMIT}".strip()
