"""The saved filters API: create, read, update and delete through automations/bookmarks.py,
with the private/shared rules, and a filter's rows for scripts."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from automations.models import Run, SavedFilter, Workflow
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow

API = "/api/saved-filters/"
RUNS = "automations.run"


@pytest.fixture
def runs(db):
    """Three runs of one workflow, oldest first: failed, held, succeeded."""
    workflow = create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)
    now = timezone.now()
    return [
        Run.objects.create(
            workflow=workflow,
            version=workflow.active_version,
            trigger_key=f"evt_{status}",
            status=status,
            trigger_data={"data": {"object": {"client_secret": "pi_1_secret_2", "amount": 100}}},
            created_at=now - timedelta(minutes=10 - i),
        )
        for i, status in enumerate(["failed", "held", "succeeded"])
    ]


@pytest.fixture
def ops(db):
    return staff_user("viewer", username="ops")


@pytest.fixture
def colleague(db):
    return staff_user("viewer", username="colleague")


def client_for(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def saved_filter(owner, query="status__in=failed,held", shared=False, name="Needs a look"):
    return SavedFilter.objects.create(name=name, owner=owner, shared=shared, list=RUNS, query=query)


# ---------------------------------------------------------------- who may


def test_anonymous_clients_get_401_everywhere(ops):
    mine = saved_filter(ops)
    client = APIClient()

    assert client.get(API).status_code == 401
    assert client.post(API, {"name": "x", "list": RUNS}, format="json").status_code == 401
    assert client.get(f"{API}{mine.pk}/").status_code == 401
    assert client.put(f"{API}{mine.pk}/", {"name": "x"}, format="json").status_code == 401
    assert client.delete(f"{API}{mine.pk}/").status_code == 401
    assert client.get(f"{API}{mine.pk}/rows/").status_code == 401
    assert SavedFilter.objects.get().name == "Needs a look"


def test_someone_without_a_role_can_neither_list_nor_save(runs):
    client = client_for(staff_user(username="nobody"))

    assert client.get(API).status_code == 403
    response = client.post(API, {"name": "x", "list": RUNS}, format="json")
    assert response.status_code == 403
    assert not SavedFilter.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "editor", "approver"])
def test_every_role_saves_a_filter_of_its_own(runs, role):
    user = staff_user(role)

    response = client_for(user).post(
        API,
        {"name": "  Needs a look ", "list": RUNS, "query": "?status__in=held,failed&p=2"},
        format="json",
    )

    assert response.status_code == 201
    saved = SavedFilter.objects.get()
    assert (saved.name, saved.owner, saved.shared, saved.list, saved.query) == (
        "Needs a look",
        user,
        False,
        RUNS,
        "status__in=held,failed",
    )
    assert response.json() == {
        "id": saved.pk,
        "slug": saved.slug,
        "name": "Needs a look",
        "list": RUNS,
        "query": "status__in=held,failed",
        "shared": False,
        "owner": role,
        "url": f"http://testserver/f/{saved.slug}/",
        "list_url": "http://testserver/admin/automations/run/?status__in=held,failed",
        "created_at": saved.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": saved.updated_at.isoformat().replace("+00:00", "Z"),
    }
    assert LogEntry.objects.get(object_id=str(saved.pk)).action_flag == ADDITION


# ---------------------------------------------------------------- listing and reading


def test_a_user_lists_their_own_and_shared_filters_never_a_private_one_of_someone_else(
    runs, ops, colleague
):
    mine = saved_filter(ops, name="Mine")
    shared = saved_filter(colleague, shared=True, name="Team")
    saved_filter(colleague, name="Colleague's private")
    admin = User.objects.create_superuser("root", password="pw")
    # Shared, but on a list ops may not open: not theirs to see either.
    SavedFilter.objects.create(name="Users", owner=admin, shared=True, list="auth.user")

    response = client_for(ops).get(API)

    assert response.status_code == 200
    assert [(row["id"], row["owner"]) for row in response.json()["results"]] == [
        (shared.pk, "colleague"),
        (mine.pk, "ops"),
    ]


def test_the_list_can_be_narrowed_to_one_admin_list(runs, ops):
    on_runs = saved_filter(ops)
    SavedFilter.objects.create(name="Charges", owner=ops, list="djstripe.charge", query="")

    response = client_for(ops).get(API, {"list": RUNS})

    assert [row["id"] for row in response.json()["results"]] == [on_runs.pk]


def test_someone_elses_private_filter_is_a_404_as_if_it_did_not_exist(runs, ops, colleague):
    private = saved_filter(colleague)
    client = client_for(ops)

    assert client.get(f"{API}{private.pk}/").status_code == 404
    assert client.put(f"{API}{private.pk}/", {"name": "Mine now"}, format="json").status_code == 404
    assert client.patch(f"{API}{private.pk}/", {"shared": True}, format="json").status_code == 404
    assert client.delete(f"{API}{private.pk}/").status_code == 404
    assert client.get(f"{API}{private.pk}/rows/").status_code == 404
    # The same answer as a filter that never existed.
    assert (
        client.get(f"{API}{private.pk + 100}/").json() == client.get(f"{API}{private.pk}/").json()
    )
    private.refresh_from_db()
    assert (private.name, private.shared) == ("Needs a look", False)


def test_a_shared_filter_of_someone_else_is_readable_but_only_its_owner_changes_it(
    runs, ops, colleague
):
    shared = saved_filter(colleague, shared=True)
    client = client_for(ops)

    assert client.get(f"{API}{shared.pk}/").json()["owner"] == "colleague"
    assert client.put(f"{API}{shared.pk}/", {"name": "Mine now"}, format="json").status_code == 403
    assert client.patch(f"{API}{shared.pk}/", {"shared": False}, format="json").status_code == 403
    assert client.delete(f"{API}{shared.pk}/").status_code == 403
    shared.refresh_from_db()
    assert (shared.name, shared.shared) == ("Needs a look", True)


# ---------------------------------------------------------------- changing and deleting


def test_the_owner_renames_and_shares_with_put_and_the_short_url_stays(runs, ops):
    mine = saved_filter(ops)
    slug = mine.slug

    response = client_for(ops).put(
        f"{API}{mine.pk}/",
        {"name": "Team: needs a look", "query": "status__in=failed", "shared": True},
        format="json",
    )

    assert response.status_code == 200
    mine.refresh_from_db()
    assert (mine.name, mine.query, mine.shared, mine.slug) == (
        "Team: needs a look",
        "status__in=failed",
        True,
        slug,
    )
    assert response.json()["url"] == f"http://testserver/f/{slug}/"
    log = LogEntry.objects.get(object_id=str(mine.pk))
    assert (log.action_flag, log.get_change_message()) == (
        CHANGE,
        "Changed name, shared and query.",
    )


def test_patch_changes_only_what_it_sends(runs, ops):
    mine = saved_filter(ops)

    response = client_for(ops).patch(f"{API}{mine.pk}/", {"shared": True}, format="json")

    assert response.status_code == 200
    mine.refresh_from_db()
    assert (mine.name, mine.query, mine.shared) == ("Needs a look", "status__in=failed,held", True)


def test_put_needs_a_name(runs, ops):
    mine = saved_filter(ops)

    response = client_for(ops).put(f"{API}{mine.pk}/", {"shared": True}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["name"]
    assert SavedFilter.objects.get().shared is False


def test_the_owner_deletes_their_filter(runs, ops):
    mine = saved_filter(ops)

    response = client_for(ops).delete(f"{API}{mine.pk}/")

    assert response.status_code == 204
    assert not SavedFilter.objects.exists()
    assert LogEntry.objects.get(object_id=str(mine.pk)).action_flag == DELETION


# ---------------------------------------------------------------- bad lists and queries


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x", "list": "nowhere.nothing"}, "list_unknown"),
        ({"name": "x", "list": "auth.user"}, "list_forbidden"),
        ({"name": "x", "list": RUNS, "query": "no_such_field=1"}, "query_invalid"),
        ({"name": "x", "list": RUNS, "query": "created_at__gte=not-a-date"}, "query_invalid"),
    ],
)
def test_a_bad_list_or_query_is_a_400_with_its_code_and_nothing_is_saved(runs, ops, body, code):
    response = client_for(ops).post(API, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["params"]["list"] == body["list"]
    assert not SavedFilter.objects.exists()


def test_changing_to_a_bad_query_is_a_400_and_keeps_the_old_one(runs, ops):
    mine = saved_filter(ops)

    response = client_for(ops).patch(f"{API}{mine.pk}/", {"query": "id__gt=abc"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "query_invalid"
    assert SavedFilter.objects.get().query == "status__in=failed,held"


@pytest.mark.parametrize("body", [{"list": RUNS}, {"name": "   ", "list": RUNS}, {"name": "x"}])
def test_a_filter_needs_a_name_and_a_list(runs, ops, body):
    response = client_for(ops).post(API, body, format="json")

    assert response.status_code == 400
    assert not SavedFilter.objects.exists()


# ---------------------------------------------------------------- rows


def test_rows_are_the_rows_the_list_shows_with_secrets_redacted(runs, ops):
    mine = saved_filter(ops, query="status__in=failed,held")

    response = client_for(ops).get(f"{API}{mine.pk}/rows/", {"limit": 1})

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["list"]) == (2, RUNS)
    [row] = body["rows"]
    assert (row["id"], row["status"]) == (runs[1].pk, "held")
    assert row["trigger_data"] == {
        "data": {"object": {"client_secret": "[redacted]", "amount": 100}}
    }


def test_rows_of_a_shared_filter_are_open_to_colleagues(runs, ops, colleague):
    shared = saved_filter(colleague, shared=True, query="status=succeeded")

    response = client_for(ops).get(f"{API}{shared.pk}/rows/")

    assert [row["trigger_key"] for row in response.json()["rows"]] == ["evt_succeeded"]


@pytest.mark.parametrize("limit", ["0", "501", "many"])
def test_rows_refuse_a_limit_out_of_bounds(runs, ops, limit):
    mine = saved_filter(ops)

    response = client_for(ops).get(f"{API}{mine.pk}/rows/", {"limit": limit})

    assert response.status_code == 400
    assert list(response.json()) == ["limit"]


def test_rows_of_a_filter_whose_query_no_longer_applies_are_a_400(runs, ops):
    mine = saved_filter(ops, query="no_such_field=1")

    response = client_for(ops).get(f"{API}{mine.pk}/rows/")

    assert (response.status_code, response.json()["code"]) == (400, "query_invalid")
