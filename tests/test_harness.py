"""The local peers the suite relies on behave like the real services."""

import pytest
from django.conf import settings
from django.core.mail import send_mail
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


def test_django_mail_reaches_the_local_smtp_server(smtp_server):
    sent = send_mail(
        "ご注文ありがとうございます",
        "山田様\n返金が完了しました。",
        "ショップ <shop@example.test>",
        ["山田 太郎 <taro@example.test>"],
    )

    assert sent == 1
    sender, recipients, message = smtp_server.messages[0]
    assert (sender, recipients) == ("shop@example.test", ["taro@example.test"])
    assert message["Subject"] == "ご注文ありがとうございます"
    assert message.get_content() == "山田様\n返金が完了しました。\n"


def test_slack_sdk_posts_to_the_fake_slack_through_base_url(fake_slack):
    client = WebClient(token=settings.SLACK_BOT_TOKEN, base_url=settings.SLACK_API_URL)

    response = client.chat_postMessage(channel="C0OPS", text="hello <!here>")

    assert response["ok"] is True
    assert fake_slack.messages() == [{"channel": "C0OPS", "text": "hello <!here>"}]
    assert fake_slack.calls[0]["auth"] == "Bearer xoxb-test-token"


def test_the_fake_slack_fails_like_slack_when_told_to(fake_slack):
    client = WebClient(token="xoxb-test-token", base_url=fake_slack.base_url)
    fake_slack.fail_next("channel_not_found")

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C0GONE", text="hi")

    assert caught.value.response["error"] == "channel_not_found"
