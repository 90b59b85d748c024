"""webhook.post: signed JSON to a receiver, never to a private address, capped in the audit.

The receiver is a real HTTP server on loopback. Loopback is exactly what the action
refuses, so the success path opens one port with KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS,
which only counts with DEBUG on (pytest-django runs tests with DEBUG off: the blocking
tests see the production rules).
"""

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from automations.models import Run, RunStep, Workflow
from integrations import webhook_actions
from integrations.base import ActionError, StepCall
from integrations.registry import get_action
from integrations.webhook_actions import PostWebhook, verify_signature
from tests.builders import create_workflow, event, payment_intent_dict

SECRET = "kanri-webhook-test-secret"
CALL = StepCall(idempotency_key="kanri-1-2-hook")


class Receiver:
    """A loopback HTTP server that records each request and answers as told."""

    def __init__(self):
        self.requests = []
        self.answers = []  # (status, headers, body bytes, delay seconds), used in order
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self):
        return self.server.server_address[1]

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, status=200, headers=None, body=b"ok", delay=0):
        self.answers.append((status, headers or {}, body, delay))

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers, answer, delay = (
                    receiver.answers.pop(0) if receiver.answers else (200, {}, b"ok", 0)
                )
                if delay:
                    receiver.release.wait(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                # Kanri may stop reading at its cap, or time out.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(answer)

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def receiver():
    server = Receiver()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def webhook_settings(settings):
    settings.KANRI_WEBHOOK_SIGNING_SECRET = SECRET
    settings.KANRI_WEBHOOK_CONNECT_TIMEOUT = 2
    settings.KANRI_WEBHOOK_READ_TIMEOUT = 2
    settings.KANRI_WEBHOOK_MAX_RESPONSE_BYTES = 64
    settings.KANRI_WEBHOOK_ALLOW_HTTP = False
    settings.KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS = []
    return settings


@pytest.fixture
def allowed(webhook_settings, receiver):
    """Development mode with the receiver's one port opened (test-only)."""
    webhook_settings.DEBUG = True
    webhook_settings.KANRI_WEBHOOK_ALLOW_HTTP = True
    webhook_settings.KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS = [receiver.port]
    return receiver


def post(url, payload=None):
    action = PostWebhook()
    request = action.prepare({"url": url, "payload": payload or {"id": "evt_1"}}, CALL)
    return action.send(request, CALL)


def refused(url, payload=None):
    with pytest.raises(ActionError) as caught:
        post(url, payload)
    return caught.value


# ---------------------------------------------------------------- the success path


def test_it_posts_signed_json_that_the_receiver_can_verify(allowed):
    output = post(allowed.url(), {"charge": "ch_1", "note": "返金 🎌", "amount": 1500})

    [received] = allowed.requests
    body = received["body"]
    assert json.loads(body) == {"charge": "ch_1", "note": "返金 🎌", "amount": 1500}
    assert body == '{"charge":"ch_1","note":"返金 🎌","amount":1500}'.encode()
    headers = received["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Kanri-Idempotency-Key"] == "kanri-1-2-hook"
    assert headers["User-Agent"] == "Kanri-Webhook/1"
    assert verify_signature(headers["Kanri-Signature"], body, SECRET) is True
    assert {k: v for k, v in output.items() if k != "headers"} == {
        "status": 200,
        "url": allowed.url(),
        "redirects": [],
        "body": "ok",
        "truncated": False,
    }
    # BaseHTTPRequestHandler also sends Server: only the safe headers are kept.
    assert set(output["headers"]) == {"content-length", "date"}
    assert output["headers"]["content-length"] == "2"


def test_the_signature_is_stripes_scheme_over_timestamp_and_body(allowed):
    post(allowed.url())

    [received] = allowed.requests
    header, body = received["headers"]["Kanri-Signature"], received["body"]
    items = dict(part.split("=", 1) for part in header.split(","))
    assert set(items) == {"t", "v1"}
    expected = hmac.new(
        SECRET.encode(), f"{items['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert items["v1"] == expected
    assert abs(int(items["t"]) - time.time()) < 60


def test_a_signature_with_another_secret_a_changed_body_or_an_old_timestamp_fails():
    body = b'{"id":"evt_1"}'
    now = 1_800_000_000
    header = webhook_actions.sign(body, SECRET, now)

    assert verify_signature(header, body, SECRET, now=now) is True
    assert verify_signature(header, body, "other-secret", now=now) is False
    assert verify_signature(header, b'{"id":"evt_2"}', SECRET, now=now) is False
    assert verify_signature(header, body, SECRET, now=now + 301) is False
    assert verify_signature("v1=abc", body, SECRET, now=now) is False
    assert verify_signature("", body, SECRET, now=now) is False


def test_the_answer_kept_in_the_audit_is_cut_to_the_byte_cap_with_safe_headers_only(allowed):
    allowed.answer(
        200,
        {"Content-Type": "text/plain", "Set-Cookie": "session=secret", "X-Request-Id": "r1"},
        b"x" * 10_000,
    )

    output = post(allowed.url())

    assert output["body"] == "x" * 64
    assert output["truncated"] is True
    output["headers"].pop("date")  # BaseHTTPRequestHandler's own
    assert output["headers"] == {
        "content-type": "text/plain",
        "content-length": "10000",
        "x-request-id": "r1",
    }


def test_a_redirect_to_an_allowed_address_is_followed_with_the_same_signed_post(allowed):
    allowed.answer(307, {"Location": "/moved"})

    output = post(allowed.url())

    assert [r["path"] for r in allowed.requests] == ["/hook", "/moved"]
    assert allowed.requests[0]["body"] == allowed.requests[1]["body"]
    assert verify_signature(
        allowed.requests[1]["headers"]["Kanri-Signature"], allowed.requests[1]["body"], SECRET
    )
    assert output["redirects"] == [{"status": 307, "location": allowed.url("/moved")}]
    assert output["url"] == allowed.url("/moved")


def test_redirects_are_followed_at_most_three_times(allowed):
    for _ in range(4):
        allowed.answer(302, {"Location": "/again"})

    error = refused(allowed.url())

    assert error.permanent is True
    assert "more than 3 times" in error.message
    assert len(allowed.requests) == 4


# ---------------------------------------------------------------- blocked addresses


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://127.1.2.3:8443/hook",
        "https://10.0.0.1/hook",
        "https://172.16.5.4/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data/",  # AWS, GCP and Azure metadata
        "https://100.100.100.200/latest/meta-data/",  # Alibaba Cloud metadata (CG-NAT)
        "https://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://localhost/hook",  # a name that resolves to loopback
        "https://2130706433/hook",  # 127.0.0.1 written as one number
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused_after_resolution(
    webhook_settings, url
):
    error = refused(url)

    assert error.permanent is True
    assert error.message.startswith("Webhook blocked_address")


def test_a_name_resolving_to_loopback_is_refused_even_on_a_listening_port(
    webhook_settings, receiver
):
    error = refused(f"https://localhost:{receiver.port}/hook")

    assert error.message.startswith("Webhook blocked_address")
    assert receiver.requests == []


def test_the_loopback_port_allowance_is_ignored_with_debug_off(webhook_settings, receiver):
    webhook_settings.DEBUG = False
    webhook_settings.KANRI_WEBHOOK_ALLOW_HTTP = True
    webhook_settings.KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS = [receiver.port]

    error = refused(receiver.url())

    assert error.permanent is True
    assert "https is required" in error.message
    webhook_settings.KANRI_WEBHOOK_ALLOW_HTTP = False
    error = refused(f"https://127.0.0.1:{receiver.port}/hook")
    assert error.message.startswith("Webhook blocked_address")
    assert receiver.requests == []


def test_the_loopback_allowance_opens_only_its_own_port(allowed):
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        error = refused(f"http://127.0.0.1:{other.getsockname()[1]}/hook")
    finally:
        other.close()

    assert error.message.startswith("Webhook blocked_address")


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/internal",
        "http://[::1]:{other}/hook",
        "http://localhost:{other}/hook",
        "http://127.0.0.1:{other}/admin",
    ],
)
def test_a_redirect_from_an_allowed_receiver_to_a_blocked_address_is_refused(allowed, location):
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen()
    other = target.getsockname()[1]
    allowed.answer(302, {"Location": location.format(other=other)})
    try:
        error = refused(allowed.url())
    finally:
        target.close()

    assert error.permanent is True
    assert error.message.startswith("Webhook blocked_address")
    assert len(allowed.requests) == 1


def test_every_hop_must_be_https_in_production_even_with_the_http_flag(webhook_settings):
    # send() checks each hop with url_problem before following it.
    webhook_settings.DEBUG = False
    webhook_settings.KANRI_WEBHOOK_ALLOW_HTTP = True

    assert webhook_actions.url_problem("http://example.com/hook") == "https is required"
    assert webhook_actions.url_problem("https://example.com/hook") is None
    webhook_settings.DEBUG = True
    assert webhook_actions.url_problem("http://example.com/hook") is None


# ---------------------------------------------------------------- config checks


def test_the_editor_refuses_http_references_and_credentials_in_the_url(webhook_settings):
    check = get_action("webhook.post").check

    assert check({"url": "http://example.com/h", "payload": {}})[0] == {
        "url": ["This URL cannot be used: https is required."]
    }
    assert "url" in check({"url": "https://{{trigger.id}}.example.com/", "payload": {}})[0]
    assert "url" in check({"url": "https://user:pw@example.com/", "payload": {}})[0]
    assert "url" in check({"url": "ftp://example.com/", "payload": {}})[0]
    assert check({"url": "https://example.com/h"}) == (
        {},
        {"url": "https://example.com/h", "payload": {}},
    )
    assert check({"url": "https://example.com/h", "payload": [1, 2]})[0] == {
        "payload": ["The body must be a JSON object."]
    }
    errors, cleaned = check({"url": "https://example.com/h", "payload": {"a": "{{trigger.id}}"}})
    assert (errors, cleaned) == (
        {},
        {"url": "https://example.com/h", "payload": {"a": "{{trigger.id}}"}},
    )


def test_without_a_signing_secret_nothing_is_sent(webhook_settings):
    webhook_settings.KANRI_WEBHOOK_SIGNING_SECRET = ""

    with pytest.raises(ActionError) as caught:
        PostWebhook().prepare({"url": "https://example.com/", "payload": {}}, CALL)

    assert caught.value.permanent is True
    assert "KANRI_WEBHOOK_SIGNING_SECRET" in caught.value.message


def test_the_request_kept_in_the_audit_holds_neither_secret_nor_signature(webhook_settings):
    request = PostWebhook().prepare({"url": "https://example.com/h", "payload": {"a": 1}}, CALL)

    assert request == {
        "url": "https://example.com/h",
        "headers": {"Content-Type": "application/json", "Kanri-Idempotency-Key": "kanri-1-2-hook"},
        "body": {"a": 1},
    }


# ---------------------------------------------------------------- errors


def test_a_slow_receiver_is_a_read_timeout_of_unknown_outcome(allowed, webhook_settings):
    webhook_settings.KANRI_WEBHOOK_READ_TIMEOUT = 0.3
    allowed.answer(200, delay=5)

    error = refused(allowed.url())

    assert (error.permanent, error.unknown) == (False, True)
    assert error.message.startswith("Webhook read_timeout")


def test_a_run_whose_receiver_timed_out_is_held_and_not_posted_again(
    allowed, webhook_settings, stripe_account, post_event
):
    from automations.tasks import retry_due_runs

    webhook_settings.KANRI_WEBHOOK_READ_TIMEOUT = 0.3
    hook_workflow(allowed.url())
    allowed.answer(200, delay=2)

    post_event(event("payment_intent.succeeded", payment_intent_dict(150000, "usd")))

    run = Run.objects.get()
    assert (run.status, run.hold_reason) == (Run.Status.HELD, Run.HoldReason.OUTCOME_UNKNOWN)
    [row] = run.steps.all()
    assert (row.status, row.attempt) == (RunStep.Status.UNKNOWN, 1)
    assert row.error.startswith("Webhook read_timeout")
    assert retry_due_runs() == 0
    assert len(allowed.requests) == 1


def test_timeouts_and_unreachable_receivers_are_transient_and_tls_failures_permanent():
    assert webhook_actions.classify(requests.ConnectTimeout("x")).permanent is False
    assert webhook_actions.classify(requests.ReadTimeout("x")).permanent is False
    assert webhook_actions.classify(requests.ReadTimeout("x")).unknown is True
    assert webhook_actions.classify(requests.ConnectTimeout("x")).unknown is False
    assert webhook_actions.classify(requests.ConnectionError("refused")).unknown is False
    assert webhook_actions.classify(requests.ConnectionError("refused")).permanent is False
    assert webhook_actions.classify(requests.exceptions.SSLError("bad cert")).permanent is True
    assert webhook_actions.classify(requests.exceptions.TooManyRedirects()).permanent is True


def test_a_refused_connection_is_transient(allowed, webhook_settings):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    webhook_settings.KANRI_WEBHOOK_ALLOW_LOOPBACK_PORTS = [port]

    error = refused(f"http://127.0.0.1:{port}/hook")

    assert error.permanent is False
    assert error.message.startswith("Webhook unreachable")


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (429, {"Retry-After": "7"}, False, 7),
        (503, {"Retry-After": "120"}, False, 120),
        (500, {}, False, None),
        (429, {"Retry-After": "999999"}, False, 3600),
        (408, {}, False, None),
        (400, {"Retry-After": "7"}, True, None),
        (404, {}, True, None),
        (410, {}, True, None),
    ],
)
def test_answers_are_classified(allowed, status, headers, permanent, retry_after):
    allowed.answer(status, headers, b"no " * 100)

    error = refused(allowed.url())

    assert (error.permanent, error.retry_after) == (permanent, retry_after)
    assert error.message.startswith(f"Webhook answered HTTP {status}: no no")
    assert len(error.message) < 250  # the answer is cut in the audit's error too


# ---------------------------------------------------------------- in a run


HOOK_STEP = {"name": "hook", "kind": "webhook.post", "config": {"payload": {}}}


def hook_workflow(url):
    step = {
        **HOOK_STEP,
        "config": {
            "url": url,
            "payload": {
                "intent": "{{trigger.data.object.id}}",
                "amount": "{{trigger.data.object.amount}}",
            },
        },
    }
    return create_workflow(
        {
            "name": "Notify the warehouse",
            "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
            "conditions": [],
            "steps": [step],
        },
        status=Workflow.Status.ACTIVE,
    )


def test_a_run_posts_once_and_keeps_the_capped_answer_in_its_step_row(
    allowed, stripe_account, post_event
):
    hook_workflow(allowed.url())
    intent = payment_intent_dict(150000, "usd")
    allowed.answer(201, {"Content-Type": "application/json"}, b'{"received": true}' * 10)

    post_event(event("payment_intent.succeeded", intent))

    run = Run.objects.get()
    assert run.status == Run.Status.SUCCEEDED
    [received] = allowed.requests
    assert json.loads(received["body"]) == {"intent": intent["id"], "amount": 150000}
    assert received["headers"]["Kanri-Idempotency-Key"] == f"kanri-{run.workflow_id}-{run.pk}-hook"
    [row] = run.steps.all()
    assert row.status == RunStep.Status.SUCCEEDED
    assert row.input["body"] == {"intent": intent["id"], "amount": 150000}
    assert "Kanri-Signature" not in row.input["headers"]
    assert row.output["status"] == 201
    assert row.output["body"] == ('{"received": true}' * 10)[:64]
    assert row.output["truncated"] is True


def test_a_webhook_cut_off_mid_send_is_not_resent_and_shows_outcome_unknown(
    allowed, stripe_account, post_event, django_capture_on_commit_callbacks
):
    from automations.tasks import retry_due_runs
    from tests.test_resume import cut_off, lease_runs_out, rows

    hook_workflow(allowed.url())
    intent = payment_intent_dict(150000, "usd")

    run = cut_off(post_event, PostWebhook, intent)
    assert rows(run) == [("hook", 1, "started", "")]
    lease_runs_out(run)
    with django_capture_on_commit_callbacks(execute=True):
        assert retry_due_runs() == 1

    run.refresh_from_db()
    assert (run.status, run.hold_reason) == (Run.Status.HELD, Run.HoldReason.OUTCOME_UNKNOWN)
    assert rows(run) == [("hook", 1, "unknown", "")]
    assert len(allowed.requests) == 1  # never resent by itself
    assert PostWebhook.repeatable() is False


def test_a_blocked_target_fails_the_run_at_once_without_retrying(
    webhook_settings, stripe_account, post_event
):
    hook_workflow("https://169.254.169.254/latest/meta-data/")

    post_event(event("payment_intent.succeeded", payment_intent_dict(1000, "usd")))

    run = Run.objects.get()
    assert run.status == Run.Status.FAILED
    [row] = run.steps.all()
    assert row.status == RunStep.Status.FAILED
    assert row.error.startswith("Webhook blocked_address")
