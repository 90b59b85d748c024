"""A provider error that may come after delivery is "outcome unknown", never a silent resend.

Refused connections and DNS failures prove nothing was sent: retried. A timeout or a
connection dropped after the request was written may follow a delivered message: the
run is held for a person (Slack, email, outgoing webhooks), while Stripe's idempotency
keys make a retry safe.
"""

import smtplib
import socket
import urllib.error

import pytest
from slack_sdk.errors import SlackApiError

from integrations import email_actions, slack_actions


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), False),
        (urllib.error.URLError(socket.gaierror(-2, "Name or service not known")), False),
        (TimeoutError("The read operation timed out"), True),
        (urllib.error.URLError(ConnectionResetError(104, "reset by peer")), True),
    ],
)
def test_slack_errors_say_whether_the_post_may_have_gone_out(error, unknown):
    classified = slack_actions.classify(error)

    assert (classified.permanent, classified.unknown) == (False, unknown)


def test_a_slack_api_answer_is_never_of_unknown_outcome():
    class Response(dict):
        status_code = 429
        headers = {"Retry-After": "3"}

    error = SlackApiError("ratelimited", Response(ok=False, error="ratelimited"))

    classified = slack_actions.classify(error)

    assert (classified.permanent, classified.unknown, classified.retry_after) == (False, False, 3)


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (ConnectionRefusedError(111, "Connection refused"), False),
        (smtplib.SMTPConnectError(421, b"busy"), False),
        (TimeoutError("timed out"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
    ],
)
def test_smtp_errors_say_whether_the_mail_may_have_been_accepted(error, unknown):
    classified = email_actions.classify(error)

    assert classified.unknown is unknown
    assert classified.permanent is False
