"""The one way Kanri puts work on django-q2."""

import os

from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

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


def enqueue(func, *args):
    """Queue `func(*args)` (a dotted path, primitive args) once the transaction commits."""
    transaction.on_commit(lambda: async_task(func, *args, broker=broker()))
