from automations import templates
from automations.catalog import (
    EVENT_TYPES,
    OBJECT_FIELDS,
    STEP_OBJECTS,
    TYPES,
    event_type_choices,
    field_type,
    reference_choices,
    step_fields,
    trigger_fields,
)
from automations.engine.references import references_in
from integrations.registry import ACTIONS, get_action

EVENT_FIELDS = [
    {"path": "trigger.id", "label": "Event ID", "type": "id"},
    {"path": "trigger.type", "label": "Event type", "type": "string"},
    {"path": "trigger.created", "label": "Event created", "type": "timestamp"},
]

# SCENARIOS.md (E) says "these 14 event types", but its list, like the source document's
# table, names 13.
LIFECYCLE_EVENT_TYPES = [
    "customer.created",
    "customer.updated",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "charge.succeeded",
    "charge.failed",
    "invoice.created",
    "invoice.sent",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.upcoming",
]


def _sibling_currency(name):
    return name.rsplit(".", 1)[0] + ".currency" if "." in name else "currency"


def test_every_event_type_maps_to_an_object_in_the_catalog():
    unknown = {t: i["object"] for t, i in EVENT_TYPES.items() if i["object"] not in OBJECT_FIELDS}

    assert unknown == {}


def test_every_event_type_is_in_one_of_the_known_groups():
    groups = {info["group"] for info in EVENT_TYPES.values()}

    assert groups == {
        "Customers",
        "Subscriptions",
        "Payments",
        "Invoices",
        "Fraud",
        "Checkout",
        "Refunds",
    }


def test_every_lifecycle_trigger_from_scenario_e_is_selectable():
    selectable = {event_type for _, group in event_type_choices() for event_type, _ in group}

    assert [t for t in LIFECYCLE_EVENT_TYPES if t not in selectable] == []
    assert len(set(LIFECYCLE_EVENT_TYPES)) == 13


def test_the_event_types_named_in_the_brief_are_all_present():
    required = [
        "customer.deleted",
        "charge.refunded",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "radar.early_fraud_warning.created",
        "checkout.session.completed",
        *LIFECYCLE_EVENT_TYPES,
    ]

    assert [t for t in required if t not in EVENT_TYPES] == []


def test_every_money_field_has_a_sibling_currency_field_in_the_same_object():
    missing = []
    for obj, fields in OBJECT_FIELDS.items():
        types = {f["name"]: f["type"] for f in fields}
        for field in fields:
            if field["type"] == "money" and types.get(_sibling_currency(field["name"])) != (
                "currency"
            ):
                missing.append(f"{obj}.{field['name']}")

    assert missing == []


def test_every_field_has_a_known_type_a_label_and_a_unique_name():
    problems = []
    for obj, fields in OBJECT_FIELDS.items():
        names = [f["name"] for f in fields]
        if len(names) != len(set(names)):
            problems.append(f"{obj}: duplicate names")
        for field in fields:
            if field["type"] not in TYPES or not field["label"]:
                problems.append(f"{obj}.{field['name']}")
            if "choices" in field and field["type"] != "string":
                problems.append(f"{obj}.{field['name']}: choices on a {field['type']}")

    assert problems == []


def test_objects_keep_to_the_fields_ops_staff_use():
    sizes = {obj: len(fields) for obj, fields in OBJECT_FIELDS.items()}

    # An early fraud warning has only seven fields worth offering; Stripe sends no more.
    assert sizes.pop("radar.early_fraud_warning") == 7
    assert {obj: n for obj, n in sizes.items() if not 10 <= n <= 25} == {}


def test_trigger_fields_start_with_the_event_then_the_objects_fields():
    fields = trigger_fields("payment_intent.succeeded")

    assert fields[:3] == EVENT_FIELDS
    assert len(fields) == 3 + len(OBJECT_FIELDS["payment_intent"])
    assert {"path": "trigger.data.object.amount", "label": "Amount", "type": "money"} in fields
    assert {
        "path": "trigger.data.object.customer",
        "label": "Customer ID",
        "type": "id",
    } in fields


def test_trigger_fields_carry_the_choices_of_an_enum():
    fields = {f["path"]: f for f in trigger_fields("customer.subscription.deleted")}

    assert fields["trigger.data.object.items.data.0.price.recurring.interval"] == {
        "path": "trigger.data.object.items.data.0.price.recurring.interval",
        "label": "Billing interval (first item)",
        "type": "string",
        "choices": ["day", "week", "month", "year"],
    }


def test_trigger_fields_of_an_unknown_event_type_are_only_the_events_own():
    assert trigger_fields("payment_intent.teleported") == EVENT_FIELDS


def test_trigger_fields_are_copies_the_caller_may_change():
    def status():
        return next(f for f in trigger_fields("charge.failed") if f["path"].endswith(".status"))

    trigger_fields("charge.failed")[0]["label"] = "changed"
    status()["choices"].append("refunded")

    assert trigger_fields("charge.failed")[0]["label"] == "Event ID"
    assert status()["choices"] == ["succeeded", "pending", "failed"]


def test_step_fields_of_a_retrieved_charge_are_typed_from_the_charge():
    fields = step_fields("charge", "stripe.retrieve_charge")

    assert {"path": "steps.charge.amount", "label": "charge: amount", "type": "money"} in fields
    assert {"path": "steps.charge.currency", "label": "charge: currency", "type": "currency"} in (
        fields
    )
    assert {"path": "steps.charge.customer", "label": "charge: customer", "type": "id"} in fields
    assert [f["path"] for f in fields] == [
        f"steps.charge.{name}" for name in get_action("stripe.retrieve_charge").outputs
    ]


def test_step_fields_of_a_retrieved_subscription_type_what_the_action_builds():
    fields = {f["path"]: f for f in step_fields("sub", "stripe.retrieve_subscription")}

    assert fields["steps.sub.amount"] == {
        "path": "steps.sub.amount",
        "label": "sub: amount per cycle (minor units)",
        "type": "money",
    }
    assert fields["steps.sub.currency"]["type"] == "currency"
    assert fields["steps.sub.interval"] == {
        "path": "steps.sub.interval",
        "label": "sub: billing interval: day, week, month or year",
        "type": "string",
        "choices": ["day", "week", "month", "year"],
    }
    assert fields["steps.sub.product"]["type"] == "id"
    assert fields["steps.sub.current_period_end"]["type"] == "timestamp"
    assert fields["steps.sub.metadata"]["type"] == "object"


def test_step_fields_of_other_actions_are_strings_unless_plainly_not():
    assert step_fields("notify", "slack.post_message") == [
        {"path": "steps.notify.channel", "label": "notify: channel id", "type": "string"},
        {"path": "steps.notify.ts", "label": "notify: message timestamp", "type": "string"},
    ]
    assert step_fields("mail", "email.send") == [
        {"path": "steps.mail.to", "label": "mail: recipients", "type": "list"},
        {"path": "steps.mail.subject", "label": "mail: subject", "type": "string"},
    ]


def test_a_branch_or_an_unknown_kind_outputs_no_fields():
    assert step_fields("is_vip", "branch") == []
    assert step_fields("x", "stripe.launch_rocket") == []


def test_every_output_of_an_object_backed_action_is_a_field_of_that_object():
    missing = []
    for kind, obj in STEP_OBJECTS.items():
        names = {f["name"] for f in OBJECT_FIELDS[obj]}
        if kind == "stripe.retrieve_subscription":
            continue  # it flattens the first item; its own types cover those outputs
        missing += [f"{kind}.{n}" for n in get_action(kind).outputs if n not in names]

    assert missing == []


def test_every_money_step_output_has_a_currency_output_beside_it():
    missing = []
    for kind in ACTIONS:
        fields = {f["path"]: f["type"] for f in step_fields("s", kind)}
        for path, type_ in fields.items():
            if type_ == "money" and fields.get(_sibling_currency(path)) != "currency":
                missing.append(path)

    assert missing == []


def test_field_type_knows_catalog_paths():
    assert field_type("trigger.data.object.amount", "payment_intent.succeeded", {}) == "money"
    assert field_type("trigger.created", "payment_intent.succeeded", {}) == "timestamp"
    assert field_type("trigger.data.object.metadata", "charge.succeeded", {}) == "object"


def test_field_type_accepts_metadata_keys_as_strings():
    steps = {"charge": "stripe.retrieve_charge"}

    assert (
        field_type("trigger.data.object.metadata.order_id", "payment_intent.succeeded", {})
        == "string"
    )
    assert field_type("steps.charge.metadata.x", "radar.early_fraud_warning.created", steps) == (
        "string"
    )


def test_field_type_rejects_typos_and_paths_below_a_metadata_value():
    assert field_type("trigger.data.object.amout", "payment_intent.succeeded", {}) is None
    assert field_type("trigger.data.object.metadata.a.b", "payment_intent.succeeded", {}) is None
    assert field_type("trigger.data.object.amount.x", "payment_intent.succeeded", {}) is None
    assert field_type("run.settings", "payment_intent.succeeded", {}) is None


def test_field_type_knows_what_every_run_holds():
    assert field_type("run.id", "payment_intent.succeeded", {}) == "integer"
    assert field_type("workflow.name", "payment_intent.succeeded", {}) == "string"


def test_field_type_knows_a_steps_output_only_when_that_step_runs_before():
    steps = {"charge": "stripe.retrieve_charge"}

    assert field_type("steps.charge.amount", "radar.early_fraud_warning.created", steps) == "money"
    assert field_type("steps.charge.amount", "radar.early_fraud_warning.created", {}) is None
    assert field_type("steps.charge", "radar.early_fraud_warning.created", steps) is None


def test_field_type_knows_previous_attributes_only_on_updated_events():
    path = "trigger.data.previous_attributes.email"

    assert field_type(path, "customer.updated", {}) == "string"
    assert field_type(path, "customer.created", {}) is None
    assert field_type("trigger.data.previous_attributes", "customer.updated", {}) is None


def test_field_type_of_an_unknown_event_type_knows_only_the_events_fields():
    assert field_type("trigger.id", "payment_intent.teleported", {}) == "id"
    assert field_type("trigger.data.object.amount", "payment_intent.teleported", {}) is None


def test_reference_choices_list_the_trigger_then_each_earlier_step():
    steps = {"charge": "stripe.retrieve_charge", "notify": "slack.post_message"}

    choices = reference_choices("radar.early_fraud_warning.created", steps)

    trigger = [(f["path"], f["label"]) for f in trigger_fields("radar.early_fraud_warning.created")]
    assert choices[: len(trigger)] == trigger
    assert choices[len(trigger)] == ("steps.charge.id", "charge: id")
    assert choices[-2:] == [
        ("steps.notify.channel", "notify: channel id"),
        ("steps.notify.ts", "notify: message timestamp"),
    ]
    assert len(choices) == len(trigger) + len(get_action("stripe.retrieve_charge").outputs) + 2


def test_event_type_choices_are_grouped_and_sorted_by_group_then_label():
    choices = event_type_choices()

    assert [group for group, _ in choices] == [
        "Checkout",
        "Customers",
        "Fraud",
        "Invoices",
        "Payments",
        "Refunds",
        "Subscriptions",
    ]
    assert choices[1] == (
        "Customers",
        [
            ("customer.created", "Customer created"),
            ("customer.deleted", "Customer deleted"),
            ("customer.updated", "Customer updated"),
        ],
    )
    for _, options in choices:
        assert [label for _, label in options] == sorted(label for _, label in options)
    assert sum(len(options) for _, options in choices) == len(EVENT_TYPES)


def _template_references(steps, earlier):
    """Yield (path, steps before it) for every condition field and reference in `steps`."""
    for step in steps:
        if step["kind"] == "branch":
            for group in step["conditions"]:
                for condition in group:
                    yield condition["field"], dict(earlier)
            # A step inside an arm may see earlier steps, not its sibling arm's.
            yield from _template_references(step["then"], dict(earlier))
            yield from _template_references(step["else"], dict(earlier))
        else:
            for path in references_in(step["config"]):
                yield path, dict(earlier)
        earlier[step["name"]] = step["kind"]


def test_every_field_a_template_uses_is_known_to_the_catalog(db):
    unknown = []
    checked = 0
    for key, build in templates.TEMPLATES.items():
        definition = build()
        templates.ensure_filters(definition)  # a scheduled template's saved filter
        trigger = definition["trigger"]
        used = [(c["field"], {}) for group in definition["conditions"] for c in group]
        used += list(_template_references(definition["steps"], {}))
        for path, steps in used:
            checked += 1
            if field_type(path, trigger, steps) is None:
                unknown.append(f"{key}: {path}")

    assert unknown == []
    assert checked > 0
