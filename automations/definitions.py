"""A workflow as one plain dict: what a version snapshots, templates install and files export.

    {
      "name": "Tag VIP customers",
      "description": "",
      "trigger": {"kind": "event", "event_type": "payment_intent.succeeded"},
      "conditions": [[{"field": "trigger.data.object.amount", "op": "gt",
                       "value": 100000, "currency": "usd"}]],
      "steps": [
        {"name": "notify", "kind": "email.send", "config": {...}},
        {"name": "is_vip", "kind": "branch", "conditions": [[...]],
         "then": [{"name": "tag", "kind": "stripe.update_customer_metadata", ...}],
         "else": []},
      ],
    }

Conditions are groups (lists) of conditions: all in a group must hold, any group will do.
"""

import difflib
import json
import re

from django.core.exceptions import ValidationError
from django.db import transaction

from automations.engine.conditions import OPERATORS, UNARY
from automations.engine.references import ROOTS, parse, references_in, strings_in
from automations.models import Condition, Step, Workflow, WorkflowVersion
from integrations.registry import ACTIONS, UnknownAction, get_action

BRANCH = Step.BRANCH
STEP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
CURRENCY = re.compile(r"^[a-z]{3}$")


# ------------------------------------------------------------------ rows -> dict


def _condition_dict(condition):
    data = {"field": condition.field, "op": condition.operator, "value": condition.value}
    if condition.currency:
        data["currency"] = condition.currency.lower()
    return data


def _groups(conditions):
    groups = {}
    for condition in conditions:
        groups.setdefault(condition.group, []).append(_condition_dict(condition))
    return [groups[key] for key in sorted(groups)]


def snapshot(workflow):
    """Return the definition dict of a workflow's current rows (two queries)."""
    return snapshots([workflow])[workflow.pk]


def snapshots(workflows):
    """Return {workflow id: definition} for many workflows in two queries."""
    workflows = list(workflows)
    ids = [w.pk for w in workflows]
    steps = list(Step.objects.filter(workflow__in=ids))
    by_step = {}
    for condition in Condition.objects.filter(workflow__in=ids):
        by_step.setdefault((condition.workflow_id, condition.step_id), []).append(condition)
    children = {}
    for step in steps:
        children.setdefault((step.workflow_id, step.parent_id, step.arm), []).append(step)

    def tree(workflow_id, parent_id, arm):
        out = []
        for step in children.get((workflow_id, parent_id, arm), []):
            item = {"name": step.name, "kind": step.kind}
            if step.kind == BRANCH:
                item["conditions"] = _groups(by_step.get((workflow_id, step.pk), []))
                item["then"] = tree(workflow_id, step.pk, Step.Arm.THEN)
                item["else"] = tree(workflow_id, step.pk, Step.Arm.ELSE)
            else:
                item["config"] = step.config
            out.append(item)
        return out

    return {
        w.pk: {
            "name": w.name,
            "description": w.description,
            "trigger": {"kind": w.trigger_kind, "event_type": w.event_type},
            "conditions": _groups(by_step.get((w.pk, None), [])),
            "steps": tree(w.pk, None, ""),
        }
        for w in workflows
    }


# ------------------------------------------------------------------ validation


def iter_steps(steps):
    """Yield every step dict, depth first, in execution order."""
    for step in steps:
        yield step
        if step.get("kind") == BRANCH:
            yield from iter_steps(step.get("then", []))
            yield from iter_steps(step.get("else", []))


def validate(definition):
    """Return the definition with each step's config cleaned; raise ValidationError listing
    every problem, each prefixed with where it is."""
    errors = []
    trigger = definition.get("trigger") or {}
    if trigger.get("kind", "event") != "event":
        errors.append(f"Trigger: unknown kind {trigger.get('kind')!r}.")
    elif not trigger.get("event_type"):
        errors.append("Trigger: choose the Stripe event that starts the workflow.")
    errors += _check_conditions(definition.get("conditions") or [], "Conditions", set())

    names = [step.get("name") for step in iter_steps(definition.get("steps") or [])]
    for name in {n for n in names if names.count(n) > 1}:
        errors.append(f"Step {name!r}: two steps have this name; each needs its own.")
    cleaned_steps = _check_steps(definition.get("steps") or [], set(), errors)
    if errors:
        raise ValidationError(errors)
    return {**definition, "steps": cleaned_steps}


def _check_steps(steps, earlier, errors):
    """Validate steps in order; `earlier` holds names of steps certain to have run before."""
    cleaned = []
    for step in steps:
        name, kind = step.get("name") or "", step.get("kind") or ""
        where = f"Step {name!r}" if name else "A step"
        if not STEP_NAME.match(name):
            errors.append(
                f"{where}: a name is lower-case letters, digits and _, starting with a letter."
            )
        if kind == BRANCH:
            errors += _check_conditions(step.get("conditions") or [], where, earlier)
            if not step.get("conditions"):
                errors.append(f"{where}: a branch needs at least one condition.")
            item = {
                "name": name,
                "kind": BRANCH,
                "conditions": step.get("conditions") or [],
                # Steps inside an arm may not have run, so only earlier ones can be referenced.
                "then": _check_steps(step.get("then") or [], set(earlier), errors),
                "else": _check_steps(step.get("else") or [], set(earlier), errors),
            }
        else:
            item = {
                "name": name,
                "kind": kind,
                "config": _check_config(step, where, earlier, errors),
            }
        cleaned.append(item)
        earlier.add(name)
    return cleaned


def _check_config(step, where, earlier, errors):
    try:
        action = get_action(step.get("kind"))
    except UnknownAction as e:
        errors.append(f"{where}: {e}")
        return step.get("config") or {}
    try:
        config = action.validate(step.get("config") or {})
    except ValidationError as e:
        for field, messages in e.message_dict.items():
            errors += [f"{where}, {field}: {message}" for message in messages]
        return step.get("config") or {}
    errors += [f"{where}: {problem}" for problem in check_references(config, earlier)]
    return config


def check_references(value, earlier):
    """Return problems with the references in a config value (syntax and step order)."""
    problems = []
    for text in strings_in(value):
        if text.count("{{") != text.count("}}"):
            problems.append(f"unbalanced {{{{ }}}} in {text!r}.")
    for path in references_in(value):
        problems += check_path(path, earlier)
    for _, filter_name in (p for s in strings_in(value) for p in parse(s)):
        if filter_name and filter_name not in ("money", "upper", "lower"):
            problems.append(f"unknown filter {filter_name!r}.")
    return problems


def check_path(path, earlier):
    parts = path.split(".")
    if parts[0] not in ROOTS:
        return [f"unknown reference {{{{{path}}}}}: it must start with {', '.join(ROOTS)}."]
    if parts[0] == "steps" and (len(parts) < 3 or parts[1] not in earlier):
        name = parts[1] if len(parts) > 1 else ""
        return [f"unknown reference {{{{{path}}}}}: no step {name!r} runs before this point."]
    return []


def _check_conditions(groups, where, earlier):
    errors = []
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        return [f"{where}: conditions must be a list of groups."]
    for condition in (c for group in groups for c in group):
        field, op = condition.get("field") or "", condition.get("op")
        label = f"{where}, condition on {field or '(no field)'}"
        if not field:
            errors.append(f"{label}: choose a field.")
        else:
            errors += [f"{label}: {problem}" for problem in check_path(field, earlier)]
        if op not in OPERATORS:
            errors.append(f"{label}: unknown operator {op!r}.")
            continue
        value, currency = condition.get("value"), condition.get("currency")
        if op not in UNARY and value in (None, ""):
            errors.append(f"{label}: enter a value.")
        if op in ("in", "not_in") and not isinstance(value, list):
            errors.append(f"{label}: 'is one of' needs a list of values.")
        if currency:
            if not CURRENCY.match(str(currency).lower()):
                errors.append(f"{label}: {currency!r} is not a currency code.")
            values = value if isinstance(value, list) else [value]
            if op not in UNARY and not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                errors.append(f"{label}: a money value is a whole number of minor units.")
    return errors


# ------------------------------------------------------------------ dict -> rows


@transaction.atomic
def create_workflow(definition, owner=None, status=Workflow.Status.DRAFT):
    """Create a workflow with its condition and step rows from a definition dict."""
    definition = validate(definition)
    workflow = Workflow.objects.create(
        name=definition["name"],
        description=definition.get("description", ""),
        owner=owner,
        event_type=definition["trigger"]["event_type"],
    )
    _create_rows(workflow, definition)
    if status == Workflow.Status.ACTIVE:
        activate(workflow, owner)
        workflow.refresh_from_db()
    return workflow


@transaction.atomic
def restore(workflow, definition):
    """Replace a workflow's editable rows (its draft) with a definition, e.g. a version's."""
    definition = validate(definition)
    workflow.steps.all().delete()
    workflow.conditions.all().delete()
    workflow.event_type = definition["trigger"]["event_type"]
    workflow.save(update_fields=["event_type", "updated_at"])
    _create_rows(workflow, definition)


def _create_rows(workflow, definition):
    _create_conditions(workflow, None, definition.get("conditions") or [])
    position = iter(range(1, 10_000))

    def create_steps(steps, parent, arm):
        for step in steps:
            row = Step.objects.create(
                workflow=workflow,
                parent=parent,
                arm=arm,
                position=next(position),
                name=step["name"],
                kind=step["kind"],
                config=step.get("config") or {},
            )
            if step["kind"] == BRANCH:
                _create_conditions(workflow, row, step["conditions"])
                create_steps(step.get("then") or [], row, Step.Arm.THEN)
                create_steps(step.get("else") or [], row, Step.Arm.ELSE)

    create_steps(definition.get("steps") or [], None, "")


def _create_conditions(workflow, step, groups):
    Condition.objects.bulk_create(
        Condition(
            workflow=workflow,
            step=step,
            group=number,
            position=position,
            field=c["field"],
            operator=c["op"],
            value=c.get("value"),
            currency=(c.get("currency") or "").lower(),
        )
        for number, group in enumerate(groups, start=1)
        for position, c in enumerate(group)
    )


@transaction.atomic
def activate(workflow, user=None):
    """Snapshot the workflow into a new version (unless unchanged) and make it active."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    definition = validate(snapshot(workflow))
    latest = workflow.versions.order_by("-number").first()
    if latest is None or latest.definition != definition:
        latest = WorkflowVersion.objects.create(
            workflow=workflow,
            number=(latest.number + 1) if latest else 1,
            definition=definition,
            created_by=user,
        )
    workflow.active_version = latest
    workflow.status = Workflow.Status.ACTIVE
    workflow.save(update_fields=["active_version", "status", "updated_at"])
    return latest


def pause(workflow):
    workflow.status = Workflow.Status.PAUSED
    workflow.save(update_fields=["status", "updated_at"])


def moves_money(definition):
    """Return whether any step of the definition moves money (needs an approver)."""
    return any(
        step["kind"] in ACTIONS and get_action(step["kind"]).moves_money
        for step in iter_steps(definition.get("steps") or [])
    )


def diff(old, new):
    """Return unified-diff lines between two definitions, for the version history."""

    def lines(definition):
        if definition is None:
            return []
        return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), "before", "after", lineterm="", n=2))
