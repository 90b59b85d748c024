"""A workflow as one plain dict: what a version snapshots, templates install and files export.

    {
      "name": "Tag VIP customers",
      "description": "",
      "trigger": {"kind": "stripe_event", "event_type": "payment_intent.succeeded"},
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

This module is the one home of the definition: its shape, the one tree walker, rows ↔
dict, and the one validator. `validate()` returns located Problems and consults the
field catalog, so `{{trigger.data.object.amout}}` is refused wherever a definition
enters (the editor, templates, activation, restore, import, the API).
"""

import copy
import difflib
import json
import re

from django.db import transaction

from automations import catalog, triggers
from automations.engine.conditions import OPERATORS, UNARY
from automations.engine.references import strings_in
from automations.models import Condition, Step, TriggerKind, Workflow
from automations.problems import InvalidDefinition, Problem
from integrations.fields import AmountField
from integrations.references import (
    FILTERS,
    ITEM,
    REFERENCE,
    ROOTS,
    Loop,
    parse,
    path_problem,
    split,
)
from integrations.registry import ACTIONS, UnknownAction, get_action

BRANCH = Step.BRANCH
STEP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
CURRENCY = re.compile(r"^[a-z]{3}$")
ARMS = ("then", "else")
# Branches nest at most this deep, and a definition has at most this many steps: a hostile
# import or API body is refused with a Problem instead of exhausting the stack.
MAX_DEPTH = 20
MAX_STEPS = 500
NAME_MAX = Workflow._meta.get_field("name").max_length


# ------------------------------------------------------------------ the tree walker


def walk(steps, where="steps", earlier=None):
    """Yield (step, where, earlier) for every step, depth first, in execution order.

    `where` locates the step in the definition ("steps.1.then.0"); `earlier` maps the
    names of steps certain to have run before it to their kinds. Steps inside an arm may
    not run, so the steps after a branch cannot rely on them.
    """
    earlier = dict(earlier or {})
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        here = f"{where}.{index}"
        yield step, here, dict(earlier)
        if not isinstance(step, dict):
            continue
        if step.get("kind") == BRANCH:
            for arm in ARMS:
                yield from walk(step.get(arm) or [], f"{here}.{arm}", earlier)
        if isinstance(step.get("name"), str):
            earlier[step["name"]] = step.get("kind")


def iter_steps(steps):
    """Yield every step dict, depth first, in execution order."""
    for step, _, _ in walk(steps):
        if isinstance(step, dict):
            yield step


def moves_money(definition):
    """Return whether any step of the definition moves money (needs an approver)."""
    return any(
        step.get("kind") in ACTIONS and get_action(step["kind"]).moves_money
        for step in iter_steps(definition.get("steps") or [])
    )


def providers(definition):
    """Return the external systems a definition's steps touch, e.g. ["Email", "Stripe"]."""
    kinds = {s.get("kind") for s in iter_steps(definition.get("steps") or [])}
    return sorted({get_action(kind).provider for kind in kinds if kind in ACTIONS})


def action_labels(definition):
    return [
        str(get_action(s["kind"]).label)
        for s in iter_steps(definition.get("steps") or [])
        if s.get("kind") in ACTIONS
    ]


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


def trigger_of(workflow):
    """Return the trigger dict of a workflow row."""
    kind = triggers.kind(workflow.trigger_kind)
    columns = kind.COLUMNS if kind else {}
    options = workflow.trigger_options or {}
    return {
        "kind": workflow.trigger_kind,
        **{k: getattr(workflow, c) for k, c in columns.items()},
        **{k: options[k] for k in getattr(kind, "OPTIONS", ()) if k in options},
    }


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
            "trigger": trigger_of(w),
            "conditions": _groups(by_step.get((w.pk, None), [])),
            "steps": tree(w.pk, None, ""),
            # Only when set, so versions made before caps existed still equal their draft.
            **({"limits": w.limits} if w.limits else {}),
        }
        for w in workflows
    }


# ------------------------------------------------------------------ validation


def validate(definition):
    """Return the Problems with a definition: [] when it may be saved and run."""
    return check(definition)[1]


def clean(definition):
    """Return the definition with each step's config cleaned, or raise InvalidDefinition."""
    cleaned, problems = check(definition)
    if problems:
        raise InvalidDefinition(problems)
    return cleaned


def check(definition):
    """Return (cleaned definition, problems)."""
    if not isinstance(definition, dict):
        return definition, [Problem("", "definition_invalid")]
    problems = []
    name, description = definition.get("name"), definition.get("description")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", "name_required"))
    elif len(name) > NAME_MAX:  # the column's size: a longer one would fail on saving
        problems.append(Problem("name", "name_too_long", {"max": NAME_MAX}))
    if description not in (None, "") and not isinstance(description, str):
        problems.append(Problem("description", "description_invalid"))
    trigger = definition.get("trigger")
    if not isinstance(trigger, dict):
        problems.append(Problem("trigger", "trigger_invalid"))
        trigger = {}
    else:
        # Values are looked up in dicts (kinds, events, objects): only scalars can name one.
        scalar = (str, int, float, bool, type(None))
        for key in [k for k, v in trigger.items() if not isinstance(v, scalar)]:
            problems.append(Problem(f"trigger.{key}", "trigger_invalid"))
            trigger = {k: v for k, v in trigger.items() if k != key}
        kind_name = trigger.get("kind")
        kind = triggers.kind(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            problems.append(
                Problem("trigger.kind", "trigger_kind_unknown", {"kind": trigger.get("kind")})
            )
        else:
            problems += kind.validate(trigger)
    problems += _check_conditions(definition.get("conditions") or [], "conditions", trigger, {})
    limits, limit_problems = _check_limits(definition)
    problems += limit_problems

    steps = definition.get("steps") or []
    if not isinstance(steps, list):
        return definition, [*problems, Problem("steps", "steps_invalid")]
    too_big = _too_big(steps)
    if too_big:
        return definition, [
            *problems,
            Problem("steps", too_big, {"depth": MAX_DEPTH, "count": MAX_STEPS}),
        ]
    # Each step of a copy is checked and normalised in place as the one walker reaches it
    # (it reads a branch's arms only after yielding the branch); the caller's dict is kept.
    steps = copy.deepcopy(steps)
    seen = set()
    for step, where, earlier in walk(steps):
        if not isinstance(step, dict):
            problems.append(Problem(where, "step_invalid"))
            continue
        step_problems, config = _check_step(step, where, earlier, trigger, seen)
        problems += step_problems
        _normalise(step, config)
    cleaned = {**definition, "steps": steps}
    cleaned.pop("limits", None)
    if limits:
        cleaned["limits"] = limits
    if not limits and not problems and moves_money(cleaned):
        problems.append(Problem("limits", "limits_required"))
    return cleaned, problems


def _check_limits(definition):
    """Return (normalised caps or {}, problems) for a definition's money caps."""
    limits = definition.get("limits")
    if limits in (None, {}, ""):
        return {}, []
    if not isinstance(limits, dict) or set(limits) - {"per_run", "per_day"}:
        return {}, [Problem("limits", "limits_invalid")]
    cleaned, problems = {}, []
    for cap in ("per_run", "per_day"):
        amounts = limits.get(cap) or {}
        if not isinstance(amounts, dict):
            problems.append(Problem(f"limits.{cap}", "limits_invalid"))
            continue
        for currency, amount in amounts.items():
            code = str(currency).lower()
            if not CURRENCY.match(code):
                problems.append(
                    Problem(f"limits.{cap}", "currency_invalid", {"currency": currency})
                )
            elif not _is_int(amount) or amount <= 0:
                problems.append(Problem(f"limits.{cap}.{code}", "limit_amount_invalid"))
            else:
                cleaned.setdefault(cap, {})[code] = amount
    if not problems and not (cleaned.get("per_run") and cleaned.get("per_day")):
        problems.append(Problem("limits", "limits_required"))
    return (cleaned if not problems else {}), problems


def _normalise(step, config):
    """Keep only a step's own keys, with its cleaned config (or the raw one if invalid)."""
    if step.get("kind") == BRANCH:
        kept = {"conditions": step.get("conditions") or []}
        kept.update({arm: step.get(arm) or [] for arm in ARMS})
    else:
        kept = {"config": config if config is not None else step.get("config") or {}}
    kept = {"name": step.get("name"), "kind": step.get("kind"), **kept}
    step.clear()
    step.update(kept)


def _too_big(steps):
    """Return a problem code if the step tree is too deep or too large (checked without
    recursion, so the check itself cannot be made to overflow)."""
    pending, count = [(steps, 1)], 0
    while pending:
        level, depth = pending.pop()
        if depth > MAX_DEPTH:
            return "steps_too_deep"
        for step in level if isinstance(level, list) else []:
            count += 1
            if count > MAX_STEPS:
                return "steps_too_many"
            if isinstance(step, dict) and step.get("kind") == BRANCH:
                pending += [(step.get(arm) or [], depth + 1) for arm in ARMS]
    return None


def _check_step(step, where, earlier, trigger, seen):
    """Return (problems, cleaned config or None) for one step."""
    problems = []
    name, kind = step.get("name"), step.get("kind")
    if not isinstance(name, str) or not STEP_NAME.match(name):
        problems.append(Problem(f"{where}.name", "step_name_invalid", {"name": name}))
    elif name in seen:
        problems.append(Problem(f"{where}.name", "step_name_duplicate", {"name": name}))
    else:
        seen.add(name)
    if kind == BRANCH:
        groups = step.get("conditions")
        if not groups:
            problems.append(Problem(f"{where}.conditions", "branch_conditions_required"))
        problems += _check_conditions(groups or [], f"{where}.conditions", trigger, earlier)
        for arm in ARMS:
            if not isinstance(step.get(arm) or [], list):
                problems.append(Problem(f"{where}.{arm}", "branch_arm_invalid"))
        return problems, None
    action_problems, config = _check_action(step, where, earlier, trigger)
    return problems + action_problems, config


def _check_action(step, where, earlier, trigger):
    kind = step.get("kind")
    try:
        action = get_action(kind)
    except UnknownAction:
        return [Problem(f"{where}.kind", "action_unknown", {"kind": kind})], None
    config = step.get("config") or {}
    if not isinstance(config, dict):
        return [Problem(f"{where}.config", "config_invalid", {"message": "not an object"})], None
    errors, cleaned = action.check(config)
    if errors:
        return [
            Problem(f"{where}.config.{field_name}", "config_invalid", {"message": str(m)})
            for field_name, messages in errors.items()
            for m in messages
        ], None
    amounts = {n for n, f in action.form_class.base_fields.items() if isinstance(f, AmountField)}
    problems = []
    for key, value in cleaned.items():
        problems += check_references(
            value, f"{where}.config.{key}", trigger, earlier, amount=key in amounts
        )
    return problems, cleaned


def check_references(value, where, trigger, earlier, *, amount=False):
    """Return the Problems with the references in one config value (loops included)."""
    problems = []
    for text in strings_in(value):
        pieces, broken = split(text)
        if broken:
            problems.append(Problem(where, broken[0], broken[1]))
            continue
        for piece in pieces:
            if isinstance(piece, Loop):
                problems += _check_loop(piece, where, trigger, earlier, amount)
            else:
                problems += _check_text(piece, where, trigger, earlier, amount)
    return problems


def _check_loop(loop, where, trigger, earlier, amount):
    """A loop goes over a list the catalog knows the items of; its body may use `item.…`."""
    if amount:
        return [Problem(where, "amount_reference_type", {"path": loop.path})]
    problem, field_type = resolve(loop.path, where, trigger, earlier)
    if problem:
        return [problem]
    items = catalog.loop_items(loop.path, trigger, earlier)
    if items is None:
        return [Problem(where, "loop_not_list", {"path": loop.path, "type": field_type})]
    return _check_text(loop.body, where, trigger, earlier, amount, items=(loop.path, items))


def _check_text(text, where, trigger, earlier, amount, items=None):
    problems = []
    stripped = REFERENCE.sub("", text)
    if "{{" in stripped or "}}" in stripped:
        problems.append(Problem(where, "reference_unbalanced", {"text": text[:200]}))
    for path, filter_name in parse(text):
        problem, field_type = resolve(path, where, trigger, earlier, items)
        if problem:
            problems.append(problem)
            continue
        if filter_name is not None and filter_name not in FILTERS:
            problems.append(Problem(where, "filter_unknown", {"filter": filter_name, "path": path}))
        elif filter_name == "money" and field_type != "money":
            problems.append(Problem(where, "filter_type", {"path": path, "type": field_type}))
        if amount and (filter_name is not None or field_type not in ("money", "integer")):
            problems.append(Problem(where, "amount_reference_type", {"path": path}))
    return problems


def resolve(path, where, trigger, earlier, items=None):
    """Return (Problem or None, field type) for one reference path: its grammar, step
    order and catalog entry, looked up once. Inside a loop, `items` is (the list's path,
    its items' fields), and `item.…` paths resolve against those."""
    broken = path_problem(path, (*ROOTS, ITEM) if items else ROOTS)
    if broken:
        return Problem(where, broken[0], broken[1]), None
    parts = path.split(".")
    if parts[0] == ITEM:
        field_type = catalog.item_type(path, items[1])
        if field_type is None:
            return Problem(where, "loop_item_unknown", {"path": path, "list": items[0]}), None
        return None, field_type
    if parts[0] == "steps" and (len(parts) < 3 or parts[1] not in earlier):
        return Problem(where, "reference_step_unknown", {"path": path, "step": parts[1]}), None
    field_type = catalog.field_type(path, trigger, earlier)
    if field_type is not None:
        return None, field_type
    if parts[0] == "steps":
        output = ".".join(parts[2:])
        return Problem(
            where, "reference_output_unknown", {"step": parts[1], "output": output}
        ), None
    return Problem(
        where, "reference_field_unknown", {"path": path, "source": _source(trigger)}
    ), None


def _source(trigger):
    kind = triggers.kind(trigger.get("kind"))
    return kind.describe(trigger) if kind else str(trigger.get("kind"))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_conditions(groups, where, trigger, earlier):
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        return [Problem(where, "conditions_invalid")]
    problems = []
    for g, group in enumerate(groups):
        for i, condition in enumerate(group):
            here = f"{where}.{g}.{i}"
            if not isinstance(condition, dict):
                problems.append(Problem(here, "condition_invalid"))
                continue
            problems += _check_condition(condition, here, trigger, earlier)
    return problems


def _check_condition(condition, here, trigger, earlier):
    field_path, op = condition.get("field"), condition.get("op")
    value, currency = condition.get("value"), condition.get("currency") or ""
    if not isinstance(field_path, str) or not field_path:
        return [Problem(f"{here}.field", "condition_field_required")]
    problem, field_type = resolve(field_path, f"{here}.field", trigger, earlier)
    if problem:
        return [problem]
    if not isinstance(op, str) or op not in OPERATORS:
        return [Problem(f"{here}.op", "operator_unknown", {"op": op})]
    if op not in catalog.OPERATORS_BY_TYPE.get(field_type, OPERATORS):
        return [
            Problem(
                f"{here}.op",
                "operator_type",
                {"op": op, "operator": OPERATORS[op], "type": field_type},
            )
        ]
    problems = []
    if currency:
        if field_type != "money":
            return [Problem(f"{here}.currency", "currency_not_money")]
        if not isinstance(currency, str) or not CURRENCY.match(currency.lower()):
            return [Problem(f"{here}.currency", "currency_invalid", {"currency": currency})]
    elif field_type == "money" and op not in UNARY:
        return [Problem(f"{here}.currency", "currency_required")]
    if op in UNARY:
        return problems
    if value is None or value == "" or value == []:
        return [*problems, Problem(f"{here}.value", "value_required")]
    if op in ("in", "not_in") and not isinstance(value, list):
        return [*problems, Problem(f"{here}.value", "value_list_required")]
    values = value if isinstance(value, list) else [value]
    if field_type == "money" and not all(_is_int(v) for v in values):
        problems.append(Problem(f"{here}.value", "money_minor_units"))
    elif field_type in ("integer", "timestamp") and not all(_is_int(v) for v in values):
        problems.append(Problem(f"{here}.value", "value_type", {"type": "a whole number"}))
    elif field_type == "boolean" and not all(isinstance(v, bool) for v in values):
        problems.append(Problem(f"{here}.value", "value_type", {"type": "true or false"}))
    return problems


# ------------------------------------------------------------------ dict -> rows


@transaction.atomic
def write_rows(workflow, definition):
    """Replace a workflow's editable rows (its draft) with a cleaned definition."""
    kind = triggers.kind(definition["trigger"]["kind"])
    workflow.trigger_kind = definition["trigger"]["kind"]
    # Every kind's columns: a column of the kind it had before must not linger.
    columns = {c for name in TriggerKind.values for c in triggers.kind(name).COLUMNS.values()}
    for column in columns:
        setattr(workflow, column, "")
    for key, column in kind.COLUMNS.items():
        setattr(workflow, column, definition["trigger"].get(key) or "")
    workflow.trigger_options = {
        key: definition["trigger"][key]
        for key in getattr(kind, "OPTIONS", ())
        if definition["trigger"].get(key) not in (None, "")
    }
    workflow.limits = definition.get("limits") or {}
    workflow.name = definition.get("name") or workflow.name
    workflow.description = definition.get("description") or ""
    if workflow.pk is None:
        workflow.save()
    else:
        # Only the draft's columns: an instance read before an activation or a pause must
        # not put the old status or active version back.
        draft_columns = [
            "name",
            "description",
            "owner",
            "trigger_kind",
            "trigger_options",
            "limits",
        ]
        workflow.save(update_fields=[*draft_columns, *sorted(columns), "edited_by", "updated_at"])
    workflow.steps.all().delete()
    workflow.conditions.all().delete()
    _create_conditions(workflow, None, definition.get("conditions") or [])
    position = iter(range(1, 100_000))

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


def diff(old, new):
    """Return unified-diff lines between two definitions, for the version history."""

    def lines(definition):
        if definition is None:
            return []
        return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), "before", "after", lineterm="", n=2))
