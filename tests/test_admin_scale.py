"""The run list and the inventory at scale: a constant number of queries whatever the number
of runs and the page, no event JSON on list pages, filter choices without DISTINCT.

Timings at a million runs are the benchmark's (`make bench-admin`), not these tests'."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations.admin.runs import RunAdmin, RunPaginator
from automations.models import Run, Workflow
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow, event, payment_intent_dict

RUNS = "/admin/automations/run/"
STATUSES = [Run.Status.SUCCEEDED, Run.Status.FAILED, Run.Status.SUCCEEDED, Run.Status.HELD]


@pytest.fixture
def workflow(db):
    return create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)


def add_runs(workflow, count, start=0, days_ago=0):
    """`count` runs, one minute apart (newest first by number), each with a whole event."""
    now = timezone.now() - timedelta(days=days_ago)
    Run.objects.bulk_create(
        Run(
            workflow=workflow,
            version=workflow.active_version,
            trigger_key=f"evt_{i:04d}",
            event_type="payment_intent.succeeded",
            status=STATUSES[i % len(STATUSES)],
            trigger_data=event("payment_intent.succeeded", payment_intent_dict(150000, "usd")),
            created_at=now - timedelta(minutes=10_000 - i),
        )
        for i in range(start, start + count)
    )


@pytest.fixture
def viewer(client, db):
    client.force_login(staff_user("viewer"))
    return client


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(RunAdmin, "list_per_page", 2)


def queries_for(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return response, [q["sql"] for q in captured.captured_queries]


def listed(response):
    return [run.trigger_key for run in response.context["cl"].result_list]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "status__in=failed",
        "status__in=failed,held",
        "event_type=payment_intent.succeeded",
        "created_at__gte=2000-01-01T00:00:00%2B00:00",
    ],
)
def test_a_run_list_page_makes_as_many_queries_with_sixty_runs_as_with_twelve_and_deep(
    viewer, workflow, small_pages, django_assert_num_queries, query
):
    add_runs(workflow, 12)  # more than one page for each query
    _, few = queries_for(viewer, f"{RUNS}?{query}")
    add_runs(workflow, 48, start=12)

    with django_assert_num_queries(len(few)):
        first = viewer.get(f"{RUNS}?{query}")
    with django_assert_num_queries(len(few)):
        deep = viewer.get(f"{RUNS}?{query}&p=3")

    assert len(listed(first)) == len(listed(deep)) == 2
    assert set(listed(first)).isdisjoint(listed(deep))


def test_a_deep_page_lists_the_runs_of_that_page_newest_first(viewer, workflow, small_pages):
    add_runs(workflow, 23)

    response = viewer.get(f"{RUNS}?p=3")

    # 23 runs, newest (evt_0022) first, 2 a page: page 3 holds the 5th and the 6th.
    assert listed(response) == ["evt_0018", "evt_0017"]
    assert response.context["cl"].result_count == 23


def test_list_pages_never_load_the_event_json(viewer, workflow, small_pages):
    add_runs(workflow, 12)

    # A filtered list of one page (3 failed runs) skips the paginator's page(): it too.
    for url in (RUNS, f"{RUNS}?status__in=failed", f"{RUNS}?p=2", f"{RUNS}?status__in=held"):
        response, sql = queries_for(viewer, url)
        run_queries = [q for q in sql if "automations_run" in q]
        assert listed(response), url
        assert run_queries, url
        assert not [q for q in run_queries if "trigger_data" in q], url


def test_the_filter_choices_come_from_the_catalog_and_the_model_not_from_distinct(viewer, workflow):
    add_runs(workflow, 3)

    response, sql = queries_for(viewer, RUNS)

    assert not [q for q in sql if "automations_run" in q and "DISTINCT" in q.upper()]
    filters = {spec.title: spec for spec in response.context["cl"].filter_specs}
    event_types = dict(filters["event type"].lookup_choices)
    # Types no run has yet are offered too: the catalog's, not the table's.
    assert event_types["customer.created"] == "Customer created"
    assert event_types["payment_intent.succeeded"] == "Payment intent succeeded"
    assert dict(filters["status"].lookup_choices) == dict(Run.Status.choices)


def test_filters_still_select_the_runs_they_name(viewer, workflow):
    add_runs(workflow, 8)
    Run.objects.filter(trigger_key="evt_0000").update(event_type="charge.refunded")

    def keys(query):
        return sorted(listed(viewer.get(f"{RUNS}?{query}")))

    assert keys("status__in=failed") == ["evt_0001", "evt_0005"]
    assert keys("status__in=failed,held") == ["evt_0001", "evt_0003", "evt_0005", "evt_0007"]
    assert keys("event_type=charge.refunded") == ["evt_0000"]


def test_a_filtered_count_stops_at_the_cap(workflow, monkeypatch):
    monkeypatch.setattr(RunPaginator, "COUNT_CAP", 10)
    add_runs(workflow, 30)

    paginator = RunPaginator(Run.objects.filter(status=Run.Status.SUCCEEDED), 5)

    if connection.vendor == "postgresql":
        # Past the cap, the planner's estimate (at least the capped count).
        assert paginator.count >= 11
    else:
        assert paginator.count == 11
    assert RunPaginator(Run.objects.filter(status=Run.Status.FAILED), 5).count == 8


def test_the_inventory_makes_as_many_queries_with_many_runs_and_counts_the_last_30_days(
    viewer, workflow, django_assert_num_queries
):
    other = create_workflow(tag_vip_customers() | {"name": "Other"}, status="active")
    add_runs(workflow, 4)
    _, few = queries_for(viewer, "/admin/automations/workflow/inventory/")
    add_runs(workflow, 40, start=4)
    add_runs(other, 10, start=100, days_ago=40)  # older than 30 days: not counted

    with django_assert_num_queries(len(few)):
        rows = viewer.get("/admin/automations/workflow/inventory/").context["rows"]

    by_name = {row["name"]: row for row in rows}
    mine = by_name[workflow.name]
    # 44 runs: a quarter each failed and held (not finished), half succeeded.
    assert (mine["runs_30d"], mine["failure_rate"]) == (33, 11 / 33)
    assert mine["last_run_status"] == Run.Status.HELD  # evt_0043, the newest
    assert (by_name["Other"]["runs_30d"], by_name["Other"]["failure_rate"]) == (0, None)
    assert by_name["Other"]["last_run_status"] == Run.Status.FAILED  # evt_0109
