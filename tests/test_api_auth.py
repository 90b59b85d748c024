"""API tokens: the header, refusals, hashing at rest, last use, write throttling, the
create_api_token command and the tokens admin."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from automations.models import Workflow
from automations.models.tokens import ApiToken
from tests.admin_helpers import staff_user

pytestmark = pytest.mark.django_db

READ = "/api/event-types/"
WRITE = "/api/templates/tag_vip_customers/install/"


@pytest.fixture(autouse=True)
def fresh_throttle():
    """The throttle counts in the cache: each test starts with none used."""
    cache.clear()
    yield
    cache.clear()


def client_with(raw, keyword="Bearer"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {raw}")
    return client


# ---------------------------------------------------------------- authentication


def test_a_bearer_token_acts_as_its_user():
    token, raw = ApiToken.issue(staff_user("viewer"), "CI")

    response = client_with(raw).get(READ)

    assert response.status_code == 200
    assert response.wsgi_request.user == token.user


def test_the_token_keyword_is_accepted_as_well():
    _token, raw = ApiToken.issue(staff_user("viewer"), "CI")

    assert client_with(raw, keyword="Token").get(READ).status_code == 200


def test_a_request_without_credentials_gets_401_saying_how_to_authenticate():
    response = APIClient().get(READ)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_unknown_token_is_refused():
    ApiToken.issue(staff_user("viewer"), "CI")

    response = client_with("kanri_" + "x" * 43).get(READ)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_bearer_value_that_is_not_a_kanri_token_is_refused():
    assert client_with("sometoken").get(READ).status_code == 401


def test_a_header_with_a_space_in_the_token_is_refused():
    _token, raw = ApiToken.issue(staff_user("viewer"), "CI")

    response = client_with(f"{raw} extra").get(READ)

    assert response.status_code == 401
    assert "Invalid Authorization header" in response.json()["detail"]


def test_a_revoked_token_is_refused():
    token, raw = ApiToken.issue(staff_user("viewer"), "CI")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())

    response = client_with(raw).get(READ)

    assert response.status_code == 401
    assert response.json() == {"detail": "This token has been revoked."}


def test_the_token_of_an_inactive_user_is_refused():
    user = staff_user("viewer")
    _token, raw = ApiToken.issue(user, "CI")
    user.is_active = False
    user.save()

    response = client_with(raw).get(READ)

    assert response.status_code == 401
    assert response.json() == {"detail": "This token's user is inactive."}


def test_the_token_is_hashed_at_rest():
    token, raw = ApiToken.issue(staff_user("viewer"), "CI")

    stored = ApiToken.objects.filter(pk=token.pk).values().get()

    assert raw not in str(stored)
    assert stored["digest"] == hashlib.sha256(raw.encode()).hexdigest()
    assert stored["hint"] == raw[:10]


def test_the_token_carries_its_users_role():
    _viewer_token, viewer_raw = ApiToken.issue(staff_user("viewer"), "CI")
    _editor_token, editor_raw = ApiToken.issue(staff_user("editor"), "CI")

    assert client_with(viewer_raw).post(WRITE).status_code == 403
    assert client_with(editor_raw).post(WRITE).status_code == 201
    assert Workflow.objects.get().owner.username == "editor"


def test_a_token_of_a_user_without_a_role_reads_nothing():
    _token, raw = ApiToken.issue(staff_user(None), "CI")

    assert client_with(raw).get(READ).status_code == 403


def test_last_use_is_recorded_at_most_once_a_minute():
    token, raw = ApiToken.issue(staff_user("viewer"), "CI")
    client = client_with(raw)
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        client.get(READ)
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        client.get(READ)
    token.refresh_from_db()
    assert token.last_used_at == start

    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get(READ)
    token.refresh_from_db()
    assert token.last_used_at == start + timedelta(seconds=61)


def test_a_refused_token_records_no_use():
    token, raw = ApiToken.issue(staff_user("viewer"), "CI")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())

    client_with(raw).get(READ)

    token.refresh_from_db()
    assert token.last_used_at is None


def test_the_schema_names_the_token_scheme():
    _token, raw = ApiToken.issue(staff_user("viewer"), "CI")

    schema = client_with(raw).get("/api/schema/?format=json").json()

    assert schema["components"]["securitySchemes"]["kanriToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "kanri_…",
        "description": schema["components"]["securitySchemes"]["kanriToken"]["description"],
    }
    assert {"kanriToken": []} in schema["paths"][READ]["get"]["security"]


# ---------------------------------------------------------------- throttling


@pytest.fixture
def two_writes_a_minute(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "2/min"},
    }


def test_a_write_over_the_rate_gets_429_with_retry_after(two_writes_a_minute):
    _token, raw = ApiToken.issue(staff_user("editor"), "CI")
    client = client_with(raw)

    statuses = [client.post(WRITE).status_code for _ in range(3)]
    response = client.post(WRITE)

    assert statuses == [201, 201, 429]
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert Workflow.objects.count() == 2


def test_reads_are_never_throttled(two_writes_a_minute):
    _token, raw = ApiToken.issue(staff_user("editor"), "CI")
    client = client_with(raw)
    client.post(WRITE)
    client.post(WRITE)

    assert [client.get(READ).status_code for _ in range(5)] == [200] * 5
    assert client.post(WRITE).status_code == 429


def test_writes_are_counted_per_user(two_writes_a_minute):
    _token, alice = ApiToken.issue(staff_user("editor", username="alice"), "CI")
    _token, bob = ApiToken.issue(staff_user("editor", username="bob"), "CI")
    for _ in range(2):
        client_with(alice).post(WRITE)

    assert client_with(alice).post(WRITE).status_code == 429
    assert client_with(bob).post(WRITE).status_code == 201


# ---------------------------------------------------------------- create_api_token


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_the_token_once_and_stores_its_digest():
    staff_user("editor", username="alice")

    out, err = run("alice", "--name", "CI")

    raw = out.strip()
    token = ApiToken.objects.get()
    assert raw.startswith("kanri_") and "\n" not in raw
    assert token.name == "CI" and token.user.username == "alice"
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiToken.objects.values().get())
    assert f"Created token “CI” ({token.hint}…) for alice." in err
    assert "only time it is shown" in err
    assert raw not in err
    assert client_with(raw).get(READ).status_code == 200


def test_the_command_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user nobody"):
        run("nobody", "--name", "CI")
    assert not ApiToken.objects.exists()


def test_the_command_needs_a_name():
    staff_user("editor", username="alice")

    with pytest.raises(CommandError, match="--name"):
        run("alice")
    assert not ApiToken.objects.exists()


def test_the_command_refuses_an_inactive_user():
    user = staff_user("editor", username="alice")
    user.is_active = False
    user.save()

    with pytest.raises(CommandError, match="inactive"):
        run("alice", "--name", "CI")


def test_revoke_by_hint_refuses_the_token_afterwards_and_is_idempotent():
    token, raw = ApiToken.issue(staff_user("editor", username="alice"), "CI")
    other, other_raw = ApiToken.issue(token.user, "laptop")

    out, _err = run("--revoke", token.hint)
    again, _err = run("--revoke", token.hint + "…")

    token.refresh_from_db()
    other.refresh_from_db()
    assert out.strip() == f"Revoked token “CI” ({token.hint}…) of alice."
    assert again.strip() == f"Token “CI” ({token.hint}…) was already revoked; nothing changed."
    assert token.revoked_at is not None and other.revoked_at is None
    assert client_with(raw).get(READ).status_code == 401
    assert client_with(other_raw).get(READ).status_code == 200


def test_revoke_accepts_the_whole_token():
    token, raw = ApiToken.issue(staff_user("editor", username="alice"), "CI")

    run("--revoke", raw)

    token.refresh_from_db()
    assert token.revoked_at is not None


def test_revoke_of_an_unknown_hint_fails():
    with pytest.raises(CommandError, match="No token with hint kanri_nope"):
        run("--revoke", "kanri_nope")


def test_revoke_among_one_users_tokens_leaves_others_alone():
    alice_token, _raw = ApiToken.issue(staff_user("editor", username="alice"), "CI")
    ApiToken.issue(staff_user("editor", username="bob"), "CI")

    with pytest.raises(CommandError, match="No token"):
        run("bob", "--revoke", alice_token.hint)
    alice_token.refresh_from_db()
    assert alice_token.revoked_at is None


def test_the_command_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        call_command("create_api_token", "--help")

    assert "manage.py create_api_token alice --name CI" in capsys.readouterr().out


# ---------------------------------------------------------------- the tokens admin

ADMIN = "/admin/automations/apitoken/"


def test_staff_see_only_their_own_tokens_and_never_a_digest(client):
    alice = staff_user("viewer", username="alice")
    mine, _raw = ApiToken.issue(alice, "CI")
    theirs, _raw = ApiToken.issue(staff_user("editor", username="bob"), "Bob's laptop")
    client.force_login(alice)

    page = client.get(ADMIN).content.decode()
    detail = client.get(f"{ADMIN}{mine.pk}/change/")

    assert mine.hint in page and "CI" in page
    assert theirs.hint not in page and "Bob&#x27;s laptop" not in page
    assert mine.digest not in page and mine.digest not in detail.content.decode()
    assert detail.status_code == 200
    assert client.get(f"{ADMIN}{theirs.pk}/change/").status_code == 302  # "does not exist"


def test_superusers_see_every_token(client, django_user_model):
    theirs, _raw = ApiToken.issue(staff_user("editor", username="bob"), "Bob's laptop")
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))

    assert theirs.hint in client.get(ADMIN).content.decode()


def test_making_a_token_in_the_admin_shows_it_once(client):
    alice = staff_user("viewer", username="alice")
    client.force_login(alice)

    response = client.post(f"{ADMIN}add/", {"name": "CI"}, follow=True)

    token = ApiToken.objects.get()
    page = response.content.decode()
    raw = page.split("Your new token “CI” is ")[1].split(" ")[0]
    assert token.user == alice and token.name == "CI"
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in client.get(ADMIN).content.decode()  # the next page no longer has it
    assert client_with(raw).get(READ).status_code == 200


def test_the_revoke_action_revokes_the_chosen_tokens(client):
    alice = staff_user("viewer", username="alice")
    token, raw = ApiToken.issue(alice, "CI")
    kept, _raw = ApiToken.issue(alice, "laptop")
    client.force_login(alice)

    client.post(ADMIN, {"action": "revoke", "_selected_action": [token.pk]})

    token.refresh_from_db()
    kept.refresh_from_db()
    assert token.revoked_at is not None and kept.revoked_at is None
    assert client_with(raw).get(READ).status_code == 401


def test_the_revoke_action_cannot_reach_someone_elses_token(client):
    theirs, _raw = ApiToken.issue(staff_user("editor", username="bob"), "CI")
    client.force_login(staff_user("viewer", username="alice"))

    client.post(ADMIN, {"action": "revoke", "_selected_action": [theirs.pk]})

    theirs.refresh_from_db()
    assert theirs.revoked_at is None


# ---------------------------------------------------------------- the README's walk-through


def test_the_readmes_export_edit_import_round_trip_works_with_a_token():
    out, _err = run_as_editor_token()
    client = client_with(out)
    workflow_id = client.post(WRITE).json()["id"]

    exported = client.get(f"/api/workflows/{workflow_id}/").json()["definition"]
    # The README's jq edit: a new name, and the first condition from 1,500 USD.
    edited = {**exported, "name": "Tag VIP customers (1,500 USD)"}
    edited["conditions"] = [[{**exported["conditions"][0][0], "value": 150000}]]
    response = client.put(f"/api/workflows/{workflow_id}/", {"definition": edited}, format="json")

    assert response.status_code == 200
    saved = client.get(f"/api/workflows/{workflow_id}/").json()["definition"]
    assert exported["conditions"] == [
        [{"field": "trigger.data.object.amount", "op": "gt", "value": 100000, "currency": "usd"}]
    ]
    assert saved == edited
    assert Workflow.objects.get(pk=workflow_id).name == "Tag VIP customers (1,500 USD)"


def run_as_editor_token():
    staff_user("editor", username="alice")
    out, err = run("alice", "--name", "CI")
    return out.strip(), err
