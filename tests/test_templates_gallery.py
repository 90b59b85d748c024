"""Templates for every scenario: `install_templates` (idempotent, one by name, never over
an edited workflow) and the admin's "New workflow from template" gallery, used as staff
use it: the button on the workflow list, the page, the chosen template."""

import io
from html.parser import HTMLParser

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from automations import definition, templates, workflows
from automations.management.commands.install_templates import Command
from automations.models import Workflow
from tests.admin_helpers import staff_user

LIST_URL = reverse("admin:automations_workflow_changelist")
GALLERY_URL = reverse("admin:automations_workflow_gallery")


class Page(HTMLParser):
    """The parts of an admin page a person acts on: links by id, and the gallery form."""

    def __init__(self, html):
        super().__init__()
        self.links, self.radios, self.hidden, self.rows, self._row = {}, [], {}, {}, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("id"):
            self.links[attrs["id"]] = attrs["href"]
        if tag == "input" and attrs.get("type") == "radio":
            self.radios.append((attrs["name"], attrs["value"]))
        if tag == "input" and attrs.get("type") == "hidden":
            self.hidden[attrs["name"]] = attrs["value"]
        if tag == "tr" and attrs.get("data-template"):
            self._row = attrs["data-template"]
            self.rows[self._row] = ""

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row and data.strip():
            self.rows[self._row] = " ".join([*self.rows[self._row].split(), *data.split()])


def person(role):
    """A browser-like client (CSRF checked, as in a browser) logged in as `role`."""
    client = Client(enforce_csrf_checks=True)
    user = staff_user(role)
    client.force_login(user)
    return client, user


def install(*args):
    out = io.StringIO()
    call_command("install_templates", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def same_steps(stored, template):
    """Whether stored steps are the template's (rows keep a blank value for is_set)."""

    def plain(value):
        if isinstance(value, dict):
            return {
                k: plain(v)
                for k, v in value.items()
                if not (k == "value" and v is None and "op" in value)
            }
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain(stored) == plain(template)


# ---------------------------------------------------------------- install_templates


def test_install_templates_twice_creates_each_once_and_says_so(db):
    first = install()

    made = {w.name: w.pk for w in Workflow.objects.all()}
    names = {key: templates.build(key)["name"] for key in templates.TEMPLATES}
    assert set(made) == set(names.values())
    assert first.splitlines() == [
        *(f"+ {key}: {name} (draft #{made[name]})" for key, name in names.items()),
        f"Installed {len(names)} template(s) as drafts; 0 already installed, left as they are.",
    ]
    assert "\r" not in first  # no progress bar or control characters into a pipe

    second = install()

    assert Workflow.objects.count() == len(names)
    assert second.splitlines() == [
        *(f"= {key}: {name} (#{made[name]} exists, left as it is)" for key, name in names.items()),
        f"Nothing to install: all {len(names)} template(s) already installed, left as they are.",
    ]


def test_install_templates_installs_one_by_name(db):
    out = install("payment_failed_reminder")

    workflow = Workflow.objects.get()
    assert (workflow.name, workflow.status) == ("Failed payment reminder", Workflow.Status.DRAFT)
    assert out.splitlines()[-1] == (
        "Installed 1 template(s) as drafts; 0 already installed, left as they are."
    )


def test_install_templates_leaves_an_edited_installed_template_as_it_is(db):
    install("welcome_new_customers")
    workflow = Workflow.objects.get()
    edited = workflows.draft(workflow)
    edited["steps"][0]["config"]["subject"] = "Welcome aboard, {{trigger.data.object.name}}"
    workflows.save_draft(workflow, edited)

    out = install("welcome_new_customers")

    assert Workflow.objects.get() == workflow
    assert workflows.draft(workflow)["steps"][0]["config"]["subject"] == (
        "Welcome aboard, {{trigger.data.object.name}}"
    )
    assert "left as it is" in out.splitlines()[0]


def test_every_template_installs_as_a_valid_draft_that_can_be_edited(db):
    install()

    for key in templates.TEMPLATES:
        built = templates.build(key)
        workflow = Workflow.objects.get(name=built["name"])
        draft = workflows.draft(workflow)
        assert definition.validate(draft) == [], key
        assert same_steps(draft["steps"], definition.clean(built)["steps"]), key
        workflows.save_draft(workflow, {**draft, "name": f"{draft['name']} (ours)"})
        assert Workflow.objects.get(pk=workflow.pk).name == f"{built['name']} (ours)"


def test_install_templates_passes_the_channel_to_the_slack_templates_only(db):
    install("subscription_canceled_to_slack", "welcome_new_customers", "--channel", "C0CHURN")

    slack = workflows.draft(Workflow.objects.get(name="Cancelled subscriptions to Slack"))
    [branch] = slack["steps"]
    assert branch["then"][1]["config"]["channel"] == "C0CHURN"
    assert Workflow.objects.count() == 2


def test_install_templates_refuses_unknown_names_and_owners_creating_nothing(db):
    with pytest.raises(CommandError, match=r"Unknown template\(s\): no_such\. Known: "):
        install("welcome_new_customers", "no_such")
    with pytest.raises(CommandError, match="No user 'nobody'"):
        install("--owner", "nobody")

    assert not Workflow.objects.exists()


def test_install_templates_help_explains_the_rule_with_examples():
    text = Command().create_parser("manage.py", "install_templates").format_help()

    assert "edited or not), it is left\nas it is" in text  # raw, as written
    assert "  manage.py install_templates welcome_new_customers    one template, by name" in text


# ---------------------------------------------------------------- the gallery


def test_an_editor_creates_a_draft_from_the_gallery(db):
    client, editor = person("editor")

    listing = client.get(LIST_URL)
    button = Page(listing.content.decode()).links["kanri-new-from-template"]
    gallery = client.get(button)
    page = Page(gallery.content.decode())

    assert gallery.status_code == 200
    assert [value for _name, value in page.radios] == list(templates.TEMPLATES)
    assert page.rows["subscription_canceled_to_slack"] == (
        "Cancelled subscriptions to Slack When a subscription to one product ends, post the "
        "customer's name and email, the product, the billing interval and the amount to a "
        "Slack channel, with a mention. Set the product id in the branch and the mention in "
        "the message. Subscription canceled (ended) Slack, Stripe"
    )
    assert page.rows["refund_early_fraud_warnings"].endswith(
        "Early fraud warning created Email, Stripe moves money: an approver activates it"
    )

    response = client.post(
        button,
        {
            "csrfmiddlewaretoken": page.hidden["csrfmiddlewaretoken"],
            "template": "welcome_new_customers",
        },
    )

    workflow = Workflow.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:automations_workflow_change", args=[workflow.pk])
    assert (workflow.name, workflow.status, workflow.owner) == (
        "Welcome new customers",
        Workflow.Status.DRAFT,
        editor,
    )
    assert same_steps(
        workflows.draft(workflow)["steps"],
        definition.clean(templates.welcome_new_customers())["steps"],
    )
    assert LogEntry.objects.get(object_id=str(workflow.pk)).user == editor
    change_page = client.get(response["Location"])
    assert "is a new draft from its template" in change_page.content.decode()


def test_the_gallery_makes_a_new_draft_each_time_a_template_is_chosen(db):
    client, _editor = person("editor")
    token = Page(client.get(GALLERY_URL).content.decode()).hidden["csrfmiddlewaretoken"]

    for _ in range(2):
        client.post(GALLERY_URL, {"csrfmiddlewaretoken": token, "template": "tag_vip_customers"})

    assert list(Workflow.objects.values_list("name", flat=True)) == ["Tag VIP customers"] * 2


def test_choosing_no_template_creates_nothing_and_says_so(db):
    client, _editor = person("editor")
    token = Page(client.get(GALLERY_URL).content.decode()).hidden["csrfmiddlewaretoken"]

    response = client.post(GALLERY_URL, {"csrfmiddlewaretoken": token, "template": "nope"})

    assert response.status_code == 200
    assert '<p class="errornote">Choose one of the templates.</p>' in response.content.decode()
    assert not Workflow.objects.exists()


def test_a_viewer_has_no_gallery_button_and_may_not_use_it(db):
    client, _viewer = person("viewer")

    listing = client.get(LIST_URL)

    assert listing.status_code == 200
    assert "kanri-new-from-template" not in Page(listing.content.decode()).links
    assert client.get(GALLERY_URL).status_code == 403
    viewer = Client()  # without CSRF checks, to reach the permission check itself
    viewer.force_login(_viewer)
    assert viewer.post(GALLERY_URL, {"template": "tag_vip_customers"}).status_code == 403
    assert not Workflow.objects.exists()
