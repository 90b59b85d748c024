"""The Connections page: Slack's auth.test and Stripe's account, shown; Slack's token saved
in the admin (checked first, never shown back) and used by the Slack action at once; and
the page of messages the local Slack stand-in received."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from integrations.base import StepCall
from integrations.connections import Connection
from integrations.registry import get_action
from tests.admin_helpers import staff_user

PAGE = "/admin/integrations/connection/"
NEW_TOKEN = "xoxb-1234-5678-newtokenabcd"


@pytest.fixture
def superuser(db, django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.test", "pw")


@pytest.fixture
def ops(client, superuser):
    client.force_login(superuser)
    return client


def post_slack(text="Subscription sub_1 ended"):
    action = get_action("slack.post_message")()
    call = StepCall(idempotency_key="k")
    return action.send(action.prepare({"channel": "C0OPS", "text": text}, call), call)


def test_the_page_shows_the_slack_workspace_and_the_stripe_account_and_mode(
    ops, fake_slack, fake_stripe
):
    response = ops.get(PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    assert [c["method"] for c in fake_slack.calls] == ["auth.test"]
    assert fake_slack.calls[0]["auth"] == "Bearer xoxb-test-token"
    assert "workspace “Kanri local”, as “kanri”" in page
    assert "<code>xoxb-…oken</code>, SLACK_BOT_TOKEN (environment)" in page
    assert "account acct_kanri_local (“Kanri local”)" in page
    assert 'data-mode="test"' in page and "test mode" in page
    assert "<code>sk_test_…0000</code>, secret key" in page
    assert fake_stripe.requests(path="/v1/account", method="GET") != []
    assert "xoxb-test-token" not in page
    assert "sk_test_000000000000000000000000" not in page


def test_unreachable_providers_show_as_not_connected(ops):
    page = ops.get(PAGE).content.decode()

    assert page.count("Not connected") == 2
    assert "Slack could not be reached." in page
    assert 'data-check="stripe" data-ok="false"' in page


def test_a_saved_token_is_checked_with_slack_kept_and_used_by_the_slack_action(
    ops, superuser, fake_slack
):
    response = ops.post(PAGE, {"token": NEW_TOKEN})

    assert response.status_code == 302
    saved = Connection.objects.get()
    assert (saved.provider, saved.token, saved.hint) == ("slack", NEW_TOKEN, "xoxb-…abcd")
    assert saved.updated_by == superuser
    assert fake_slack.calls[-1] == {
        "method": "auth.test",
        "body": {},
        "auth": f"Bearer {NEW_TOKEN}",
    }
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.action_flag, entry.change_message) == (
        "slack",
        1,
        '[{"changed": {"fields": ["token"]}}]',
    )
    page = ops.get(PAGE).content.decode()
    assert "Saved the Slack token xoxb-…abcd: workspace “Kanri local”, as “kanri”." in page
    assert "<code>xoxb-…abcd</code>, saved on this page" in page
    assert NEW_TOKEN not in page

    assert post_slack() == {"channel": "C0OPS", "ts": "1700000000.000003"}
    assert fake_slack.calls[-1]["auth"] == f"Bearer {NEW_TOKEN}"


def test_a_token_slack_refuses_is_not_saved_nor_shown_back(ops, fake_slack):
    fake_slack.fail_next("invalid_auth")

    response = ops.post(PAGE, {"token": NEW_TOKEN})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Not saved: Slack does not accept this token." in page
    assert NEW_TOKEN not in page
    assert not Connection.objects.exists()
    assert not LogEntry.objects.exists()


def test_something_that_is_no_slack_token_is_refused_without_asking_slack(ops, fake_slack):
    response = ops.post(PAGE, {"token": "sk_test_oops"})

    assert "A Slack token starts with “xox”" in response.content.decode()
    assert "auth.test" not in [c["method"] for c in fake_slack.calls[1:]]
    assert not Connection.objects.exists()


def test_removing_the_saved_token_goes_back_to_the_environments(ops, fake_slack):
    Connection.save_token("slack", NEW_TOKEN)

    response = ops.post(PAGE, {"remove": "on"})

    assert response.status_code == 302
    assert not Connection.objects.exists()
    post_slack()
    assert fake_slack.calls[-1]["auth"] == "Bearer xoxb-test-token"


def test_without_any_token_the_slack_action_refuses_to_post(db, settings, fake_slack):
    settings.SLACK_BOT_TOKEN = ""

    with pytest.raises(Exception, match="Slack is not configured") as raised:
        post_slack()
    assert raised.value.permanent
    assert fake_slack.calls == []


def test_only_holders_of_the_permission_open_the_page(client, db, fake_slack):
    editor = staff_user("editor")
    client.force_login(editor)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"token": NEW_TOKEN}).status_code == 403
    assert client.get(PAGE + "slack-messages/").status_code == 403
    assert not Connection.objects.exists()

    editor.user_permissions.add(Permission.objects.get(codename="manage_connections"))
    assert client.get(PAGE).status_code == 200


def test_the_stand_ins_messages_are_listed_newest_first(ops, fake_slack):
    post_slack("first <b>message</b>")
    post_slack("second message")

    response = ops.get(reverse("admin:integrations_connection_slack_messages"))

    page = response.content.decode()
    assert page.index("second message") < page.index("first &lt;b&gt;message&lt;/b&gt;")
    assert page.count("<code>C0OPS</code>") == 2


def test_with_slack_itself_the_messages_page_says_where_they_went(ops, settings):
    settings.SLACK_API_URL = "https://slack.com/api/"

    page = ops.get(PAGE + "slack-messages/").content.decode()

    assert "Slack messages go to Slack itself" in page
    assert "kanri-slack-messages" not in page
