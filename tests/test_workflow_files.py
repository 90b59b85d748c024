"""Workflows as code: `export_workflows` writes one YAML file per workflow, and
`import_workflows` reads them back into drafts through the one validator."""

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from automations import definition, workflow_files, workflows
from automations.management.commands.export_workflows import Command as ExportCommand
from automations.management.commands.import_workflows import Command as ImportCommand
from automations.models import Run, RunStep, SavedFilter, Workflow
from automations.problems import Problem, message
from automations.templates import (
    TEMPLATES,
    ensure_filters,
    refund_early_fraud_warnings,
    tag_vip_customers,
)
from tests.builders import (
    create_customer,
    create_payment_intent,
    create_workflow,
    early_fraud_warning,
    event,
)

TEAM = "orders@example.test"
# Stripe keys and webhook secrets by their documented prefixes, and Slack bot tokens.
SECRET = re.compile(r"\b(?:sk|rk)_(?:test|live)_\w+|\bwhsec_\w+|xox[abp]-[\w-]+")

# A workflow with money caps, a branch and Japanese text: refund small yen charges, and
# tell the team about the others.
CAPPED = {
    "name": "Small yen refunds",
    "description": "小額の返金は自動で、それ以外はチームへ。",
    "trigger": {"kind": "stripe_event", "event_type": "charge.succeeded"},
    "conditions": [
        [{"field": "trigger.data.object.amount", "op": "gt", "value": 0, "currency": "jpy"}]
    ],
    "limits": {"per_run": {"jpy": 1000}, "per_day": {"jpy": 10000}},
    "steps": [
        {
            "name": "small",
            "kind": "branch",
            "conditions": [
                [
                    {
                        "field": "trigger.data.object.amount",
                        "op": "lt",
                        "value": 1000,
                        "currency": "jpy",
                    }
                ]
            ],
            "then": [
                {
                    "name": "refund",
                    "kind": "stripe.create_refund",
                    "config": {
                        "charge": "{{trigger.data.object.id}}",
                        "amount": "{{trigger.data.object.amount}}",
                        "currency": "{{trigger.data.object.currency}}",
                        "metadata": {"reason_ja": "小額", "by": "kanri"},
                    },
                }
            ],
            "else": [
                {
                    "name": "tell_team",
                    "kind": "email.send",
                    "config": {
                        "recipient": "team",
                        "to": TEAM,
                        "subject": "確認してください: {{trigger.data.object.id}}",
                        "body": "金額: {{trigger.data.object.amount | money}}\n\nよろしく。\n",
                    },
                }
            ],
        }
    ],
}

CAPPED_FILE = """\
# Kanri workflow. `manage.py import_workflows` creates or updates its draft;
# it never activates it: activation is a person's decision, in the admin.
format: 1
name: Small yen refunds
description: 小額の返金は自動で、それ以外はチームへ。
owner: hana
status: draft
trigger:
  kind: stripe_event
  event_type: charge.succeeded
conditions:
  - - field: trigger.data.object.amount
      op: gt
      value: 0
      currency: jpy
limits:
  per_run:
    jpy: 1000
  per_day:
    jpy: 10000
steps:
  - name: small
    kind: branch
    conditions:
      - - field: trigger.data.object.amount
          op: lt
          value: 1000
          currency: jpy
    then:
      - name: refund
        kind: stripe.create_refund
        config:
          charge: '{{trigger.data.object.id}}'
          amount: '{{trigger.data.object.amount}}'
          metadata:
            by: kanri
            reason_ja: 小額
          currency: '{{trigger.data.object.currency}}'
    else:
      - name: tell_team
        kind: email.send
        config:
          recipient: team
          to: orders@example.test
          subject: '確認してください: {{trigger.data.object.id}}'
          body: |
            金額: {{trigger.data.object.amount | money}}

            よろしく。
"""


@pytest.fixture
def hana(db):
    return User.objects.create_user("hana")


def template_definitions():
    """Every template, then CAPPED, as {name: definition}; saved filters created first."""
    found = {}
    for make in TEMPLATES.values():
        data = make(team=TEAM)
        ensure_filters(data)  # the digest's saved filter
        found[data["name"]] = data
    found[CAPPED["name"]] = CAPPED
    return found


def export(directory, *args):
    out = StringIO()
    call_command("export_workflows", str(directory), *args, stdout=out)
    return out.getvalue()


def run_import(*args):
    """Return (exit code, stdout, stderr) of import_workflows."""
    out, err = StringIO(), StringIO()
    try:
        call_command("import_workflows", *map(str, args), stdout=out, stderr=err)
        code = 0
    except SystemExit as e:
        code = e.code
    return code, out.getvalue(), err.getvalue()


def drafts_by_name():
    rows = Workflow.objects.select_related("owner")
    return {w.name: (workflows.draft(w), w.owner.username if w.owner else None) for w in rows}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- round trip


def test_export_delete_import_gives_identical_definitions(hana, tmp_path):
    for data in template_definitions().values():
        create_workflow(data, owner=hana)
    create_workflow(tag_vip_customers(team="other@example.test") | {"name": "Unowned"})
    before = drafts_by_name()

    export(tmp_path)
    Workflow.objects.all().delete()
    code, out, err = run_import(tmp_path)

    assert (code, err) == (0, "")
    assert drafts_by_name() == before
    assert len(before) == len(TEMPLATES) + 2
    assert set(Workflow.objects.values_list("status", flat=True)) == {Workflow.Status.DRAFT}
    assert out.endswith(
        f"Imported {len(before)} files: {len(before)} created, 0 updated, 0 unchanged, 0 invalid.\n"
    )


def test_the_imported_copies_record_the_same_requests_in_a_dry_run(fake_stripe, hana, tmp_path):
    for data in template_definitions().values():
        create_workflow(data, owner=hana)
    export(tmp_path)
    Workflow.objects.all().delete()
    run_import(tmp_path)
    customer = create_customer()["id"]  # emails to the customer look their address up
    objects = [
        {
            "id": "ch_1",
            "object": "charge",
            "amount": amount,
            "amount_due": amount,
            "currency": currency,
            "customer": customer,
            "email": "taro@example.test",
            "charge": "ch_1",
            "paid": True,
            "refunded": False,
            "metadata": {"booking_id": "b-1"},
            "customer_address": {"country": "JP"},
            "number": "INV-1",
            "hosted_invoice_url": "https://invoice.example.test/1",
            "items": {"data": [{"price": {"product": "prod_CHANGE_ME"}}]},
            # a digest of saved filter rows
            "count": 1,
            "rows": [{"id": "ch_2", "amount": amount, "currency": currency, "failure_code": "x"}],
            "totals": [{"amount": amount, "currency": currency}],
            "filter": {"name": "Failed"},
        }
        for amount, currency in ((500, "jpy"), (250000, "usd"))
    ]

    IDS = {"customer.created": customer, "customer.subscription.deleted": "sub_1"}
    rendered = set()
    for name, data in template_definitions().items():
        copy = workflows.draft(Workflow.objects.get(name=name))
        for obj in objects:
            kind = data["trigger"]["kind"]
            sample = {"data": {"object": obj}}
            if kind == "stripe_event":
                event_type = data["trigger"]["event_type"]
                obj = {**obj, "id": IDS.get(event_type, obj["id"])}
                sample = event(event_type, obj, event_id="evt_1", created=1)

            report = workflows.dry_run(copy, sample)

            assert report == workflows.dry_run(data, sample), name
            if any(step.get("request") for step in report["steps"]):
                rendered.add(name)

    # The comparison is over rendered requests, not over empty reports.
    assert len(rendered) == len(TEMPLATES) + 1, sorted(rendered)


def normalised_inputs(workflow):
    """The requests a workflow's runs recorded, with its own ids taken out."""
    rows = RunStep.objects.filter(run__workflow=workflow).order_by("pk")
    text = json.dumps([(r.step_name, r.input) for r in rows])
    text = re.sub(rf"kanri-{workflow.pk}-\d+-", "kanri-W-R-", text)
    return json.loads(re.sub(r'"kanri_run": "\d+"', '"kanri_run": "R"', text))


def test_the_imported_copies_run_as_the_originals_did_on_the_same_signed_events(
    stripe_account, fake_stripe, smtp_server, post_event, hana, tmp_path
):
    originals = [
        create_workflow(tag_vip_customers(team=TEAM), owner=hana, status="active"),
        create_workflow(refund_early_fraud_warnings(team=TEAM), owner=hana, status="active"),
    ]
    customer = create_customer()
    intent = create_payment_intent(amount=250000, currency="usd", customer=customer["id"])
    paid = event("payment_intent.succeeded", intent)
    large = create_payment_intent(amount=2000, currency="usd")
    warning = early_fraud_warning(large["latest_charge"], large["id"])
    fake_stripe.seed(warning)
    warned = event("radar.early_fraud_warning.created", warning)
    for sent in (paid, warned):
        assert post_event(sent).status_code == 200
    expected = {w.name: normalised_inputs(w) for w in originals}
    export(tmp_path)
    # Versions are protected while runs or the workflow's active version refer to them.
    Run.objects.all().delete()
    Workflow.objects.update(active_version=None)
    Workflow.objects.all().delete()

    run_import(tmp_path)
    for copy in Workflow.objects.all():
        workflows.activate(copy)
    for sent in (paid, warned):
        assert post_event(sent).status_code == 200

    assert {w.name: normalised_inputs(w) for w in Workflow.objects.all()} == expected
    assert [s for s, _ in expected["Tag VIP customers"]] == ["notify_team", "is_vip", "tag_vip"]
    assert [s for s, _ in expected["Act on Radar early fraud warnings"]] == [
        "charge",
        "under_dispute_fee",
        "ask_team",
    ]
    assert len(smtp_server.messages) == 4


# ---------------------------------------------------------------- the file


def test_a_file_holds_the_workflow_in_a_fixed_human_order(hana, tmp_path):
    create_workflow(CAPPED, owner=hana)

    export(tmp_path)

    assert [p.name for p in tmp_path.iterdir()] == ["small-yen-refunds.yaml"]
    assert (tmp_path / "small-yen-refunds.yaml").read_text(encoding="utf-8") == CAPPED_FILE


def test_exporting_twice_writes_the_same_bytes(hana, tmp_path):
    for data in template_definitions().values():
        create_workflow(data, owner=hana)
    export(tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    out = export(tmp_path)

    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first
    total = len(TEMPLATES) + 1
    assert out.splitlines()[-1] == (
        f"Exported {total} workflows to {tmp_path}: 0 written, {total} unchanged, 0 left out."
    )
    assert out.count("\n= ") + out.startswith("= ") == total


def test_no_progress_bar_is_drawn_when_the_output_is_not_a_terminal(hana, tmp_path):
    create_workflow(CAPPED, owner=hana)

    out = export(tmp_path)

    assert out == (
        "+ small-yen-refunds.yaml\n"
        "Exporting workflows: 1/1\n"
        f"Exported 1 workflows to {tmp_path}: 1 written, 0 unchanged, 0 left out.\n"
    )
    assert "\r" not in out


def test_file_names_are_slugs_made_unique_with_the_id(db, tmp_path):
    first = create_workflow(CAPPED)
    second = create_workflow(CAPPED)  # names need not be unique
    japanese = create_workflow({**CAPPED, "name": "小額返金"})

    export(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "small-yen-refunds.yaml",
            f"small-yen-refunds-{second.pk}.yaml",
            f"workflow-{japanese.pk}.yaml",
        ]
    )
    assert first.pk < second.pk
    assert "name: 小額返金\n" in (tmp_path / f"workflow-{japanese.pk}.yaml").read_text()


def test_export_writes_the_draft_or_with_active_the_active_version(hana, tmp_path):
    live = create_workflow(CAPPED, owner=hana, status="active")
    workflows.save_draft(live, {**CAPPED, "description": "draft only"})
    create_workflow({**CAPPED, "name": "Never activated"})

    export(tmp_path / "draft")
    out = export(tmp_path / "active", "--active")

    assert "description: draft only\n" in (tmp_path / "draft/small-yen-refunds.yaml").read_text()
    active = (tmp_path / "active/small-yen-refunds.yaml").read_text()
    assert f"description: {CAPPED['description']}\n" in active
    assert "status: active\n" in active
    assert sorted(p.name for p in (tmp_path / "active").iterdir()) == ["small-yen-refunds.yaml"]
    assert "- Never activated (never activated, left out)\n" in out


def test_export_picks_workflows_by_id_or_name_and_refuses_unknown_ones(db, tmp_path):
    capped = create_workflow(CAPPED)
    vip = create_workflow(tag_vip_customers())
    create_workflow(refund_early_fraud_warnings())

    export(tmp_path, "--workflow", str(capped.pk), "--workflow", vip.name)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "small-yen-refunds.yaml",
        "tag-vip-customers.yaml",
    ]
    with pytest.raises(CommandError, match=r"No workflow with the id or name: 'nope', '999'\."):
        export(tmp_path, "--workflow", "nope", "999")


def test_no_secret_is_ever_written(stripe_account, settings, hana, tmp_path):
    for data in template_definitions().values():
        create_workflow(data, owner=hana)
    assert SECRET.search(settings.STRIPE_SECRET_KEY + " " + settings.SLACK_BOT_TOKEN)

    export(tmp_path)
    export(tmp_path / "active", "--active")

    texts = [p.read_text() for p in tmp_path.rglob("*.yaml")]
    assert len(texts) == len(TEMPLATES) + 1
    assert [SECRET.findall(t) for t in texts] == [[]] * len(texts)


def test_both_commands_explain_themselves_with_examples():
    export_help = ExportCommand().create_parser("manage.py", "export_workflows").format_help()
    import_help = ImportCommand().create_parser("manage.py", "import_workflows").format_help()

    assert "manage.py export_workflows workflows/ --workflow" in export_help
    assert "--active" in export_help
    assert "manage.py import_workflows workflows/ --check" in import_help
    assert "matched to the workflow with\nexactly its name" in import_help


# ---------------------------------------------------------------- import and --check


def test_check_says_what_would_change_writes_nothing_and_exits_1(hana, tmp_path):
    create_workflow(CAPPED, owner=hana)
    export(tmp_path)
    Workflow.objects.all().delete()

    code, out, err = run_import(tmp_path, "--check")

    assert (code, err) == (
        1,
        "Checked 1 files: 1 would be created, 0 updated, 0 unchanged, 0 invalid.\n",
    )
    path = tmp_path / "small-yen-refunds.yaml"
    assert out == f"+ {path}: Small yen refunds: would be created\nImporting workflows: 1/1\n"
    assert not Workflow.objects.exists()


def test_check_is_quiet_and_exits_0_when_nothing_would_change(hana, tmp_path):
    create_workflow(CAPPED, owner=hana)
    export(tmp_path)

    code, out, err = run_import(tmp_path, "--check")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"= {tmp_path / 'small-yen-refunds.yaml'}: Small yen refunds: unchanged",
        "Importing workflows: 1/1",
        "Checked 1 files: 0 would be created, 0 updated, 1 unchanged, 0 invalid.",
    ]


def test_check_shows_the_diff_of_an_update_and_changes_nothing(hana, tmp_path):
    workflow = create_workflow(CAPPED, owner=hana)
    export(tmp_path)
    path = tmp_path / "small-yen-refunds.yaml"
    write(path, path.read_text().replace("よろしく。", "お願いします。").replace("hana", "null"))
    updated_at = Workflow.objects.get().updated_at

    code, out, err = run_import(tmp_path, "--check")

    assert code == 1
    assert err == "Checked 1 files: 0 would be created, 1 updated, 0 unchanged, 0 invalid.\n"
    # definition.diff: the draft and its owner before and after, as the version history.
    assert out.splitlines() == [
        f"~ {path}: Small yen refunds: would be updated",
        "    --- before",
        "    +++ after",
        "    @@ -20,5 +20,5 @@",
        "       },",
        '       "name": "Small yen refunds",',
        '    -  "owner": "hana",',
        '    +  "owner": null,',
        '       "steps": [',
        "         {",
        "    @@ -36,5 +36,5 @@",
        "             {",
        '               "config": {',
        '    -            "body": "金額: {{trigger.data.object.amount | money}}'
        '\\n\\nよろしく。\\n",',
        '    +            "body": "金額: {{trigger.data.object.amount | money}}'
        '\\n\\nお願いします。\\n",',
        '                 "recipient": "team",',
        '                 "subject": "確認してください: {{trigger.data.object.id}}",',
        "Importing workflows: 1/1",
    ]
    assert drafts_by_name() == {CAPPED["name"]: (workflows.draft(workflow), "hana")}
    assert Workflow.objects.get().updated_at == updated_at
    assert workflows.draft(workflow)["steps"] == definition.clean(CAPPED)["steps"]


def test_import_updates_the_draft_of_an_active_workflow_but_not_its_active_version(hana, tmp_path):
    workflow = create_workflow(CAPPED, owner=hana, status="active")
    version = workflow.active_version
    export(tmp_path)
    path = tmp_path / "small-yen-refunds.yaml"
    write(path, path.read_text().replace("value: 1000\n", "value: 500\n"))

    code, out, err = run_import(path)
    again = run_import(path)

    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"~ {path}: Small yen refunds: draft updated"
    workflow.refresh_from_db()
    assert (workflow.status, workflow.active_version) == (Workflow.Status.ACTIVE, version)
    assert version.definition == definition.clean(CAPPED)
    assert workflows.draft(workflow)["steps"][0]["conditions"][0][0]["value"] == 500
    assert workflow.versions.count() == 1
    assert again[0] == 0
    assert again[1].splitlines()[0] == f"= {path}: Small yen refunds: unchanged"


def test_the_owner_is_matched_by_username_and_may_be_overridden(hana, tmp_path):
    create_workflow(CAPPED, owner=hana)
    export(tmp_path)
    Workflow.objects.all().delete()
    User.objects.create_user("ken")

    assert run_import(tmp_path, "--owner", "ken")[0] == 0
    assert Workflow.objects.get().owner.username == "ken"
    assert run_import(tmp_path)[0] == 0
    assert Workflow.objects.get().owner == hana
    with pytest.raises(CommandError, match=r"There is no user 'nobody'\."):
        run_import(tmp_path, "--owner", "nobody")


def test_an_unknown_owner_is_a_clear_error_and_imports_nothing(db, tmp_path):
    path = write(tmp_path / "capped.yaml", CAPPED_FILE)

    code, _out, err = run_import(path)

    assert code == 1
    assert err.splitlines() == [
        f"{path}: owner: There is no user 'hana'.",
        f"! {path}: invalid, nothing imported",
        "Imported 1 files: 0 created, 0 updated, 0 unchanged, 1 invalid.",
    ]
    assert not Workflow.objects.exists()


def test_every_problem_is_reported_with_its_file_and_path_and_the_file_imports_nothing(
    hana, tmp_path
):
    bad = CAPPED_FILE.replace("'{{trigger.data.object.amount}}'", "'{{trigger.data.object.amout}}'")
    bad = bad.replace("op: gt", "op: bigger").replace("name: tell_team", "name: Tell Team")
    refund = write(tmp_path / "refund.yaml", bad)
    good = write(tmp_path / "vip.yaml", workflow_files.dumps(tag_vip_customers(), owner="hana"))

    code, out, err = run_import(tmp_path)

    problems = [
        Problem("conditions.0.0.op", "operator_unknown", {"op": "bigger"}),
        Problem(
            "steps.0.then.0.config.amount",
            "reference_field_unknown",
            {"path": "trigger.data.object.amout", "source": "charge.succeeded events"},
        ),
        Problem("steps.0.else.0.name", "step_name_invalid", {"name": "Tell Team"}),
    ]
    assert code == 1
    assert err.splitlines() == [
        *(f"{refund}: {p.where}: {message(p)}" for p in problems),
        f"! {refund}: invalid, nothing imported",
        "Imported 2 files: 1 created, 0 updated, 0 unchanged, 1 invalid.",
    ]
    assert f"+ {good}: Tag VIP customers: created (draft)\n" in out
    assert list(Workflow.objects.values_list("name", flat=True)) == ["Tag VIP customers"]


MAPPING = "A workflow file is one mapping (format: 1, name: …, trigger: …, steps: …),"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "name: [unclosed\n",
            "Not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "- a list\n",
            f"{MAPPING} not a list.",
        ),
        (
            "",
            f"{MAPPING} not an empty document.",
        ),
        ("name: x\n", "format: No format version: the file must say “format: 1”."),
        ("format: 2\nname: x\n", "format: Unknown format version 2: this Kanri reads version 1."),
        (
            "format: 1\nname: a\nname: b\n",
            "Not valid YAML at line 3, column 1: the key 'name' appears twice",
        ),
        (
            "format: 1\nname: !!python/object:os.system x\n",
            "Not valid YAML at line 2, column 7: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system'",
        ),
        (b"format: 1\nname: \xff\n", "The file is not UTF-8 text."),
    ],
    ids=[
        "syntax",
        "list",
        "empty",
        "no format",
        "format 2",
        "duplicate key",
        "python tag",
        "bytes",
    ],
)
def test_a_broken_file_is_a_clear_error_with_its_name_never_a_traceback(db, tmp_path, text, error):
    path = tmp_path / "broken.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        write(path, text)

    code, _out, err = run_import(path)

    assert code == 1
    assert err.splitlines() == [
        f"{path}: {error}",
        f"! {path}: invalid, nothing imported",
        "Imported 1 files: 0 created, 0 updated, 0 unchanged, 1 invalid.",
    ]


def test_unknown_keys_and_values_json_cannot_hold_are_problems_too(db, tmp_path):
    text = CAPPED_FILE.replace("owner: hana\n", "owner: null\nstepz: []\n")
    text = text.replace("by: kanri", "by: !!binary aGk=")
    path = write(tmp_path / "capped.yaml", text)

    code, _out, err = run_import(path)

    assert code == 1
    assert err.splitlines() == [
        f"{path}: stepz: Unknown key.",
        f"{path}: steps.0.then.0.config.metadata.by: A bytes is not allowed here: use text, "
        "numbers, true/false, lists and mappings.",
        f"! {path}: invalid, nothing imported",
        "Imported 1 files: 0 created, 0 updated, 0 unchanged, 1 invalid.",
    ]
    assert not Workflow.objects.exists()


def test_a_missing_path_is_an_error(db, tmp_path):
    with pytest.raises(CommandError, match=r"nope\.yaml: no such file or directory\."):
        run_import(tmp_path / "nope.yaml")


def test_two_files_naming_one_workflow_are_refused(db, tmp_path):
    text = CAPPED_FILE.replace("owner: hana", "owner: null")
    first = write(tmp_path / "a.yaml", text)
    second = write(tmp_path / "b.yml", text)

    code, _out, err = run_import(tmp_path)

    assert code == 1
    assert (
        err.splitlines()[0]
        == f"{second}: name: {first} names the same workflow 'Small yen refunds'."
    )
    assert Workflow.objects.count() == 1


def test_an_import_matching_several_workflows_by_name_is_refused(db, tmp_path):
    create_workflow(CAPPED)
    create_workflow(CAPPED)
    path = write(tmp_path / "a.yaml", CAPPED_FILE.replace("owner: hana", "owner: null"))

    code, _out, err = run_import(path)

    assert code == 1
    assert err.splitlines()[0] == (
        f"{path}: name: 2 workflows are named 'Small yen refunds': rename all but one first."
    )


def test_a_scheduled_workflow_needs_its_saved_filter(db, tmp_path):
    digest = TEMPLATES["failed_payments_digest"]()
    path = write(tmp_path / "digest.yaml", workflow_files.dumps(digest))

    code, _out, err = run_import(path)

    assert code == 1
    problem = Problem("trigger.filter", "schedule_filter_unknown", {"filter": "failed-yesterday"})
    assert err.splitlines()[0] == f"{path}: trigger.filter: {message(problem)}"
    ensure_filters(digest)
    assert SavedFilter.objects.filter(slug="failed-yesterday").exists()
    assert run_import(path)[0] == 0


# ---------------------------------------------------------------- hostile files


def test_yaml_aliases_are_refused_so_a_billion_laughs_cannot_blow_up(db, tmp_path):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = write(tmp_path / "laughs.yaml", "format: 1\n" + "\n".join(lines) + "\n")

    code, _out, err = run_import(path)

    assert code == 1
    assert err.splitlines()[0] == (
        f"{path}: Not valid YAML at line 3, column 10: aliases (*a0) are not allowed"
    )


def test_merge_keys_are_refused(db):
    document = workflow_files.read("format: 1\nbase: &b {name: x}\n<<: *b\n")

    assert [str(e) for e in document.errors] == [
        "Not valid YAML at line 3, column 5: aliases (*b) are not allowed"
    ]


def test_deeply_nested_and_huge_files_are_refused(db, tmp_path):
    deep = write(tmp_path / "deep.yaml", "format: 1\nname: " + "[" * 50_000 + "]" * 50_000)
    huge = write(tmp_path / "huge.yaml", "format: 1\nname: " + "x" * workflow_files.MAX_BYTES)

    code, _out, err = run_import(deep, huge)

    assert code == 1
    assert err.splitlines()[0] == (
        f"{deep}: Not valid YAML at line 2, column 106: nested more than 100 levels deep"
    )
    assert f"{huge}: The file is larger than 1000000 bytes.\n" in err


def test_too_many_or_too_deep_steps_are_the_validators_problems(db, tmp_path):
    step = {"name": "s", "kind": "email.send", "config": {"recipient": "team", "to": TEAM}}
    many = {**CAPPED, "steps": [{**step, "name": f"s{i}"} for i in range(501)]}
    nested = []
    for i in range(25):
        nested = [{"name": f"b{i}", "kind": "branch", "conditions": [], "then": nested}]
    deep = {**CAPPED, "steps": nested}
    paths = [
        write(tmp_path / "many.yaml", workflow_files.dumps(many)),
        write(tmp_path / "nested.yaml", workflow_files.dumps(deep)),
    ]

    code, _out, err = run_import(*paths)

    assert code == 1
    too_many = Problem("steps", "steps_too_many", {"depth": 20, "count": 500})
    too_deep = Problem("steps", "steps_too_deep", {"depth": 20, "count": 500})
    assert f"{paths[0]}: steps: {message(too_many)}\n" in err
    assert f"{paths[1]}: steps: {message(too_deep)}\n" in err
    assert not Workflow.objects.exists()


def test_ambiguous_yaml_1_1_scalars_are_read_as_text():
    value, errors = workflow_files.load(
        "a: NO\nb: 9:30\nc: 2026-01-31\nd: '0123'\ne: 0123\nf: true\ng: 12\nh: on\ni: 1.5\n"
    )

    assert errors == []
    assert value == {
        "a": "NO",
        "b": "9:30",
        "c": "2026-01-31",
        "d": "0123",
        "e": "0123",
        "f": True,
        "g": 12,
        "h": "on",
        "i": 1.5,
    }


def test_strings_that_look_like_other_values_survive_the_round_trip():
    tricky = [
        "NO",
        "yes",
        "9:30",
        "2026-01-31",
        "0123",
        "12",
        "null",
        "~",
        " lead",
        "a\tb",
        "trailing \nspace",
        "#x",
        "- y",
        "「引用」",
        "line\n",
    ]
    data = {**CAPPED, "conditions": [[{"field": "f", "op": "in", "value": tricky}]]}

    document = workflow_files.read(workflow_files.dumps(data, owner="hana"))

    assert document.errors == []
    assert document.definition["conditions"][0][0]["value"] == tricky
    assert document.owner == "hana"


def test_a_name_that_is_not_text_is_refused(db, tmp_path):
    text = CAPPED_FILE.replace("name: Small yen refunds", "name: 2024").replace("hana", "null")
    path = write(tmp_path / "capped.yaml", text)

    code, _out, err = run_import(path)

    assert code == 1
    assert err.splitlines()[0] == f"{path}: name: This is text: quote it."
    assert not Workflow.objects.exists()
