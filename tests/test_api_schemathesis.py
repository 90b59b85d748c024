"""Schemathesis against the served schema (/api/schema/): every operation, fuzzed with a
bounded number of deterministic examples, answers with no 500 and nothing the schema does
not describe. It calls Django's WSGI application in this process: no server, no network.
"""

from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from automations.models import Approval, Run, RunStep, SavedFilter, Workflow
from automations.models.tokens import ApiToken
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture
def one_connection():
    """Keep the test's database connection open across requests, as Django's test client
    does: the WSGI handler closes it when a request finishes, and the test's transaction
    (and SQLite's in-memory database) with it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_world(db, settings, one_connection):
    """An approver's token, and a few rows for the fuzzed ids to find: a workflow, runs in
    the states the actions act on, and saved filters."""
    settings.ALLOWED_HOSTS = ["localhost"]  # Schemathesis' WSGI client calls it that
    # Hundreds of writes in a few seconds: the write throttle would answer 429 to most.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "100000/min"},
    }
    approver = staff_user("approver")
    _, raw = ApiToken.issue(approver, "schemathesis")
    workflow = create_workflow(tag_vip_customers(), status=Workflow.Status.ACTIVE)
    now = timezone.now()
    for i, status in enumerate(Run.Status):
        run = Run.objects.create(
            workflow=workflow,
            version=workflow.active_version,
            trigger_key=f"evt_{status}",
            event_type="payment_intent.succeeded",
            status=status,
            hold_reason=Run.HoldReason.APPROVAL if status == Run.Status.HELD else "",
            trigger_data={"data": {"object": {"id": f"pi_{i}", "amount": 1000 * i}}},
            created_at=now - timedelta(minutes=i),
        )
        RunStep.objects.create(
            run=run,
            step_name="notify_team",
            kind="email.send",
            status=RunStep.Status.UNKNOWN,
            started_at=now,
        )
        if status == Run.Status.HELD:
            Approval.objects.create(run=run, step_name="refund", amount=250000, currency="usd")
    for shared in (False, True):
        SavedFilter.objects.create(
            name=f"Failed ({shared})",
            owner=approver,
            shared=shared,
            list="automations.run",
            query="status__in=failed",
        )
    return {"Authorization": f"Bearer {raw}"}


# Loaded at collection (the schema needs no database). Not through
# schemathesis.pytest.from_fixture: with pytest 9 it fails on a removed node attribute.
with override_settings(ALLOWED_HOSTS=["localhost"]):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible, not flaky
    database=None,  # and no failing examples are kept from one run to the next
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_operation_within_its_schema(case, api_world):
    case.call_and_validate(headers=api_world, checks=CHECKS)
