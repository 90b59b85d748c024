"""Hostile and odd input at the Stripe webhook: always a JSON 4xx, never a 500, never lost.

Every request that names a known endpoint and carries a signature header leaves a
delivery row: valid=False with the reason when refused. Through Django's test client;
tests/reliability/test_webhook_inputs.py sends the same through a real server.
"""

import json
import time

import pytest
from django.core import mail
from djstripe.models import WebhookEventTrigger

from automations.models import Run
from automations.templates import personalise_large_orders
from integrations.stripe_events import sign
from integrations.stripe_webhooks import MAX_DEPTH
from tests.builders import create_workflow, event, mail_ops_workflow, payment_intent_dict, random_id
from tests.conftest import WEBHOOK_SECRET

JSON = "application/json; charset=utf-8"


def mail_workflow(event_type, body="Object: {{trigger.data.object.id}}\n"):
    return mail_ops_workflow(event_type, body=body)


@pytest.fixture
def send(client, webhook_url, django_capture_on_commit_callbacks):
    """POST raw bytes to the webhook, signed over `signed` (default: the body itself)."""

    def post(body, *, content_type=JSON, signed=None, timestamp=None, **extra):
        if isinstance(body, str):
            body = body.encode()
        text = (signed if signed is not None else body).decode("utf-8", "replace")
        headers = {"Stripe-Signature": sign(text, WEBHOOK_SECRET, timestamp)}
        with django_capture_on_commit_callbacks(execute=True):
            response = client.generic(
                "POST", webhook_url, body, content_type=content_type, headers=headers, **extra
            )
        assert response.status_code < 500
        assert response["Content-Type"] == "application/json"
        return response

    return post


def only_delivery():
    return WebhookEventTrigger.objects.get()


def nested(depth):
    """A customer event whose object holds `depth` levels in all (the event is level 1)."""
    inner = "[" * (depth - 3) + "]" * (depth - 3)  # event > data > object > lists
    text = json.dumps(event("customer.created", {"id": "cus_deep", "object": "customer"}))
    return text.replace('"object": "customer"', f'"object": "customer", "deep": {inner}')


# ---------------------------------------------------------------- deep JSON


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_correctly_signed_body_nested_a_thousand_deep_is_refused_and_kept(send, depth):
    body = nested(depth)

    response = send(body)

    assert response.status_code == 400
    assert response.json() == {"error": f"Malformed JSON: nested deeper than {MAX_DEPTH} levels"}
    delivery = only_delivery()
    assert (delivery.valid, delivery.body) == (False, body)
    assert delivery.exception == f"Malformed JSON: nested deeper than {MAX_DEPTH} levels"


def test_a_body_nested_just_past_the_cap_is_refused_and_one_at_the_cap_is_accepted(send):
    too_deep, deep_enough = nested(MAX_DEPTH + 1), nested(MAX_DEPTH)

    refused, accepted = send(too_deep), send(deep_enough)

    assert (refused.status_code, accepted.status_code) == (400, 200)
    assert list(WebhookEventTrigger.objects.order_by("pk").values_list("valid", "body")) == [
        (False, too_deep),
        (True, deep_enough),
    ]


# ---------------------------------------------------------------- size and length


def test_a_body_over_the_limit_is_refused_unread_and_its_delivery_kept(send, settings):
    settings.STRIPE_WEBHOOK_MAX_BYTES = 2000
    body = json.dumps(event("customer.created", {"id": "cus_big", "note": "x" * 3000}))

    response = send(body)

    assert response.status_code == 413
    assert response.json() == {"error": "Body larger than 2000 bytes"}
    delivery = only_delivery()
    assert (delivery.valid, delivery.body, delivery.exception) == (
        False,
        "",
        "Body larger than 2000 bytes",
    )
    assert delivery.headers["Content-Length"] == str(len(body))


def test_a_body_without_a_content_length_is_refused_with_411(send):
    response = send(json.dumps(event("customer.created", {"id": "cus_1"})), CONTENT_LENGTH="")

    assert response.status_code == 411
    assert response.json() == {"error": "Content-Length required"}
    assert (only_delivery().valid, only_delivery().exception) == (False, "Content-Length required")


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_a_content_length_that_is_not_a_size_is_refused(send, length):
    response = send(json.dumps(event("customer.created", {"id": "cus_1"})), CONTENT_LENGTH=length)

    assert response.status_code == 400
    assert response.json() == {"error": "Invalid Content-Length"}
    assert only_delivery().valid is False


def test_a_content_length_shorter_than_the_body_reads_only_that_much_and_refuses_it(send):
    body = json.dumps(event("customer.created", {"id": "cus_1"}))

    response = send(body, CONTENT_LENGTH="40")

    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid signature: No signatures found")
    assert (only_delivery().valid, only_delivery().body) == (False, body[:40])


# ---------------------------------------------------------------- text


def test_japanese_and_emoji_text_is_accepted_and_stored_byte_for_byte(send):
    mail_workflow("customer.created", body="Name: {{trigger.data.object.name}}\n")
    sent = event(
        "customer.created", {"id": "cus_jp", "object": "customer", "name": "山田 花子 🎉🍣"}
    )
    body = json.dumps(sent, ensure_ascii=False)  # raw UTF-8, as Stripe sends it

    response = send(body)

    assert response.status_code == 200
    assert only_delivery().body == body
    run = Run.objects.get()
    assert run.snapshot["data"]["object"]["name"] == "山田 花子 🎉🍣"
    [message] = mail.outbox
    assert message.body == "Name: 山田 花子 🎉🍣\n"


def test_escaped_emoji_is_accepted_and_the_body_kept_as_sent(send):
    sent = event("customer.created", {"id": "cus_esc", "object": "customer", "name": "🎉 ﾃｽﾄ"})
    body = json.dumps(sent)  # \ud83c\udf89: a surrogate pair, one character

    response = send(body)

    assert response.status_code == 200
    assert "\\ud83c\\udf89" in only_delivery().body
    assert only_delivery().body == body


def test_a_body_that_is_not_utf8_is_refused_and_kept_with_replacement_characters(send):
    body = b'{"id": "evt_1", "object": "event", "name": "\xff\xfe caf\xe9"}'

    response = send(body)

    assert response.status_code == 400
    assert response.json() == {"error": "Malformed body: not UTF-8"}
    assert (
        only_delivery().body
        == '{"id": "evt_1", "object": "event", "name": "\ufffd\ufffd caf\ufffd"}'
    )


def test_a_raw_nul_byte_is_refused_and_kept_without_it(send):
    # PostgreSQL's text cannot hold NUL: storing it as sent would fail the row (a 500).
    body = b'{"id": "evt_1", "object": "event", "name": "a\x00b"}'

    response = send(body)

    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed JSON: Invalid control character")
    assert only_delivery().body == '{"id": "evt_1", "object": "event", "name": "a\ufffdb"}'


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\udfff"])
def test_an_escape_the_database_cannot_store_is_refused_and_kept(send, escape):
    # json.loads decodes them; PostgreSQL's jsonb refuses them when a run is created.
    sent = event("customer.created", {"id": "cus_1", "object": "customer", "name": "x"})
    body = json.dumps(sent).replace('"name": "x"', f'"name": "x{escape}"')
    mail_workflow("customer.created")

    response = send(body)

    assert response.status_code == 400
    assert response.json() == {"error": "Malformed JSON: a NUL or lone surrogate character"}
    assert (only_delivery().valid, only_delivery().body) == (False, body)
    assert not Run.objects.exists()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_number_json_does_not_have_is_refused(send, number):
    sent = event("customer.created", {"id": "cus_1", "object": "customer", "balance": 0})
    body = json.dumps(sent).replace('"balance": 0', f'"balance": {number}')
    mail_workflow("customer.created")

    response = send(body)

    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed JSON: ")
    assert not Run.objects.exists()


# ---------------------------------------------------------------- shapes


def test_an_unknown_event_type_is_acknowledged_recorded_and_starts_no_run(send):
    mail_workflow("customer.created")
    sent = event("kanri_future.thing.happened", {"id": "thing_1", "object": "thing"})

    response = send(json.dumps(sent))

    assert response.status_code == 200
    assert (only_delivery().valid, only_delivery().event_id) == (True, sent["id"])
    assert not Run.objects.exists()
    assert mail.outbox == []


@pytest.mark.parametrize("body", ["[]", '"event"', "1", "null", "true", "{}"])
def test_json_that_is_not_an_object_event_is_refused(send, body):
    response = send(body)

    assert response.status_code == 400
    assert response.json() == {"error": "Malformed event: the body is not a Stripe event object"}
    assert (only_delivery().valid, only_delivery().body) == (False, body)


@pytest.mark.parametrize("field", ["id", "type", "livemode", "data"])
def test_an_event_missing_a_field_is_refused(send, field):
    sent = event("customer.created", {"id": "cus_1", "object": "customer"})
    del sent[field]

    response = send(json.dumps(sent))

    assert response.status_code == 400
    assert response.json() == {"error": f"Malformed event: missing {field}"}
    assert only_delivery().valid is False


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        # A list as the type failed the index lookup (unhashable): a 500 before.
        ("type", ["customer.created"], "type is not a short string"),
        ("type", "", "type is not a short string"),
        ("id", 12345, "id is not a short string"),
        ("id", "evt_" + "x" * 300, "id is not a short string"),
        ("livemode", "false", "livemode is not true or false"),
        ("data", {"object": ["cus_1"]}, "data.object is not an object"),
        ("data", "cus_1", "data.object is not an object"),
    ],
)
def test_an_event_field_of_the_wrong_type_is_refused(send, field, value, error):
    mail_workflow("customer.created")
    sent = event("customer.created", {"id": "cus_1", "object": "customer"})
    sent[field] = value

    response = send(json.dumps(sent))

    assert response.status_code == 400
    assert response.json() == {"error": f"Malformed event: {error}"}
    assert only_delivery().valid is False
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "request_field",
    ["req_OLDAPI123", None, {"id": None, "idempotency_key": 42}, {"id": "req_1"}],
)
def test_an_event_whose_request_is_a_string_or_odd_still_starts_its_run(send, request_field):
    # Before API version 2017-05-25 Stripe sent `request` as the request id string.
    mail_workflow("customer.created")
    sent = event("customer.created", {"id": "cus_old", "object": "customer", "name": "Old"})
    sent["request"] = request_field

    response = send(json.dumps(sent))

    assert response.status_code == 200
    assert Run.objects.get().trigger_key == sent["id"]


def test_a_truncated_body_with_the_full_bodys_signature_is_refused_and_kept(send):
    full = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))
    cut = full[: len(full) // 2]

    response = send(cut, signed=full.encode())

    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid signature: No signatures found")
    assert (only_delivery().valid, only_delivery().body) == (False, cut)


def test_a_truncated_body_signed_as_it_is_is_refused_as_malformed_json(send):
    cut = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))[:-7]

    response = send(cut)

    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed JSON: ")
    assert (only_delivery().valid, only_delivery().body) == (False, cut)


# ---------------------------------------------------------------- content type


@pytest.mark.parametrize(
    ("content_type", "error"),
    [
        ("text/plain", "Unsupported content type 'text/plain': expected JSON"),
        (
            "application/x-www-form-urlencoded",
            "Unsupported content type 'application/x-www-form-urlencoded': expected JSON",
        ),
        ("", "Unsupported content type 'none': expected JSON"),
        ("application/json; charset=latin-1", "Unsupported charset 'latin-1': expected utf-8"),
    ],
)
def test_a_content_type_stripe_does_not_send_is_refused_with_415_and_kept(
    send, content_type, error
):
    # A correctly signed body: the content type alone is wrong, and the row shows it.
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))

    response = send(body, content_type=content_type)

    assert response.status_code == 415
    assert response.json() == {"error": error}
    assert (only_delivery().valid, only_delivery().body, only_delivery().exception) == (
        False,
        body,
        error,
    )


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=UTF-8"])
def test_json_with_or_without_its_charset_is_accepted(send, content_type):
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))

    assert send(body, content_type=content_type).status_code == 200


# ---------------------------------------------------------------- signatures


def test_a_replayed_delivery_is_acknowledged_and_kept_but_starts_no_second_run(
    client, webhook_url, django_capture_on_commit_callbacks
):
    mail_workflow("customer.created")
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))
    headers = {"Stripe-Signature": sign(body, WEBHOOK_SECRET)}  # one signature, sent twice

    statuses = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            statuses.append(
                client.post(webhook_url, body, content_type=JSON, headers=headers).status_code
            )

    assert statuses == [200, 200]
    assert list(WebhookEventTrigger.objects.values_list("valid", flat=True)) == [True, True]
    assert Run.objects.count() == 1
    assert len(mail.outbox) == 1


def test_a_stale_signature_is_refused_and_its_delivery_kept(send):
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))

    response = send(body, timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "Invalid signature: Timestamp outside the tolerance zone"
    )
    assert (only_delivery().valid, only_delivery().body) == (False, body)


@pytest.mark.parametrize("header", ["garbage", "t=,v1=", "t=abc,v1=00", "v1=" + "0" * 64, "t=1"])
def test_a_signature_header_that_does_not_parse_is_refused(client, webhook_url, header):
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))

    response = client.post(
        webhook_url, body, content_type=JSON, headers={"Stripe-Signature": header}
    )

    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid signature: ")
    assert only_delivery().valid is False


# ---------------------------------------------------------------- request metadata


@pytest.mark.parametrize("forwarded", ["not-an-ip", "999.1.1.1", "<script>", "1.2.3.4:5:6"])
def test_a_forged_x_forwarded_for_does_not_fail_the_row(send, forwarded):
    # remote_ip is an inet column on PostgreSQL: storing the header as sent failed (500).
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))

    response = send(body, HTTP_X_FORWARDED_FOR=forwarded)

    assert response.status_code == 200
    assert only_delivery().remote_ip == "127.0.0.1"  # the test client's REMOTE_ADDR


@pytest.mark.parametrize(
    ("forwarded", "stored"),
    [
        ("203.0.113.7, 10.0.0.1", "203.0.113.7"),
        ("203.0.113.7:443", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
    ],
)
def test_the_proxys_x_forwarded_for_names_the_client(send, forwarded, stored):
    body = json.dumps(event("customer.created", {"id": "cus_1", "object": "customer"}))

    send(body, HTTP_X_FORWARDED_FOR=forwarded)

    assert only_delivery().remote_ip == stored


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_method_other_than_post_gets_a_json_405(client, webhook_url, method):
    response = client.generic(method, webhook_url)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"error": "Method not allowed: Stripe POSTs webhooks"}


def test_ids_stay_unique_per_workflow_and_event_across_two_workflows(send):
    first, second = mail_workflow("customer.created"), mail_workflow("customer.created")
    sent = event("customer.created", {"id": random_id("cus"), "object": "customer"})

    send(json.dumps(sent))
    send(json.dumps(sent))

    assert sorted(Run.objects.values_list("workflow_id", "trigger_key")) == [
        (first.pk, sent["id"]),
        (second.pk, sent["id"]),
    ]
    assert len(mail.outbox) == 2


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("lots", "usd"), ({"value": 1}, "usd"), (10**30, "usd"), (200000, ["usd"]), (200000, None)],
)
def test_a_signed_event_with_odd_field_types_is_acknowledged_not_a_500(send, amount, currency):
    # Conditions read the payload's own fields; a list as the currency failed the money
    # comparison (AttributeError: a 500, and Stripe retrying for three days).
    create_workflow(personalise_large_orders(team="ops@example.test"), status="active")
    intent = {**payment_intent_dict(150000, "usd"), "amount": amount, "currency": currency}

    response = send(json.dumps(event("payment_intent.succeeded", intent)))

    assert response.status_code == 200
    assert only_delivery().valid is True
