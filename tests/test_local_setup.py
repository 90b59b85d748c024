"""`manage.py setup_local`: what `make run` prints for a new user, safe to run twice."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from djstripe.models import Account, APIKey, WebhookEndpoint


def setup_local(**options):
    out = StringIO()
    call_command("setup_local", stdout=out, **options)
    return out.getvalue()


def printed(output, label):
    return next(line.split(":", 1)[1].strip() for line in output.splitlines() if label in line)


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.DEBUG = True
    return tmp_path


def test_it_creates_the_admin_account_and_endpoint_and_prints_how_to_use_them(
    db, fake_stripe, var_dir
):
    output = setup_local(base_url="http://127.0.0.1:8000")

    endpoint = WebhookEndpoint.objects.get()
    assert printed(output, "Webhook URL") == (
        f"http://127.0.0.1:8000/stripe/webhook/{endpoint.djstripe_uuid}/"
    )
    assert printed(output, "Signing secret") == endpoint.secret
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.url == printed(output, "Webhook URL")
    username, password = printed(output, "Login").split(" / ")
    user = get_user_model().objects.get(username=username)
    assert user.is_superuser and user.check_password(password)
    key = APIKey.objects.get()
    assert key.djstripe_owner_account == Account.objects.get(id="acct_kanri_local")
    assert endpoint.djstripe_owner_account_id == "acct_kanri_local"
    assert fake_stripe.requests(path="/v1/account") != []


def test_running_it_twice_changes_nothing_and_prints_the_same_credentials(db, fake_stripe, var_dir):
    first = setup_local()
    account_fetches = fake_stripe.requests(path="/v1/account")
    second = setup_local()

    assert first == second
    assert get_user_model().objects.count() == 1
    assert WebhookEndpoint.objects.count() == 1
    assert APIKey.objects.count() == 1
    assert account_fetches and fake_stripe.requests(path="/v1/account") == account_fetches


def test_it_refuses_to_create_a_demo_admin_in_production(db, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="only runs with DEBUG on"):
        setup_local()
    assert not get_user_model().objects.exists()
