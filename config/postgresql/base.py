"""Django's PostgreSQL backend, with a health check that costs no round trip.

CONN_HEALTH_CHECKS is on (see settings): after a restart, a failover or
pg_terminate_backend, a reused connection must not answer its next request with a 500.
Django's check is a `SELECT 1` before the first query of every request and every task;
on the webhook receiver that was one round trip in six, and the one most often kept
waiting when the machine is busy.

A server that ends a connection says so: it sends its FATAL notice and closes the
socket, so an idle connection whose socket has something to read has been dropped (or,
rarely, received a notice). Only then is the server asked, with Django's own check.
"""

import select

from django.db.backends.postgresql import base
from psycopg import Error
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            return super().is_usable()  # mid-transaction: not a question a socket answers
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN)
            quiet = not poller.poll(0)
        except (Error, OSError, ValueError):
            return False
        return quiet or super().is_usable()
