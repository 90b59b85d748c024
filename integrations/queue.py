"""The one way Kanri puts work on django-q2."""

import logging
import multiprocessing
import os

from django.db import transaction
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

_broker = None
_broker_pid = None


def broker():
    """Return this process's broker, created once.

    `async_task` without a broker builds a new one (a new Redis connection) per call;
    reusing one per process is what lets the webhook receiver keep up with Stripe.
    Keyed by pid because the cluster forks its workers.
    """
    global _broker, _broker_pid
    if _broker is None or _broker_pid != os.getpid():
        _broker, _broker_pid = get_broker(), os.getpid()
    return _broker


def in_worker_process():
    """Whether this is a cluster's worker process (where post_spawn handlers act).

    django-q2's sync mode (tests) runs its worker loop inline in the main process and
    sends post_spawn for every task: what a worker process sets up must not happen there.
    """
    return multiprocessing.current_process().name != "MainProcess"


def enqueue(func, *args):
    """Queue `func(*args)` (a dotted path, primitive args) once the transaction commits.

    A broker that is down (Redis restarting) does not fail the caller: the work is
    already recorded in Kanri's tables, committed, and a sweeper queues it again (a run
    still queued after KANRI_LOST_AFTER_SECONDS; a sync batch when its mark expires).
    Raising here, after the commit, would only turn a webhook Kanri has stored into a
    500 that Stripe delivers again.
    """
    transaction.on_commit(lambda: _put(func, args))


def _put(func, args):
    if Conf.SYNC:  # tests: the task runs inline, and its own errors must show
        async_task(func, *args, broker=broker())
        return
    try:
        async_task(func, *args, broker=broker())
    except Exception as error:
        logger.warning(
            "Could not queue %s%r (%s); its sweeper will queue it again", func, args, error
        )
