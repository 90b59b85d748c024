"""The test world: fake Stripe, Slack and SMTP peers on loopback, and signed webhooks.

Nothing here reaches the internet: the Stripe SDK and slack-sdk point at a closed
loopback port unless a test asks for a fake.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import environ
import pytest
import stripe
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django_q.conf import Conf
from djstripe.models import Account, APIKey, WebhookEndpoint

from automations.triggers import forget_legacy_runs
from automations.triggers.stripe_event import index as trigger_index
from integrations import stripe_webhooks
from integrations.connections import forget_token
from integrations.stripe_client import get_client
from integrations.stripe_events import sign
from integrations.stripe_webhooks import endpoints as webhook_endpoints
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import SmtpSink

BASE_DIR = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "acct_kanri_local"
WEBHOOK_SECRET = "whsec_test_secret"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: connections are refused at once


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=15.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {message}")


RELIABILITY = Path(__file__).resolve().parent / "reliability"


def pytest_ignore_collect(collection_path, config):
    """The reliability layer (tests/reliability) runs only when asked for by path
    (`make reliability`): it needs PostgreSQL and Redis and kills processes."""
    if collection_path == RELIABILITY:
        asked = [Path(arg.split("::")[0]).resolve() for arg in config.args]
        if not any(path == RELIABILITY or RELIABILITY in path.parents for path in asked):
            return True
    return None


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgresql` (a PostgreSQL backend's own behaviour) run in the
    suite's PostgreSQL run; on SQLite they are deselected, and said so, not skipped."""
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    kept = [item for item in items if item.get_closest_marker("postgresql") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_sessionfinish(session, exitstatus):
    """In CI, a run that passed without running tests, or skipped any, is a failure."""
    if os.environ.get("KANRI_STRICT_RUN") and exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller counts every worker's results
        passed = len(reporter.stats.get("passed", []))
        skipped = len(reporter.stats.get("skipped", []))
        if passed == 0 or skipped:
            reporter.write_line(
                f"KANRI_STRICT_RUN: {passed} passed, {skipped} skipped; failing the run."
            )
            session.exitstatus = 1


# ---------------------------------------------------------------- isolation


@pytest.fixture(autouse=True)
def no_network(settings, monkeypatch):
    """Point every provider at a closed port and run django-q2 tasks inline."""
    settings.STRIPE_API_HOST = CLOSED_PORT_URL
    monkeypatch.setattr(stripe, "api_base", CLOSED_PORT_URL)  # dj-stripe's global client
    settings.SLACK_API_URL = CLOSED_PORT_URL + "/api/"
    settings.SLACK_BOT_TOKEN = "xoxb-test-token"
    get_client.cache_clear()
    monkeypatch.setattr(Conf, "SYNC", True)
    trigger_index.invalidate()  # rolled-back tests reuse primary keys
    forget_token()  # a rolled-back test's saved Slack token is gone
    forget_legacy_runs()
    webhook_endpoints.clear()  # rolled-back tests may reuse an endpoint's uuid
    monkeypatch.setattr(stripe_webhooks, "_held_seen_at", float("-inf"))  # ask for a batch
    yield
    get_client.cache_clear()
    # A request through LocaleMiddleware leaves its language active in this thread; the
    # next test must start in the site's language, as a new request would.
    translation.activate(settings.LANGUAGE_CODE)


# ---------------------------------------------------------------- fake Stripe


class FakeStripe:
    """Control of the fake Stripe API server (tests/fakes/stripe_api.py)."""

    def __init__(self, url):
        self.url = url

    def _call(self, method, path, data=None):
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def reset(self):
        self._call("POST", "/_config/kanri/reset", {})

    def requests(self, path=None, method=None):
        """Return the /v1 requests received, oldest first, as {method, path, params, …}."""
        query = "&".join(f"{k}={v}" for k, v in (("path", path), ("method", method)) if v)
        return self._call("GET", "/_config/kanri/requests" + (f"?{query}" if query else ""))

    def seed(self, *objects):
        """Serve these objects at GET /v1/…/<id> (for types localstripe lacks)."""
        self._call("POST", "/_config/kanri/objects", list(objects))

    def fail(self, path, *, method="POST", status=500, times=1, after=False, **error):
        """Make the next `times` matching requests fail with a Stripe error (`error` may
        set type, code, message). With `after`, the fake carries the request out and only
        the answer is lost, as when a response times out."""
        self._call(
            "POST",
            "/_config/kanri/faults",
            {
                "path": path,
                "method": method,
                "status": status,
                "times": times,
                "after": after,
                **error,
            },
        )


def start_process(argv, env=None, log_path=None, ready_port=None, timeout=20):
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    if ready_port:

        def listening():
            if process.poll() is not None:
                raise RuntimeError(f"{argv} exited with {process.returncode}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", ready_port)) == 0

        wait_until(listening, timeout=timeout, message=f"{argv} to listen")
    return process


def stop_process(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def stripe_api_server():
    port = free_port()
    process = start_process(
        [sys.executable, "-m", "tests.fakes.stripe_api", str(port)], ready_port=port
    )
    yield FakeStripe(f"http://127.0.0.1:{port}")
    stop_process(process)


@pytest.fixture
def fake_stripe(stripe_api_server, settings, monkeypatch):
    """An empty fake Stripe API that dj-stripe and Kanri's client both talk to."""
    stripe_api_server.reset()
    settings.STRIPE_API_HOST = stripe_api_server.url
    monkeypatch.setattr(stripe, "api_base", stripe_api_server.url)
    get_client.cache_clear()
    return stripe_api_server


@pytest.fixture
def stripe_account(db):
    """The Stripe account, API key and webhook endpoint rows a Kanri install has."""
    account = Account.objects.create(id=ACCOUNT_ID, livemode=False)
    APIKey.objects.create(
        secret=settings.STRIPE_SECRET_KEY,
        type="secret",
        livemode=False,
        djstripe_owner_account=account,
    )
    return WebhookEndpoint.objects.create(
        id="we_test",
        livemode=False,
        enabled_events=["*"],
        secret=WEBHOOK_SECRET,
        status="enabled",
        url="http://testserver/stripe/webhook/",
        djstripe_owner_account=account,
    )


@pytest.fixture
def webhook_url(stripe_account):
    return reverse(
        "djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": stripe_account.djstripe_uuid}
    )


@pytest.fixture
def post_event(client, webhook_url, django_capture_on_commit_callbacks):
    """POST a Stripe event to the real webhook URL, signed like Stripe signs it.

    Tasks queued on commit run inline (django-q2 sync mode), so when this returns the
    event has been processed as a worker would process it.
    """

    def post(
        event=None, *, body=None, secret=WEBHOOK_SECRET, signature=None, url=None, timestamp=None
    ):
        payload = body if body is not None else json.dumps(event)
        headers = {}
        if signature is not False:
            headers["Stripe-Signature"] = signature or sign(payload, secret, timestamp)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                url or webhook_url, data=payload, content_type="application/json", headers=headers
            )

    return post


# ---------------------------------------------------------------- Slack and mail


@pytest.fixture
def fake_slack(settings):
    slack = FakeSlack().start()
    settings.SLACK_API_URL = slack.base_url
    yield slack
    slack.stop()


@pytest.fixture
def smtp_server(settings):
    sink = SmtpSink().start()
    for key, value in environ.Env.email_url_config(sink.url).items():
        setattr(settings, key, value)
    yield sink
    sink.stop()


# ---------------------------------------------------------------- real cluster


def test_database_url():
    """Return a DATABASE_URL for the test database, for a process outside pytest."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def redis_url():
    """The Redis database for this test process: REDIS_URL's, one lower per xdist worker
    (gw1 uses 14 when REDIS_URL says 15), so parallel workers never purge each other's
    queue."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        base, _, db = url.rpartition("/")
        url = f"{base}/{int(db or 0) - int(worker[2:])}"
    return url


def redis_available():
    import redis

    try:
        return redis.from_url(redis_url(), socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture(params=["orm", "redis"])
def q_cluster(
    request, transactional_db, fake_stripe, smtp_server, fake_slack, monkeypatch, tmp_path
):
    """A real `manage.py qcluster` process on the test database, with the ORM or Redis broker.

    This test process enqueues through the same broker, so tasks cross a real process
    boundary exactly as they do in production.
    """
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis

    from integrations import queue

    kind = request.param
    env = {
        **os.environ,
        "DEBUG": "on",
        "SECRET_KEY": settings.SECRET_KEY,  # django-q2 signs task packages with it
        "DATABASE_URL": test_database_url(),
        "STRIPE_API_HOST": fake_stripe.url,
        "EMAIL_URL": smtp_server.url,
        "SLACK_API_URL": fake_slack.base_url,
        "SLACK_BOT_TOKEN": settings.SLACK_BOT_TOKEN,
        "QUEUE_NAME": Conf.PREFIX,
        "REDIS_URL": "",
        "QUEUE_LOG_LEVEL": "INFO",
    }
    if kind == "redis":
        if not redis_available():
            pytest.skip(f"Redis is not reachable at {redis_url()}")
        env["REDIS_URL"] = redis_url()
        monkeypatch.setattr(Conf, "REDIS", redis_url())
        broker = Redis(list_key=Conf.CLUSTER_NAME)
        broker.purge_queue()
    else:
        monkeypatch.setattr(Conf, "ORM", "default")
        broker = ORM(list_key=Conf.CLUSTER_NAME)
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(queue, "_broker", broker)
    monkeypatch.setattr(queue, "_broker_pid", os.getpid())

    log_path = tmp_path / "qcluster.log"
    process = start_process([sys.executable, "manage.py", "qcluster"], env=env, log_path=log_path)
    yield process
    stop_process(process)
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(log_path.read_text())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# ---------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium, never a downloaded one, with its calls home switched off."""
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": [
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def screenshots():
    """Where browser tests leave screenshots for people to look at (git-ignored)."""
    path = BASE_DIR / "var" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
