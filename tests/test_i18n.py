"""Japanese and English: the browser's language, or the profile's; Django's own strings as
Django ships them; Kanri's labels, messages and explanations through gettext."""

import pytest
from django.utils import translation

from automations.engine.conditions import describe, evaluate, explain
from automations.engine.context import build_context
from automations.models import Run, RunStep, UserProfile
from automations.money import format_money
from automations.problems import Problem, message
from automations.templates import tag_vip_customers
from tests.admin_helpers import staff_user
from tests.builders import create_workflow

pytestmark = pytest.mark.django_db

OVER_2000_USD = {
    "field": "trigger.data.object.amount",
    "op": "gt",
    "value": 200000,
    "currency": "usd",
}


def payment(amount, currency):
    return build_context({"data": {"object": {"amount": amount, "currency": currency}}})


def test_a_japanese_browser_gets_djangos_and_kanris_words_in_japanese(client):
    client.force_login(staff_user("editor"))

    page = client.get("/admin/automations/workflow/add/", HTTP_ACCEPT_LANGUAGE="ja").content
    page = page.decode()

    assert '<html lang="ja"' in page
    assert "保存" in page and ">Save<" not in page  # Django's own, as Django ships it
    assert "ワークフロー" in page  # Kanri's model name
    assert "個人設定" in page  # Kanri's own link
    assert "My preferences" not in page


def test_an_english_browser_gets_english(client):
    client.force_login(staff_user("editor"))
    page = client.get("/admin/automations/workflow/add/", HTTP_ACCEPT_LANGUAGE="en").content
    assert "My preferences" in page.decode() and "保存" not in page.decode()


@pytest.mark.parametrize(
    ("profile", "browser", "shown", "absent"),
    [("en", "ja", "My preferences", "個人設定"), ("ja", "en", "個人設定", "My preferences")],
)
def test_the_profiles_language_wins_over_the_browsers(client, profile, browser, shown, absent):
    user = staff_user("viewer")
    UserProfile.objects.create(user=user, language=profile)
    client.force_login(user)

    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE=browser).content.decode()

    assert shown in page and absent not in page


def test_an_old_run_reads_in_the_readers_language(client):
    """The audit keeps the branch's reason as a code: its words are the reader's."""
    workflow = create_workflow(tag_vip_customers(), status="active")
    run = Run.objects.create(
        workflow=workflow, version=workflow.active_version, trigger_key="evt_1", trigger_data={}
    )
    result = evaluate(OVER_2000_USD, payment(250000, "usd"))
    step = RunStep.objects.create(
        run=run,
        step_name="is_vip",
        kind="branch",
        status="succeeded",
        output={"arm": "then", "conditions": [result]},
        started_at=run.created_at,
    )
    stored = RunStep.objects.get(pk=step.pk).output["conditions"][0]
    assert (stored["reason"], stored["reason_params"]) == ("money", {})

    with translation.override("ja"):
        japanese = explain(stored)
    with translation.override("en"):
        english = explain(stored)

    usd_2500, usd_2000 = format_money(250000, "usd"), format_money(200000, "usd")
    assert english == f"{usd_2500} is greater than {usd_2000}"
    assert japanese == f"{usd_2500} は {usd_2000} より大きい"

    # The run page says it in the reader's language too.
    client.force_login(staff_user("viewer"))
    url = f"/admin/automations/run/{run.pk}/change/"
    assert japanese in client.get(url, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert english in client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_every_reason_reads_in_japanese_too():
    other = evaluate(OVER_2000_USD, payment(250000, "eur"))
    unset = evaluate(
        {"field": "trigger.data.object.email", "op": "eq", "value": "x"}, payment(1, "usd")
    )
    with translation.override("ja"):
        assert explain(other) == "通貨は usd ではなく eur です"
        assert explain(unset) == "trigger.data.object.email が設定されていません"
        assert describe(OVER_2000_USD).endswith("より大きい")
    # A run stored before reasons were codes keeps its English sentence.
    assert explain({"reason": "currency is eur, not usd"}) == "currency is eur, not usd"


def test_validator_messages_render_in_the_readers_language():
    problem = Problem("name", "name_too_long", {"max": 200})
    with translation.override("ja"):
        assert message(problem) == "名前は200文字以内にしてください。"
    with translation.override("en"):
        assert message(problem) == "A name is at most 200 characters."


def test_the_field_catalog_and_action_labels_are_translated():
    from automations import catalog
    from integrations.registry import get_action

    with translation.override("ja"):
        labels = {f["path"]: str(f["label"]) for f in catalog.trigger_fields("charge.succeeded")}
        assert labels["trigger.data.object.amount"] == "金額"
        assert str(get_action("stripe.create_refund").label) == "Stripe: 支払いを返金"
        assert str(Run.Status.SUCCEEDED.label) == "成功"
