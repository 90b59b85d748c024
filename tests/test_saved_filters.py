"""Saved filter bookmarks: saving a list's filter, who sees it, its short URL, and its rows."""

import zoneinfo

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client
from django.utils import timezone
from djstripe.models import Charge

from automations import bookmarks
from automations.models import Run, SavedFilter, Workflow
from automations.templates import tag_vip_customers
from integrations.stripe_client import get_client
from integrations.stripe_events import as_dict
from tests.admin_helpers import staff_user
from tests.builders import create_payment_intent, create_workflow

RUNS = "/admin/automations/run/"
SAVED = "/admin/automations/savedfilter/"


@pytest.fixture
def runs(db):
    """One run per status of one workflow, oldest first."""
    workflow = create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)
    now = timezone.now()
    made = {}
    for i, status in enumerate(["failed", "held", "succeeded", "queued", "failed"]):
        key = f"evt_{status}_{i}"
        made[key] = Run.objects.create(
            workflow=workflow,
            version=workflow.active_version,
            trigger_key=key,
            event_type="payment_intent.succeeded",
            status=status,
            trigger_data={},
            created_at=now - timezone.timedelta(minutes=10 - i),
        )
    return made


@pytest.fixture
def ops(db):
    return staff_user("viewer", username="ops")


@pytest.fixture
def colleague(db):
    return staff_user("viewer", username="colleague")


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def listed(client, url):
    """The trigger keys a list page shows, in its order."""
    response = client.get(url)
    assert response.status_code == 200, response
    return [run.trigger_key for run in response.context["cl"].result_list]


def saved_filter(owner, query="status__in=failed,held", shared=False, name="Needs a look"):
    return SavedFilter.objects.create(
        name=name, owner=owner, shared=shared, list="automations.run", query=query
    )


# ------------------------------------------------------------------ saving, round trip


def test_saving_a_multi_value_filter_and_opening_its_short_url_shows_the_same_runs(
    runs, ops, colleague
):
    client = logged_in(ops)
    page = client.get(f"{RUNS}?status__in=failed,held&p=1")
    assert page.context["save_filter"]["query"] == "status__in=failed,held"
    shown = [run.trigger_key for run in page.context["cl"].result_list]
    assert shown == ["evt_failed_4", "evt_held_1", "evt_failed_0"]

    saved_page = client.post(
        f"{RUNS}save-filter/",
        {"query": page.context["save_filter"]["query"], "name": "Needs a look", "shared": "on"},
        follow=True,
    )

    saved = SavedFilter.objects.get()
    assert (saved.name, saved.owner, saved.shared, saved.list, saved.query) == (
        "Needs a look",
        ops,
        True,
        "automations.run",
        "status__in=failed,held",
    )
    assert saved_page.redirect_chain == [(f"{RUNS}?status__in=failed,held", 302)]
    short = f"http://testserver/f/{saved.slug}/"
    assert [str(m) for m in saved_page.context["messages"]] == [
        f'Saved the filter “Needs a look”. Its link: <a href="{short}" '
        f'class="kanri-short-url">{short}</a>'
    ]
    menu = saved_page.context["saved_filters"]
    assert [(item["name"], item["active"], item["mine"], item["shared"]) for item in menu] == [
        ("Needs a look", True, True, True)
    ]
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (ops, ADDITION, str(saved.pk))

    other = logged_in(colleague)
    opened = other.get(f"/f/{saved.slug}/")
    assert opened.status_code == 302
    assert opened["Location"] == f"{RUNS}?status__in=failed,held"
    assert listed(other, opened["Location"]) == shown


def test_saving_keeps_ordering_and_search_and_drops_the_page_number(runs, ops):
    client = logged_in(ops)
    page = client.get(f"{RUNS}?q=evt_failed&o=-1&p=1&status__in=failed,held")
    query = page.context["save_filter"]["query"]
    assert query == "o=-1&q=evt_failed&status__in=failed,held"

    client.post(f"{RUNS}save-filter/", {"query": query, "name": "Failed, newest first"})

    saved = SavedFilter.objects.get()
    assert (saved.query, saved.shared) == ("o=-1&q=evt_failed&status__in=failed,held", False)
    assert listed(client, bookmarks.list_url(saved)) == ["evt_failed_4", "evt_failed_0"]


def test_normalising_drops_what_only_says_how_a_page_is_shown():
    assert (
        bookmarks.normalise(
            "?status__in=failed,held&p=3&e=1&all=&_facets=True&q=&o=2"
            "&_changelist_filters=status__in%3Dqueued&_popup=1&_to_field=id"
        )
        == "o=2&status__in=failed,held"
    )


def test_saving_a_filter_the_list_refuses_shows_why_and_saves_nothing(runs, ops):
    client = logged_in(ops)

    response = client.post(
        f"{RUNS}save-filter/", {"query": "no_such_field=1", "name": "Broken"}, follow=True
    )

    assert SavedFilter.objects.count() == 0
    assert response.redirect_chain[0] == (f"{RUNS}?no_such_field=1", 302)
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("The filter does not apply to automations.run: Cannot resolve")


def test_saving_needs_a_name(runs, ops):
    response = logged_in(ops).post(
        f"{RUNS}save-filter/", {"query": "status__in=failed", "name": "  "}, follow=True
    )

    assert SavedFilter.objects.count() == 0
    assert [str(m) for m in response.context["messages"]] == ["Give the saved filter a name."]


def test_saving_is_a_post_with_csrf(runs, ops):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)

    assert client.get(f"{RUNS}save-filter/?name=x").status_code == 405
    no_token = client.post(f"{RUNS}save-filter/", {"query": "", "name": "No token"})
    assert no_token.status_code == 403

    page = client.get(RUNS)
    token = page.context["csrf_token"]
    assert f'action="{RUNS}save-filter/"' in page.content.decode()
    saved = client.post(
        f"{RUNS}save-filter/", {"query": "", "name": "All runs", "csrfmiddlewaretoken": token}
    )
    assert saved.status_code == 302
    assert list(SavedFilter.objects.values_list("name", "query")) == [("All runs", "")]


def test_someone_without_a_role_cannot_save_or_see_the_form(runs):
    nobody = staff_user(username="nobody")
    client = logged_in(nobody)

    assert client.get(RUNS).status_code == 403
    assert client.post(f"{RUNS}save-filter/", {"name": "x"}).status_code == 403
    assert SavedFilter.objects.count() == 0


# ------------------------------------------------------------------ private and shared


def test_a_private_filter_is_invisible_to_everyone_else(runs, ops, colleague):
    private = saved_filter(ops, shared=False, name="Mine only")
    client = logged_in(colleague)

    assert client.get(RUNS).context["saved_filters"] == []
    assert client.get(f"/f/{private.slug}/").status_code == 404
    assert client.get("/f/does-not-exist/").status_code == 404
    assert [r.name for r in client.get(SAVED).context["cl"].result_list] == []
    assert client.get(f"{SAVED}{private.pk}/change/").status_code == 404
    assert client.get(f"{SAVED}{private.pk}/history/").status_code == 404
    assert client.post(f"{SAVED}{private.pk}/delete/", {"post": "yes"}).status_code == 404
    with pytest.raises(Http404):
        bookmarks.resolve(private.slug, colleague)
    assert list(bookmarks.visible(colleague)) == []
    assert SavedFilter.objects.filter(pk=private.pk).exists()


def test_the_owner_sees_their_private_filter_in_the_menu_and_the_admin_list(runs, ops):
    private = saved_filter(ops, shared=False, name="Mine only")
    SavedFilter.objects.create(name="Charges", owner=ops, list="djstripe.charge", query="")
    client = logged_in(ops)

    menu = client.get(RUNS).context["saved_filters"]
    assert menu == [
        {
            "name": "Mine only",
            "url": f"{RUNS}?status__in=failed,held",
            "short_url": f"/f/{private.slug}/",
            "shared": False,
            "mine": True,
            "owner": "ops",
            "active": False,
        }
    ]
    page = client.get(SAVED)
    assert [r.name for r in page.context["cl"].result_list] == ["Mine only", "Charges"]
    assert f'<a href="http://testserver/f/{private.slug}/" class="kanri-short-url">' in (
        page.content.decode()
    )
    assert client.get(f"/f/{private.slug}/")["Location"] == f"{RUNS}?status__in=failed,held"


def test_a_shared_filter_is_listed_for_others_marked_and_read_only(runs, ops, colleague):
    shared = saved_filter(ops, shared=True, name="Team: needs a look")
    client = logged_in(colleague)

    page = client.get(f"{RUNS}?status__in=failed,held")
    assert [
        (i["name"], i["mine"], i["owner"], i["active"]) for i in page.context["saved_filters"]
    ] == [("Team: needs a look", False, "ops", True)]
    assert "shared by ops" in page.content.decode()
    assert [r.name for r in client.get(SAVED).context["cl"].result_list] == ["Team: needs a look"]

    change_page = client.get(f"{SAVED}{shared.pk}/change/")
    assert change_page.status_code == 200
    assert change_page.context["has_change_permission"] is False
    assert (
        client.post(f"{SAVED}{shared.pk}/change/", {"name": "Hijacked", "shared": "on"}).status_code
        == 403
    )
    assert client.post(f"{SAVED}{shared.pk}/delete/", {"post": "yes"}).status_code == 403
    with pytest.raises(PermissionDenied):
        bookmarks.rename(colleague, shared, "Hijacked")
    with pytest.raises(PermissionDenied):
        bookmarks.delete(colleague, shared)
    shared.refresh_from_db()
    assert shared.name == "Team: needs a look"


def test_a_filter_on_a_list_the_user_may_not_view_is_not_theirs_to_see(runs, ops):
    shared = saved_filter(ops, shared=True)
    nobody = staff_user(username="nobody")

    assert list(bookmarks.visible(nobody)) == []
    with pytest.raises(Http404):
        bookmarks.resolve(shared.slug, nobody)


def test_the_short_url_asks_for_a_login_first(runs, ops):
    shared = saved_filter(ops, shared=True)

    response = Client().get(f"/f/{shared.slug}/")

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next=/f/{shared.slug}/"


def test_there_is_no_empty_add_form(runs, ops):
    assert logged_in(ops).get(f"{SAVED}add/").status_code == 403


# ------------------------------------------------------------------ rename, delete


def test_renaming_keeps_the_short_url_and_is_logged(runs, ops):
    saved = saved_filter(ops, shared=True, name="Old name")
    client = logged_in(ops)
    before = bookmarks.url(saved)

    response = client.post(f"{SAVED}{saved.pk}/change/", {"name": "New name", "shared": "on"})

    assert response.status_code == 302
    saved.refresh_from_db()
    assert (saved.name, saved.shared, bookmarks.url(saved)) == ("New name", True, before)
    assert client.get(before)["Location"] == f"{RUNS}?status__in=failed,held"
    assert [(e.action_flag, e.get_change_message()) for e in LogEntry.objects.all()] == [
        (CHANGE, "Changed name.")
    ]


def test_the_owner_deletes_their_filter_and_its_url_is_gone(runs, ops):
    saved = saved_filter(ops, shared=True)
    client = logged_in(ops)

    response = client.post(f"{SAVED}{saved.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert SavedFilter.objects.count() == 0
    assert client.get(f"/f/{saved.slug}/").status_code == 404
    assert [(e.action_flag, e.object_id) for e in LogEntry.objects.all()] == [
        (DELETION, str(saved.pk))
    ]


def test_the_service_saves_renames_shares_and_deletes_for_the_owner(runs, ops):
    saved = bookmarks.save(ops, "automations.run", "?status__in=held&p=2", "Held", shared=False)
    assert (saved.query, saved.shared) == ("status__in=held", False)

    bookmarks.update(ops, saved, name="Held runs", shared=True)
    saved.refresh_from_db()
    assert (saved.name, saved.shared) == ("Held runs", True)

    bookmarks.delete(ops, saved)
    assert SavedFilter.objects.count() == 0
    assert [e.action_flag for e in LogEntry.objects.order_by("pk")] == [ADDITION, CHANGE, DELETION]


# ------------------------------------------------------------------ rows


def test_rows_are_the_rows_the_list_shows_in_its_order(runs, ops):
    client = logged_in(ops)
    saved = saved_filter(ops, query="status__in=failed,held&o=-1")

    result = bookmarks.rows(saved)

    shown = client.get(f"{RUNS}?status__in=failed,held&o=-1").context["cl"].result_list
    assert [row["id"] for row in result["rows"]] == [run.pk for run in shown]
    assert [row["trigger_key"] for row in result["rows"]] == [
        "evt_failed_4",
        "evt_held_1",
        "evt_failed_0",
    ]
    assert result["count"] == 3
    assert result["list"] == "automations.run"
    first = runs["evt_failed_4"]
    assert result["rows"][0] == {
        "id": first.pk,
        "workflow": first.workflow_id,
        "version": first.version_id,
        "trigger_kind": "stripe_event",
        "trigger_key": "evt_failed_4",
        "event_type": "payment_intent.succeeded",
        "trigger_data": {},
        "started_by": None,
        "batch": None,
        "status": "failed",
        "hold_reason": "",
        "attempt": 0,
        "interruptions": 0,
        "next_attempt_at": None,
        "lease_until": None,
        "error": "",
        "created_at": first.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "started_at": None,
        "finished_at": None,
    }


def test_rows_stop_at_the_limit_but_count_every_match(runs, ops):
    result = bookmarks.rows(saved_filter(ops, query="status__in=failed,held"), limit=2)

    assert [row["trigger_key"] for row in result["rows"]] == ["evt_failed_4", "evt_held_1"]
    assert result["count"] == 3


def test_rows_use_the_current_time_zone(runs, ops):
    saved = saved_filter(ops, query="status__in=held")
    held = runs["evt_held_1"]

    with timezone.override(zoneinfo.ZoneInfo("Asia/Tokyo")):
        result = bookmarks.rows(saved)

    tokyo = timezone.localtime(held.created_at, zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert result["rows"][0]["created_at"] == tokyo.isoformat(timespec="milliseconds")
    assert result["rows"][0]["created_at"].endswith("+09:00")


def test_rows_of_a_filter_without_an_owner_are_read_as_a_read_only_reader(runs):
    orphan = saved_filter(None, query="status__in=queued", shared=True)

    result = bookmarks.rows(orphan)

    assert [row["trigger_key"] for row in result["rows"]] == ["evt_queued_3"]


def test_rows_refuse_an_owner_who_may_no_longer_view_the_list(runs, ops):
    saved = saved_filter(ops)
    ops.groups.clear()

    with pytest.raises(bookmarks.FilterError) as refused:
        bookmarks.rows(SavedFilter.objects.get(pk=saved.pk))

    assert (refused.value.code, refused.value.params) == (
        "list_forbidden",
        {"list": "automations.run", "user": "ops"},
    )


@pytest.mark.parametrize(
    "query",
    ["no_such_field=1", "status__in=failed&created_at__gte=not-a-date", "id__gt=abc"],
)
def test_rows_raise_filter_error_on_a_bad_query(runs, ops, query):
    with pytest.raises(bookmarks.FilterError) as refused:
        bookmarks.rows(saved_filter(ops, query=query))

    assert refused.value.code == "query_invalid"
    assert refused.value.params["list"] == "automations.run"
    assert refused.value.params["error"]
    assert str(refused.value).startswith("The filter does not apply to automations.run: ")


def test_rows_raise_filter_error_on_an_unknown_list(db):
    with pytest.raises(bookmarks.FilterError) as refused:
        bookmarks.rows(SavedFilter(name="x", list="nowhere.nothing", query=""))

    assert (refused.value.code, refused.value.params) == (
        "list_unknown",
        {"list": "nowhere.nothing"},
    )


def test_rows_of_a_stripe_list_are_stripes_own_objects(fake_stripe, stripe_account, ops):
    charges = []
    for amount in (1500, 2500):
        intent = create_payment_intent(amount=amount, currency="jpy")
        data = as_dict(get_client().v1.charges.retrieve(intent["latest_charge"]))
        charges.append(Charge.sync_from_stripe_data(data))
    saved = SavedFilter.objects.create(
        name="Paid", owner=ops, list="djstripe.charge", query="status__in=succeeded"
    )

    result = bookmarks.rows(saved)

    shown = logged_in(ops).get("/admin/djstripe/charge/?status__in=succeeded")
    assert [row["id"] for row in result["rows"]] == [c.id for c in shown.context["cl"].result_list]
    assert sorted(row["amount"] for row in result["rows"]) == [1500, 2500]
    by_id = {c.id: c for c in charges}
    for row in result["rows"]:
        assert row == {**by_id[row["id"]].stripe_data, "id": row["id"]}


def test_a_payments_filter_of_canceled_or_blocked_round_trips_to_a_colleague(ops, colleague):
    from tests.stripe_objects import charge

    made = {
        "canceled": charge(1500, "jpy", captured=False, refunded=True),
        "blocked": charge(2500, "usd", status="failed", outcome="blocked"),
        "succeeded": charge(3500, "usd"),
        "failed": charge(4500, "usd", status="failed", outcome="issuer_declined"),
    }
    payments = "/admin/djstripe/charge/"
    client = logged_in(ops)
    page = client.get(f"{payments}?status__in=canceled,blocked")
    shown = [c.id for c in page.context["cl"].result_list]
    assert sorted(shown) == sorted([made["canceled"].id, made["blocked"].id])

    client.post(
        f"{payments}save-filter/",
        {"query": page.context["save_filter"]["query"], "name": "Stopped payments", "shared": "on"},
    )

    saved = SavedFilter.objects.get()
    assert (saved.list, saved.query, saved.shared) == (
        "djstripe.charge",
        "status__in=canceled,blocked",
        True,
    )
    other = logged_in(colleague)
    opened = other.get(bookmarks.url(saved))
    assert opened["Location"] == f"{payments}?status__in=canceled,blocked"
    assert [c.id for c in other.get(opened["Location"]).context["cl"].result_list] == shown

    result = bookmarks.rows(saved)

    by_id = {c.id: c for c in made.values()}
    assert result["rows"] == [{**by_id[pk].stripe_data, "id": pk} for pk in shown]
    assert sorted(row["amount"] for row in result["rows"]) == [1500, 2500]  # minor units
    assert result["count"] == 2


def test_rows_raise_filter_error_when_a_payments_filter_cannot_be_applied(ops):
    saved = SavedFilter(name="x", owner=ops, list="djstripe.charge", query="status__in=bogus")

    with pytest.raises(bookmarks.FilterError) as refused:
        bookmarks.rows(saved)

    assert (refused.value.code, refused.value.params["list"]) == (
        "query_invalid",
        "djstripe.charge",
    )
    assert "bogus" in refused.value.params["error"]
