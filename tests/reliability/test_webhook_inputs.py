"""Hostile input at the real webhook URL (gunicorn, DEBUG off): a JSON 4xx, never a 500.

Each case is one HTTP request as a client on the internet could send it, including what
http.client will not send (a Content-Length that lies, a chunked body), read back with a
plain HTTP parser. Every request that names the endpoint and carries a signature header
must leave its delivery row. tests/test_webhook_hostile.py has the same cases through
Django's test client, with the exact stored values.
"""

import json
import time

import pytest
from djstripe.models import WebhookEventTrigger

from automations.models import Run
from tests.builders import event, mail_ops_workflow, random_id
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster

MAX_BYTES = 1024 * 1024  # the server runs with the default STRIPE_WEBHOOK_MAX_BYTES
UNKNOWN_ENDPOINT = "/stripe/webhook/00000000-0000-4000-8000-000000000000/"


def customer_event(**fields):
    return event("customer.created", {"id": random_id("cus"), "object": "customer", **fields})


def raw_request(served, body, headers, content_length="auto"):
    """Bytes of an HTTP/1.1 POST to the webhook, with the Content-Length given (or none)."""
    lines = [f"POST {served.path} HTTP/1.1", f"Host: {served.web.host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if content_length == "auto":
        content_length = len(body)
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body, size=64 * 1024):
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def deep(levels):
    text = json.dumps(customer_event(note="x"))
    return text.replace('"note": "x"', '"note": ' + "[" * levels + "]" * levels)


# (name, build(served) -> Response, status, start of the error, kept as a row)
def _signed(served, text, **kwargs):
    return served.deliver(text, **kwargs)


def _with(served, text, **headers):
    body, signed_headers = served.signed(text)
    return served.web.request(served.path, body, {**signed_headers, **headers})


CASES = [
    (
        "deep JSON, correctly signed",
        lambda s: _signed(s, deep(1_000)),
        400,
        "Malformed JSON: nested deeper",
        True,
    ),
    (
        "deep JSON, 100,000 levels",
        lambda s: _signed(s, deep(100_000)),
        400,
        "Malformed JSON: nested deeper",
        True,
    ),
    (
        "deep JSON, forged signature",
        lambda s: _signed(s, deep(1_000), secret="whsec_forged"),
        400,
        "Invalid signature",
        True,
    ),
    (
        "huge body with its Content-Length",
        lambda s: _signed(s, json.dumps(customer_event(note="x" * (MAX_BYTES + 10)))),
        413,
        "Body larger than",
        True,
    ),
    (
        "huge body, chunked (no Content-Length)",
        lambda s: s.web.raw(
            raw_request(
                s,
                chunked(s.signed(json.dumps(customer_event(note="x" * (MAX_BYTES + 10))))[0]),
                {**s.signed("{}")[1], "Transfer-Encoding": "chunked"},
                content_length=None,
            )
        ),
        411,
        "Content-Length required",
        True,
    ),
    (
        "Content-Length shorter than the body",
        lambda s: s.web.raw(
            raw_request(s, *s.signed(json.dumps(customer_event())), content_length=60)
        ),
        400,
        "Invalid signature",
        True,
    ),
    (
        "Content-Length longer than the body, then the client stops sending",
        lambda s: s.web.raw(
            raw_request(s, *s.signed(json.dumps(customer_event())), content_length=100_000),
            half_close=True,
        ),
        400,
        "Truncated body",
        True,
    ),
    (
        "truncated body under the full body's signature",
        lambda s: s.web.request(
            s.path,
            json.dumps(customer_event()).encode()[:80],
            s.signed(json.dumps(customer_event()))[1],
        ),
        400,
        "Invalid signature",
        True,
    ),
    (
        "truncated body, signed as cut",
        lambda s: _signed(s, json.dumps(customer_event())[:-9]),
        400,
        "Malformed JSON",
        True,
    ),
    (
        "stale signature",
        lambda s: _signed(s, json.dumps(customer_event()), timestamp=int(time.time()) - 600),
        400,
        "Invalid signature: Timestamp outside",
        True,
    ),
    (
        "signature header that does not parse",
        lambda s: _with(s, json.dumps(customer_event()), **{"Stripe-Signature": "t=x,v1"}),
        400,
        "Invalid signature",
        True,
    ),
    (
        "no signature header",
        lambda s: _with(s, json.dumps(customer_event()), **{"Stripe-Signature": ""}),
        400,
        "Missing Stripe-Signature",
        False,
    ),
    (
        "text/plain",
        lambda s: _with(s, json.dumps(customer_event()), **{"Content-Type": "text/plain"}),
        415,
        "Unsupported content type",
        True,
    ),
    (
        "form encoded",
        lambda s: _with(s, "a=1&b=2", **{"Content-Type": "application/x-www-form-urlencoded"}),
        415,
        "Unsupported content type",
        True,
    ),
    (
        "JSON in latin-1",
        lambda s: _with(
            s, json.dumps(customer_event()), **{"Content-Type": "application/json; charset=latin-1"}
        ),
        415,
        "Unsupported charset",
        True,
    ),
    (
        "invalid UTF-8",
        lambda s: s.web.request(s.path, b'{"id": "\xff\xfe"}', {**s.signed("{}")[1]}),
        400,
        "Malformed body: not UTF-8",
        True,
    ),
    (
        "a raw NUL byte",
        lambda s: _signed(s, json.dumps(customer_event(name="a\x00b")).replace("\\u0000", "\x00")),
        400,
        "Malformed JSON: Invalid control",
        True,
    ),
    (
        "a \\u0000 escape",
        lambda s: _signed(s, json.dumps(customer_event(name="a\x00b"))),
        400,
        "Malformed JSON: a NUL",
        True,
    ),
    (
        "a lone surrogate escape",
        lambda s: _signed(s, json.dumps(customer_event(name="x")).replace('"x"', '"\\ud800"')),
        400,
        "Malformed JSON: a NUL",
        True,
    ),
    (
        "NaN",
        lambda s: _signed(s, json.dumps(customer_event(balance=float("nan")))),
        400,
        "Malformed JSON",
        True,
    ),
    (
        "1e400",
        lambda s: _signed(
            s, json.dumps(customer_event(balance=1)).replace('"balance": 1', '"balance": 1e400')
        ),
        400,
        "Malformed JSON",
        True,
    ),
    ("a JSON list", lambda s: _signed(s, "[1, 2, 3]"), 400, "Malformed event", True),
    ("a JSON string", lambda s: _signed(s, '"evt_1"'), 400, "Malformed event", True),
    ("an empty body", lambda s: _signed(s, ""), 400, "Malformed JSON", True),
    (
        "missing type",
        lambda s: _signed(
            s, json.dumps({k: v for k, v in customer_event().items() if k != "type"})
        ),
        400,
        "Malformed event: missing type",
        True,
    ),
    (
        "type is a list",
        lambda s: _signed(s, json.dumps({**customer_event(), "type": ["customer.created"]})),
        400,
        "Malformed event: type",
        True,
    ),
    (
        "data.object is a string",
        lambda s: _signed(s, json.dumps({**customer_event(), "data": {"object": "cus_1"}})),
        400,
        "Malformed event: data.object",
        True,
    ),
    (
        "a forged X-Forwarded-For",
        lambda s: _with(s, json.dumps(customer_event()), **{"X-Forwarded-For": "not-an-ip"}),
        200,
        None,
        True,
    ),
    ("GET", lambda s: s.web.request(s.path, method="GET"), 405, "Method not allowed", False),
    (
        "an endpoint that does not exist",
        lambda s: s.web.request(UNKNOWN_ENDPOINT, *s.signed(json.dumps(customer_event()))),
        404,
        "Unknown webhook endpoint",
        False,
    ),
]


def outcome(served, build, status, error, kept):
    """Send one case; return what differs from what it should get ({} if nothing)."""
    last = WebhookEventTrigger.objects.order_by("-pk").values_list("pk", flat=True).first()
    response = build(served)
    seen = {
        "status": response.status,
        "json": response.headers.get("Content-Type") == "application/json",
        "error": "",
    }
    if seen["json"] and error:
        seen["error"] = response.json().get("error", "")[: len(error)]
    rows = list(
        WebhookEventTrigger.objects.filter(pk__gt=last or 0).values_list("valid", "exception")
    )
    seen["rows"] = [(valid, reason[: len(error or "")]) for valid, reason in rows]
    wanted = {
        "status": status,
        "json": True,
        "error": error or "",
        "rows": ([(False, error)] if error else [(True, "")]) if kept else [],
    }
    return {key: (seen[key], wanted[key]) for key in wanted if seen[key] != wanted[key]}


def test_hostile_requests_get_a_json_4xx_and_leave_their_delivery(served, counts):
    # One test for all cases: each is one request, and a flush of the PostgreSQL test
    # database per case would cost more than the whole table.
    counts.add("bad_inputs_tried", len(CASES))

    wrong = {name: outcome(served, *case) for name, *case in CASES}

    assert {name: diff for name, diff in wrong.items() if diff} == {}


def mail_workflow(event_type):
    return mail_ops_workflow(event_type, body="Name: {{trigger.data.object.name}}\n")


def test_japanese_and_emoji_arrive_intact_in_the_row_the_run_and_the_email(served, counts):
    workflow = mail_workflow("customer.created")
    served.await_index()
    sent = customer_event(name="山田 花子 🎉🍣 ｶﾅ")
    body = json.dumps(sent, ensure_ascii=False)
    counts.add("bad_inputs_tried")
    counts.add("deliveries_sent")

    response = served.deliver(body)

    assert response.status == 200
    assert WebhookEventTrigger.objects.get().body == body
    run = wait_until(
        lambda: Run.objects.filter(workflow=workflow, status=Run.Status.SUCCEEDED).first(),
        timeout=30,
        message="the run to succeed",
    )
    counts.add("runs_expected")
    counts.add("runs_done", Run.objects.count())
    assert run.snapshot == sent
    [(_, message)] = wait_until(served.mail, timeout=15, message="the email")
    counts.add("side_effects_expected")
    counts.add("side_effects_observed", len(served.mail()))
    assert message.get_content() == "Name: 山田 花子 🎉🍣 ｶﾅ\n"


def test_an_unknown_event_type_is_acknowledged_and_kept_and_starts_nothing(served, counts):
    mail_workflow("customer.created")
    served.await_index()
    sent = event("kanri_future.thing.happened", {"id": "thing_1", "object": "thing"})
    counts.add("bad_inputs_tried")
    counts.add("deliveries_sent")

    response = served.deliver(sent)

    assert response.status == 200
    assert response.json()["received"] == sent["id"]
    assert list(WebhookEventTrigger.objects.values_list("valid", flat=True)) == [True]
    counts.add("runs_done", Run.objects.count())  # expected: none
    assert not Run.objects.exists()


def test_a_replayed_signature_is_acknowledged_and_kept_but_runs_once(served, counts):
    workflow = mail_workflow("customer.created")
    served.await_index()
    sent = customer_event(name="Replay")
    body, headers = served.signed(sent)
    counts.add("bad_inputs_tried")
    counts.add("deliveries_sent", 3)
    counts.add("duplicates_injected", 2)

    first = served.web.request(served.path, body, headers)
    wait_until(
        lambda: Run.objects.filter(workflow=workflow, status=Run.Status.SUCCEEDED).exists(),
        timeout=30,
        message="the first run",
    )
    replays = [served.web.request(served.path, body, headers) for _ in range(2)]

    assert [r.status for r in [first, *replays]] == [200, 200, 200]
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 3
    time.sleep(1)  # time for a wrongly started second run to show
    counts.add("runs_expected")
    counts.add("runs_done", Run.objects.count())
    counts.add("side_effects_expected")
    counts.add("side_effects_observed", len(served.mail()))
    assert Run.objects.count() == 1
    assert len(served.mail()) == 1
