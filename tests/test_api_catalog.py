"""The catalog endpoints (event types and their fields, action kinds), the template
gallery and its install, for every role; the OpenAPI schema and its local docs page."""

import os

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.routers import DefaultRouter
from rest_framework.test import APIClient

from automations import catalog, templates
from automations.api import catalog as api_catalog
from automations.models import SavedFilter, Workflow
from automations.models.tokens import ApiToken
from tests.admin_helpers import staff_user

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "editor", "approver"]
READS = [
    "/api/event-types/",
    "/api/event-types/charge.succeeded/",
    "/api/actions/",
    "/api/actions/stripe.create_refund/",
    "/api/templates/",
]


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()


def api_as(role, username=None):
    """Return an APIClient carrying a token of a new staff user in `role`."""
    _token, raw = ApiToken.issue(staff_user(role, username=username), "tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


# ---------------------------------------------------------------- who may read


@pytest.mark.parametrize("url", READS)
def test_anonymous_clients_get_401(url):
    assert APIClient().get(url).status_code == 401


@pytest.mark.parametrize("url", READS)
def test_a_user_without_a_kanri_role_gets_403(url):
    assert api_as(None).get(url).status_code == 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", READS)
def test_every_role_reads_the_catalogs(role, url):
    assert api_as(role).get(url).status_code == 200


def test_a_signed_in_person_reads_them_through_the_session(client):
    client.force_login(staff_user("viewer"))

    assert client.get("/api/event-types/").status_code == 200


# ---------------------------------------------------------------- event types


def test_event_types_list_each_known_type_with_its_field_catalog():
    body = api_as("viewer").get("/api/event-types/").json()

    assert [entry["type"] for entry in body] == list(catalog.EVENT_TYPES)
    succeeded = next(entry for entry in body if entry["type"] == "payment_intent.succeeded")
    assert succeeded["label"] == "Payment intent succeeded"
    assert succeeded["group"] == "Payments"
    assert succeeded["object"] == "payment_intent"
    assert succeeded["fields"] == catalog.trigger_fields("payment_intent.succeeded")
    assert {"path": "trigger.data.object.amount", "label": "Amount", "type": "money"} in (
        succeeded["fields"]
    )


def test_one_event_type_by_its_dotted_name():
    body = api_as("viewer").get("/api/event-types/customer.subscription.deleted/").json()

    assert body["type"] == "customer.subscription.deleted"
    assert body["label"] == "Subscription canceled (ended)"
    assert body["fields"] == catalog.trigger_fields("customer.subscription.deleted")
    status = next(f for f in body["fields"] if f["path"] == "trigger.data.object.status")
    assert status["choices"] == catalog.SUBSCRIPTION_STATUSES


def test_an_unknown_event_type_is_404():
    assert api_as("viewer").get("/api/event-types/charge.nope/").status_code == 404


# ---------------------------------------------------------------- action kinds


def test_action_kinds_list_their_config_fields_and_outputs():
    body = api_as("viewer").get("/api/actions/").json()

    by_kind = {entry["kind"]: entry for entry in body}
    assert set(by_kind) == set(api_catalog.ACTIONS)
    refund = by_kind["stripe.create_refund"]
    assert refund["moves_money"] is True and refund["provider"] == "Stripe"
    config = {field["name"]: field for field in refund["config"]}
    assert config["charge"]["type"] == "id" and config["charge"]["required"] is True
    assert config["amount"]["type"] == "money"
    assert config["reason"]["type"] == "choice"
    assert "requested_by_customer" in config["reason"]["choices"]
    assert config["metadata"]["type"] == "object" and config["metadata"]["required"] is False
    slack = by_kind["slack.post_message"]
    assert slack["moves_money"] is False
    assert {f["name"]: f["type"] for f in slack["config"]}["text"] == "template"


def test_an_action_kinds_outputs_are_what_later_steps_may_reference():
    body = api_as("viewer").get("/api/actions/stripe.retrieve_charge/").json()

    expected = catalog.step_fields("STEP", "stripe.retrieve_charge")
    assert [(o["name"], o["type"]) for o in body["outputs"]] == [
        (f["path"].removeprefix("steps.STEP."), f["type"]) for f in expected
    ]
    assert body["reads_only"] is True


def test_an_unknown_action_kind_is_404():
    assert api_as("viewer").get("/api/actions/stripe.nope/").status_code == 404


# ---------------------------------------------------------------- templates


def test_the_gallery_lists_every_template_as_the_admin_does():
    body = api_as("viewer").get("/api/templates/").json()

    assert body == templates.gallery()
    assert [entry["key"] for entry in body] == list(templates.TEMPLATES)
    fraud = next(entry for entry in body if entry["key"] == "refund_early_fraud_warnings")
    assert fraud["moves_money"] is True


@pytest.mark.parametrize("role", ["editor", "approver"])
def test_editors_install_a_template_as_a_draft_they_own(role):
    response = api_as(role, username="ed").post("/api/templates/tag_vip_customers/install/")

    workflow = Workflow.objects.get()
    assert response.status_code == 201
    assert response.json()["id"] == workflow.pk
    assert response.json()["name"] == workflow.name == templates.build("tag_vip_customers")["name"]
    assert response.json()["admin_url"] == (
        f"http://testserver/admin/automations/workflow/{workflow.pk}/change/"
    )
    assert workflow.owner.username == "ed" and workflow.edited_by.username == "ed"
    assert workflow.status == "draft" and workflow.active_version_id is None


def test_the_install_answer_links_the_workflow_in_the_api():
    response = api_as("editor").post("/api/templates/tag_vip_customers/install/")

    workflow = Workflow.objects.get()
    url = response.json()["url"]
    assert url == f"http://testserver/api/workflows/{workflow.pk}/"


def test_installing_a_scheduled_template_makes_its_saved_filter():
    response = api_as("editor").post("/api/templates/failed_payments_digest/install/")

    assert response.status_code == 201
    assert SavedFilter.objects.get().slug == templates.FAILED_YESTERDAY


def test_viewers_cannot_install_a_template():
    response = api_as("viewer").post("/api/templates/tag_vip_customers/install/")

    assert response.status_code == 403
    assert not Workflow.objects.exists()


def test_anonymous_clients_cannot_install_a_template():
    response = APIClient().post("/api/templates/tag_vip_customers/install/")

    assert response.status_code == 401
    assert not Workflow.objects.exists()


def test_installing_an_unknown_template_is_404():
    response = api_as("editor").post("/api/templates/nope/install/")

    assert response.status_code == 404
    assert not Workflow.objects.exists()


@pytest.mark.parametrize("url", READS)
def test_the_catalogs_are_read_only(url):
    assert api_as("approver").post(url, {}).status_code == 405


# ---------------------------------------------------------------- schema and docs


def test_the_served_schema_is_valid_openapi_3():
    schema = api_as("viewer").get("/api/schema/?format=json").json()

    validate_schema(schema)  # raises on anything OpenAPI 3 does not allow
    assert schema["openapi"].startswith("3.")
    for url in READS:
        assert (
            url.replace("charge.succeeded", "{type}").replace("stripe.create_refund", "{kind}")
            in schema["paths"]
        )
    assert "/api/templates/{key}/install/" in schema["paths"]


def test_the_catalog_endpoints_make_no_schema_warnings():
    router = DefaultRouter()
    api_catalog.register(router)
    GENERATOR_STATS.reset()

    with GENERATOR_STATS.silence():
        schema = SchemaGenerator(patterns=[path("api/", include(router.urls))]).get_schema(
            request=None, public=True
        )

    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache
    validate_schema(schema)
    install = schema["paths"]["/api/templates/{key}/install/"]["post"]
    assert set(install["responses"]) == {"201", "401", "403", "404", "429"}


def test_the_whole_api_schema_generates_with_no_warning(capsys):
    # Each warning is a place where the schema does not say what the API does.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)

    assert "Warning" not in capsys.readouterr().err


def test_the_docs_page_loads_its_assets_from_this_server():
    response = api_as("viewer").get("/api/docs/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "swagger-ui" in page and "/static/drf_spectacular_sidecar/" in page
    for cdn in ("cdn.", "unpkg", "jsdelivr"):
        assert cdn not in page
