"""A Kanri stack for the reliability layer: real processes that a test can break.

- a private `redis-server` on a free port (never the shared one), which a test may restart;
- a real `manage.py qcluster` on the test PostgreSQL database, which a test may kill -9
  (its workers, or the whole process tree) and start again;
- the fake Stripe (through a loopback proxy that can hold a request in flight), the fake
  Slack and the SMTP sink of tests/conftest.py, each able to hold a request for a while,
  so a worker can be killed while a refund, a post or a mail is on the wire.

The test process enqueues through the same private Redis, as the web process does.
A finding to know when writing a test here: kill -9 of an *idle* django-q2 worker wedges
the cluster. The idle worker blocks in `multiprocessing.Queue.get()` holding the queue's
read lock; killed there, the lock is never released and no worker takes a task again
(the sentinel replaces the dead worker, but the new one waits on the same lock). So the
tests kill the busy workers (the case of a worker dying mid-step), or the whole cluster.

Clocks are short by default (settings read from the environment, see .env.example);
a test that proves a production figure asks for the production clocks (`PRODUCTION`).
"""

import asyncio
import contextlib
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.db import connection
from django_q.conf import Conf

from automations.tasks import RUN_TASK
from tests.builders import create_workflow, event, payment_intent_dict
from tests.conftest import (
    free_port,
    start_process,
    stop_process,
    test_database_url,
    wait_until,
)
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import SmtpSink

__all__ = ["kanri", "private_redis", "quick_flush"]

# The engine's clocks for most tests: a dead worker's run comes back within ~3 s.
FAST = {
    "KANRI_RUN_LEASE_SECONDS": "2",
    "KANRI_HEARTBEAT_SECONDS": "0.5",
    "KANRI_SWEEP_SECONDS": "0.5",
    "KANRI_LOST_AFTER_SECONDS": "4",
    "KANRI_RETRY_DELAYS": "0.5,1,2,4",
}
# The shipped defaults (config/settings.py), for tests that measure what users get.
PRODUCTION = {
    "KANRI_RUN_LEASE_SECONDS": "30",
    "KANRI_HEARTBEAT_SECONDS": "10",
    "KANRI_SWEEP_SECONDS": "5",
    "KANRI_LOST_AFTER_SECONDS": "120",
    "KANRI_RETRY_DELAYS": "30,120,600,1800",
}


def require_production_shape():
    """The layer proves things about PostgreSQL and Redis; on anything else it fails."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.fail(
            "tests/reliability needs PostgreSQL: run it with "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> (got " + engine + ")",
            pytrace=False,
        )


def descendants(pid):
    """Return the pids of every process below `pid` (from /proc: Linux)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


@pytest.fixture(autouse=True, scope="session")
def quick_flush():
    """Between tests, empty only the tables a test wrote to.

    A test on a real cluster needs `transactional_db`, which empties the database after
    each test with one TRUNCATE of every table: ~150 tables (dj-stripe's), 5-7 s here,
    longer than most of these tests. Deleting the rows of the few tables that have any
    leaves the same empty database in well under a second. Django's foreign keys on
    PostgreSQL are deferrable, so the order of the deletes does not matter.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        quote = self.quote_name
        with self.connection.cursor() as cursor:
            cursor.execute(
                " UNION ALL ".join(
                    f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(t)})" for t in tables
                ),
                list(tables),
            )
            used = [row[0] for row in cursor.fetchall()]
        return ["SET CONSTRAINTS ALL DEFERRED"] + [f"DELETE FROM {quote(t)}" for t in used]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


# ---------------------------------------------------------------- Redis


class PrivateRedis:
    """A redis-server of this test's own, without persistence: a restart loses its lists."""

    def __init__(self, log_dir):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.process = start_process(
            argv, log_path=self.log_dir / f"redis-{self.starts}.log", ready_port=self.port
        )
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            stop_process(self.process)

    def restart(self, down_for=0.0):
        """Stop the server (every queued task in it is lost) and start it again."""
        self.stop()
        time.sleep(down_for)
        self.start()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


# ---------------------------------------------------------------- slow fakes


class _Stamped(list):
    def append(self, item):
        super().append({**item, "at": time.monotonic()})


class SlowSlack(FakeSlack):
    """The fake Slack, able to hold the next chat.postMessage calls before answering.

    A held call is still carried out (the message is posted) when the hold ends, even if
    the caller is gone: as Slack does when a client dies after sending.
    """

    def __init__(self):
        self.held, self.hold_for, self.arrived = 0, 0.0, 0
        super().__init__()
        self.calls = _Stamped()  # each call also says when it was handled ("at")

    def hold(self, seconds, times=1):
        with self.lock:
            self.held, self.hold_for = times, seconds

    def _handler(self):
        fake, base = self, super()._handler()

        class Handler(base):
            def do_POST(self):
                if self.path.endswith("/chat.postMessage"):
                    with fake.lock:
                        fake.arrived += 1
                        hold = fake.hold_for if fake.held else 0
                        fake.held = max(fake.held - 1, 0)
                    time.sleep(hold)
                # The worker may have been killed while we held its call.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().do_POST()

        return Handler


class SlowSmtp(SmtpSink):
    """The SMTP sink, able to hold the next deliveries (after DATA) before answering."""

    def __init__(self):
        super().__init__()
        self.held, self.hold_for, self.arrived = 0, 0.0, 0

    def hold(self, seconds, times=1):
        self.held, self.hold_for = times, seconds

    def down(self):
        """Close the port: connections are refused until `up()`."""
        self.stop()

    def up(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.start()

    async def handle_DATA(self, server, session, envelope):
        self.arrived += 1
        # Shielded: a server that has the whole message delivers it even if the client
        # dies before the reply, which is how a mail goes out twice (RFC 5321 §6.1).
        return await asyncio.shield(self._deliver(server, session, envelope))

    async def _deliver(self, server, session, envelope):
        if self.held:
            self.held -= 1
            await asyncio.sleep(self.hold_for)
        return await SmtpSink.handle_DATA(self, server, session, envelope)


class StripeProxy:
    """A loopback proxy in front of the fake Stripe that can hold matching requests.

    The fake Stripe carries a held request out when the hold ends, whether or not the
    caller is still there, so a worker killed mid-refund leaves a refund done at Stripe
    with its idempotency key: the resumed run must get that refund back, not a second.
    """

    def __init__(self, upstream):
        self.upstream = upstream
        self.holds = []  # [method, path prefix, seconds, times]
        self.arrived = []  # (method, path) of every request, in order
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def hold(self, path, seconds, method="POST", times=1):
        with self.lock:
            self.holds.append([method, path, seconds, times])

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _take_hold(self, method, path):
        with self.lock:
            self.arrived.append((method, path))
            for hold in self.holds:
                if hold[0] == method and path.startswith(hold[1]) and hold[3]:
                    hold[3] -= 1
                    return hold[2]
        return 0

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(proxy._take_hold(self.command, self.path.split("?")[0]))
                skip = {"host", "content-length", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body if self.command != "GET" else None,
                    method=self.command,
                    headers=headers,
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, answer, data = response.status, response.headers, response.read()
                except urllib.error.HTTPError as error:
                    status, answer, data = error.code, error.headers, error.read()
                try:
                    self.send_response(status)
                    for key, value in answer.items():
                        if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker was killed while we held its request

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *args):
                pass

        return Handler


# ---------------------------------------------------------------- the cluster


class Cluster:
    """`manage.py qcluster` as production runs it, which a test may kill and restart."""

    def __init__(self, env, log_dir):
        self.env, self.log_dir = env, log_dir
        self.process, self.starts = None, 0

    @property
    def log_path(self):
        return self.log_dir / f"qcluster-{self.starts}.log"

    def start(self):
        self.starts += 1
        self.process = start_process(
            # System checks are the suite's business; here they only slow each (re)start.
            [sys.executable, "manage.py", "qcluster", "--skip-checks"],
            env=self.env,
            log_path=self.log_path,
        )
        wait_until(
            lambda: "running." in self.log_path.read_text() or self._died(),
            timeout=30,
            message="the cluster to start",
        )
        assert self.process.poll() is None, self.log_path.read_text()
        return self

    def _died(self):
        if self.process.poll() is not None:
            raise AssertionError("qcluster exited:\n" + self.log_path.read_text())

    def workers(self):
        """Pids of the worker processes alive now (they log "ready for work at <pid>")."""
        pids = {int(p) for p in re.findall(r"ready for work at (\d+)", self._logs())}
        return sorted(pids & set(descendants(self.process.pid)))

    def _logs(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def busy_workers(self, func=RUN_TASK):
        """Pids of the workers carrying a task of `func` now: its "processing <task>" line
        has no "Processed … (<task>)" or "Failed … (<task>)" line after it.

        Only runs by default: a mirror sync batch is short, and a worker the log still
        shows on one may be back in the queue's get() when the signal lands, which
        wedges the cluster (see `kill_busy_workers`)."""
        logs, alive = self._logs(), set(self.workers())
        names = dict(re.findall(r"(Process-\w+) ready for work at (\d+)", logs))
        busy = []
        for name, pid in names.items():
            tasks = re.findall(rf"{name} processing (\S+) '{re.escape(func)}'", logs)
            if tasks and int(pid) in alive:
                last = logs.rindex(f"{name} processing {tasks[-1]} ")
                if f"({tasks[-1]})" not in logs[last:]:
                    busy.append(int(pid))
        return busy

    def kill_busy_workers(self):
        """kill -9 the workers carrying a task; the sentinel starts new ones. Return how many.

        Only busy ones: an idle django-q2 worker waits in the task queue's get() holding
        its lock, and killing it then leaves every other worker waiting forever (a
        multiprocessing.Queue property; found by this layer, see the module docstring).
        """
        pids = self.busy_workers()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)

    def kill_all(self):
        """kill -9 the whole cluster: main process, sentinel, workers, monitor, pusher."""
        pids = [self.process.pid, *descendants(self.process.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return len(pids)


class Kanri:
    """The stack a reliability test drives; see the module docstring."""

    def __init__(self, fake_stripe, redis, tmp_path):
        self.stripe = fake_stripe  # control of the fake Stripe itself (requests, faults)
        self.stripe_proxy = StripeProxy(fake_stripe.url)
        self.slack = SlowSlack().start()
        self.smtp = SlowSmtp().start()
        self.redis = redis
        self.tmp_path = tmp_path
        self.cluster = None

    def env(self, clocks, workers):
        return {
            **os.environ,
            "ENV_FILE": "",
            "DEBUG": "on",
            "SECRET_KEY": settings.SECRET_KEY,  # django-q2 signs task packages with it
            "DATABASE_URL": test_database_url(),
            "STRIPE_API_HOST": self.stripe_proxy.url,
            "EMAIL_URL": self.smtp.url,
            "SLACK_API_URL": self.slack.base_url,
            "SLACK_BOT_TOKEN": settings.SLACK_BOT_TOKEN,
            "QUEUE_NAME": Conf.PREFIX,
            "QUEUE_WORKERS": str(workers),
            "REDIS_URL": self.redis.url,
            "QUEUE_LOG_LEVEL": "INFO",
            **clocks,
        }

    def start_cluster(self, clocks=None, workers=3):
        self.cluster = Cluster(self.env(clocks or FAST, workers), self.tmp_path).start()
        return self.cluster

    def kill_database_connections(self):
        """Terminate every other session on the test database; return how many."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return len(cursor.fetchall())

    def logs(self):
        return "\n".join(
            p.read_text() for p in sorted(self.tmp_path.glob("qcluster-*.log")) if p.exists()
        )

    def close(self):
        if self.cluster and self.cluster.process.poll() is None:
            self.cluster.kill_all()  # a graceful stop costs seconds and proves nothing here
        self.slack.stop()
        self.smtp.stop()
        self.stripe_proxy.stop()


@pytest.fixture
def kanri(
    request, transactional_db, fake_stripe, stripe_account, private_redis, monkeypatch, tmp_path
):
    """A Kanri stack on PostgreSQL and a private Redis; `kanri.start_cluster()` starts
    the workers. The test process enqueues (webhooks, retries) through the same Redis."""
    from django_q.brokers.redis_broker import Redis

    from integrations import queue

    require_production_shape()
    monkeypatch.setattr(Conf, "REDIS", private_redis.url)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "SYNC", False)
    broker = Redis(list_key=Conf.CLUSTER_NAME)
    monkeypatch.setattr(queue, "_broker", broker)
    monkeypatch.setattr(queue, "_broker_pid", os.getpid())
    stack = Kanri(fake_stripe, private_redis, tmp_path)
    yield stack
    stack.close()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(stack.logs()[-20000:])


# ---------------------------------------------------------------- a workload to count

# One Slack post per run: the side effect the fakes count.
SLACK = {
    "name": "notify",
    "kind": "slack.post_message",
    "config": {"channel": "C0OPS", "text": "Paid {{trigger.data.object.id}}"},
}


def slack_workflow():
    """An active workflow posting one Slack message per payment_intent.succeeded event."""
    return create_workflow(
        {
            "name": "Post",
            "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
            "conditions": [],
            "steps": [SLACK],
        },
        status="active",
    )


def deliver(post_event, counts, n):
    """Post `n` payment_intent.succeeded events; count them and any 5xx; return them."""
    sent = [event("payment_intent.succeeded", payment_intent_dict(1000, "usd")) for _ in range(n)]
    statuses = [post_event(one).status_code for one in sent]
    counts.add("deliveries_sent", n)
    counts.add("responses_5xx", sum(1 for s in statuses if s >= 500))
    assert statuses == [200] * n
    return sent
