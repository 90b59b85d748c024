"""Kanri served for real: gunicorn and a qcluster in subprocesses, on the test database.

The web server has the production shape (gunicorn, gthread workers, DEBUG off), listens
on a free loopback port, and queues on the broker the cluster consumes (Redis when
REDIS_URL is set, else the ORM broker), so a delivery goes the way Stripe's does: real
HTTP in, a committed row, a task across a process boundary, an email out of a real SMTP
connection. Both start once per session, after the test database exists, and stop
before it is dropped.

Every response read through `KanriWeb` with a status of 500 or more is added to the
tally's `responses_5xx`, whichever test sent it.
"""

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.urls import reverse

from automations.triggers.stripe_event import INDEX_TTL
from integrations.stripe_events import sign
from tests.conftest import (
    CLOSED_PORT_URL,
    WEBHOOK_SECRET,
    free_port,
    start_process,
    test_database_url,
    wait_until,
)
from tests.fakes.smtp import SmtpSink
from tests.reliability.stack import descendants
from tests.reliability.tally import tally

__all__ = ["kanri_web", "served"]

WEB_WORKERS = 2
WEB_THREADS = 2


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class KanriWeb:
    """The running server: its address, the mail it sent, and ways to post to it."""

    def __init__(self, port, smtp, logs):
        self.host, self.port, self.smtp, self.logs = "127.0.0.1", port, smtp, logs
        self.url = f"http://{self.host}:{port}"

    def _seen(self, status):
        if status >= 500:
            tally.add("responses_5xx")
        return status

    def request(self, path, body=b"", headers=None, method="POST"):
        """Send one HTTP request (Content-Length set from `body`) and return the Response."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        return Response(self._seen(answer.status), dict(answer.getheaders()), data)

    def raw(self, data, half_close=False):
        """Send raw bytes on one connection; return the first Response read back.

        For what http.client will not send: a Content-Length that lies, a chunked body.
        With `half_close`, the client stops sending after `data` (a body cut short).
        """
        with socket.create_connection((self.host, self.port), timeout=30) as s:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            answer = http.client.HTTPResponse(s)
            answer.begin()
            body = answer.read()
        return Response(self._seen(answer.status), dict(answer.getheaders()), body)

    def log_text(self):
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}" for path in self.logs
        )


@pytest.fixture(scope="session")
def kanri_web(django_db_setup, tmp_path_factory):
    """gunicorn serving Kanri and a qcluster working its queue, on the test database, and
    the SMTP server their mail goes to."""
    logs_dir = tmp_path_factory.mktemp("kanri_web")
    smtp = SmtpSink().start()
    env = {
        **os.environ,
        "ENV_FILE": "",
        "DEBUG": "off",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": settings.SECRET_KEY,  # django-q2 signs task packages with it
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        # A queue of this session's own: nothing left in Redis by another run is worked.
        "QUEUE_NAME": f"kanri-web-{os.getpid()}",
        # The mirror's sync is not what these tests watch: it fails at once, and waits.
        "STRIPE_API_HOST": CLOSED_PORT_URL,
        "EMAIL_URL": smtp.url,
        "SLACK_API_URL": CLOSED_PORT_URL + "/api/",
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "LOG_LEVEL": "WARNING",
        "QUEUE_LOG_LEVEL": "WARNING",
        # This cluster outlives its tests, on the database other reliability tests' own
        # clusters use: its workers must not sweep (queue again onto this queue) their runs.
        "KANRI_SWEEP_SECONDS": "0",
    }
    port = free_port()
    web_log, cluster_log = logs_dir / "gunicorn.log", logs_dir / "qcluster.log"
    web = start_process(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={WEB_WORKERS}",
            f"--threads={WEB_THREADS}",
            "--worker-class=gthread",
            "--timeout=30",
            "--graceful-timeout=2",
        ],
        env=env,
        log_path=web_log,
        ready_port=port,
    )
    cluster = start_process(
        [sys.executable, "manage.py", "qcluster"], env=env, log_path=cluster_log
    )
    server = KanriWeb(port, smtp, [web_log, cluster_log])
    try:
        # Listening is the master; answering means a worker has loaded Django.
        wait_until(
            lambda: server.request("/stripe/webhook/", method="GET").status,
            timeout=30,
            message="gunicorn to answer",
        )
        yield server
    finally:
        # Before the test database is dropped: their connections would block it.
        for process in (cluster, web):
            _stop(process)
        smtp.stop()


def _stop(process, grace=2):
    """Stop a server and its children: politely, then with SIGKILL after `grace` seconds
    (a qcluster with a busy worker takes tens of seconds to stop, and nothing here needs
    a clean stop). The children die too, so none keeps a connection to the database."""
    children = descendants(process.pid)
    process.terminate()  # the main process only (django-q2 issue 346)
    try:
        process.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid in children:
        with contextlib.suppress(OSError):
            # Only if the pid still runs our command, not a process that reused it since.
            if process.args[-1].encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def _empty_database(attempts=5):
    """Flush the test database, again if PostgreSQL ends the flush as a deadlock.

    The session's cluster keeps working between tests (its scheduler and sweeper lock
    rows, and inserts lock the rows their foreign keys point to) while TRUNCATE locks
    every table: the two deadlocked here, and PostgreSQL ended the flush. Stopping the
    cluster before each flush instead cost ~10 s a test.
    """
    for attempt in range(attempts):
        try:
            # Sequences kept, as pytest-django keeps them: a reused primary key would
            # let the server's trigger index take a new workflow for the last one.
            call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
            return
        except (CommandError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)


class Served:
    """One test's view of the server: its webhook endpoint, and signed deliveries."""

    def __init__(self, web, endpoint):
        self.web = web
        self.endpoint = endpoint
        self.path = reverse("stripe_webhook", kwargs={"uuid": endpoint.djstripe_uuid})
        self.mail_before = len(web.smtp.messages)

    def signed(self, payload, *, timestamp=None, secret=WEBHOOK_SECRET):
        """Return (body bytes, headers) of a delivery signed as Stripe signs it."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return text.encode(), {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(text, secret, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    def deliver(self, payload, **kwargs):
        """POST a signed event to the webhook URL; return the Response."""
        body, headers = self.signed(payload, **kwargs)
        return self.web.request(self.path, body, headers)

    def deliver_at_once(self, body, headers, processes):
        """POST one delivery from `processes` OS processes at the same moment; return
        their statuses (counted in responses_5xx like any other)."""
        return [
            self.web._seen(status)
            for status in _deliver_at_once(self.web.url + self.path, body, headers, processes)
        ]

    def mail(self):
        """Messages the SMTP sink received since this test began: (recipients, message)."""
        return [(to, message) for _, to, message in self.web.smtp.messages[self.mail_before :]]

    @staticmethod
    def await_index():
        # The server's workers see a newly activated workflow within INDEX_TTL.
        time.sleep(INDEX_TTL + 0.3)


@pytest.fixture
def served(kanri_web, transactional_db, stripe_account):
    """The live server, with this test's committed Stripe account and webhook endpoint."""
    yield Served(kanri_web, stripe_account)
    # Emptied here, where a deadlock can be retried; pytest-django's own flush that
    # follows then finds every table empty and nothing in the cluster left to do.
    _empty_database()


# A sender run as its own process (stdlib only, so it starts in ~50 ms): it says "ready",
# waits for "go" on stdin, posts once and prints the status. The parent says "go" to all
# of them only when all are ready, so the posts land together.
_SENDER = """
import sys, json, urllib.request, urllib.error
url, body, headers = json.loads(sys.stdin.readline())
print("ready", flush=True)
sys.stdin.readline()
request = urllib.request.Request(url, data=body.encode("latin-1"), headers=headers)
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(response.status, flush=True)
except urllib.error.HTTPError as e:
    print(e.code, flush=True)
"""


def _deliver_at_once(url, body, headers, processes):
    senders = [
        subprocess.Popen(
            [sys.executable, "-c", _SENDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        order = json.dumps([url, body.decode("latin-1"), headers]) + "\n"
        for sender in senders:
            sender.stdin.write(order)
            sender.stdin.flush()
        for sender in senders:
            assert sender.stdout.readline().strip() == "ready"
        for sender in senders:
            sender.stdin.write("go\n")
            sender.stdin.flush()
        return [int(sender.stdout.readline()) for sender in senders]
    finally:
        for sender in senders:
            sender.stdin.close()
            sender.wait(timeout=30)
