"""Kanri's PostgreSQL backend tells a dropped connection from a live one without a
`SELECT 1` per request (config/postgresql/base.py)."""

import select

import pytest
from django.db import connection, connections
from django.db.backends.postgresql import base as django_postgresql

pytestmark = pytest.mark.postgresql


@pytest.fixture
def other_connection(db):
    """A second connection to the test database, as a web or worker thread holds one."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


@pytest.fixture
def server_checks(monkeypatch):
    """Each time Django's own check (a `SELECT 1` to the server) is used."""
    asked = []
    original = django_postgresql.DatabaseWrapper.is_usable

    def ask(self):
        asked.append(self.alias)
        return original(self)

    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", ask)
    return asked


def wait_until_told(wrapper, seconds=5):
    """Wait until the server's goodbye has reached the client's socket."""
    poller = select.poll()
    poller.register(wrapper.connection.fileno(), select.POLLIN)
    assert poller.poll(seconds * 1000), "the server never closed the connection"


def test_a_quiet_connection_is_usable_without_a_round_trip(other_connection, server_checks):
    assert other_connection.is_usable() is True
    assert server_checks == []


def test_a_connection_the_server_ended_is_not_usable(other_connection, server_checks):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(%s)", [other_connection.connection.info.backend_pid]
        )
    wait_until_told(other_connection)

    assert other_connection.is_usable() is False
    assert server_checks == ["default"]  # something to read: the server was asked


def test_a_request_after_the_server_ended_its_connection_gets_a_new_one(other_connection):
    old_pid = other_connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    wait_until_told(other_connection)
    other_connection.close_if_unusable_or_obsolete()  # what request_started does

    # The first query of the next request checks, reconnects and succeeds.
    with other_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        new_pid = cursor.fetchone()[0]
    assert new_pid != old_pid


def test_a_connection_in_a_transaction_is_checked_by_the_server(other_connection, server_checks):
    other_connection.set_autocommit(False)
    with other_connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    try:
        assert other_connection.is_usable() is True
        assert server_checks == ["default"]
    finally:
        other_connection.rollback()
        other_connection.set_autocommit(True)


def test_a_closed_connection_is_not_usable(other_connection, server_checks):
    other_connection.connection.close()
    assert other_connection.is_usable() is False
    assert server_checks == []
