"""The workflow editor's forms: staff edit conditions and steps as admin inlines.

Each step form carries the config fields of every action, prefixed by the action kind
("email_send__subject"); the page shows only the selected kind's fields. Conditions and
steps are validated together (a condition can apply to a branch, a reference can name an
earlier step), so both inline formsets share one WorkflowEditor, which checks the whole
workflow once and puts each error next to the field it is about. If anything is wrong,
nothing is saved.
"""

import copy

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from automations import catalog
from automations.definitions import BRANCH, STEP_NAME, check_path, validate
from automations.engine.conditions import OPERATORS, UNARY, display_value
from automations.engine.references import references_in
from automations.models import Condition, Step
from automations.money import MoneyError, format_amount, to_minor
from integrations import registry
from integrations.fields import AmountField, is_reference
from integrations.registry import ACTIONS, get_action

CURRENCIES = [
    ("", "—"),
    *[
        (c, c.upper())
        for c in [
            "usd",
            "eur",
            "gbp",
            "jpy",
            "cad",
            "aud",
            "chf",
            "cny",
            "hkd",
            "sgd",
            "krw",
            "inr",
            "sek",
            "nok",
            "dkk",
            "nzd",
        ]
    ],
]
KIND_CHOICES = [
    ("", "---------"),
    (BRANCH, "Branch: if … / all other cases"),
    *registry.choices(),
]


def kind_slug(kind):
    return kind.replace(".", "_")


def config_field_name(kind, field):
    return f"{kind_slug(kind)}__{field}"


def money_fields(kind):
    return [
        n for n, f in get_action(kind).form_class.base_fields.items() if isinstance(f, AmountField)
    ]


def _config_form_fields():
    """Return {prefixed name: field} for every action's config fields, all optional here:
    the action's own form decides what is required once the kind is known."""
    fields = {}
    for kind in ACTIONS:
        for name, field in get_action(kind).form_class.base_fields.items():
            if isinstance(field, AmountField):
                field = forms.CharField(
                    label="Amount",
                    help_text="For example 14.00 (in the currency beside it), or a reference "
                    "such as {{steps.charge.amount}}.",
                )
                currency = forms.ChoiceField(
                    choices=CURRENCIES, required=False, label="Currency of that amount"
                )
                currency.widget.attrs["data-kanri-kind"] = kind
                fields[config_field_name(kind, f"{name}_currency")] = currency
            else:
                field = copy.deepcopy(field)
                # The prefixed name would make Django's label "Email send subject".
                field.label = field.label or name.replace("_", " ").capitalize()
            field.required = False
            if isinstance(field, forms.JSONField):
                field.widget = forms.Textarea(attrs={"rows": 3})
            field.widget.attrs["data-kanri-kind"] = kind
            if isinstance(field, forms.CharField) and not isinstance(field.widget, forms.Select):
                field.widget.attrs["data-kanri-references"] = "1"
            fields[config_field_name(kind, name)] = field
    return fields


CONFIG_FIELDS = _config_form_fields()


def config_fieldsets():
    """One admin fieldset per action kind, shown only when that kind is chosen."""
    sets = []
    for kind in ACTIONS:
        names = [n for n in CONFIG_FIELDS if n.startswith(kind_slug(kind) + "__")]
        sets.append(
            (
                get_action(kind).label,
                {"fields": names, "classes": ["kanri-config", f"kanri-config-{kind_slug(kind)}"]},
            )
        )
    return sets


def _arm_choices(branch_names, value=""):
    choices = [("", "Top level")]
    for name in branch_names:
        choices += [(f"{name}:then", f"{name} → If"), (f"{name}:else", f"{name} → All other cases")]
    if value and value not in dict(choices):
        choices.append((value, value))
    return choices


def _scope_choices(branch_names, value=""):
    choices = [("", "The trigger (whether a run starts)")]
    choices += [(name, f"Branch {name}") for name in branch_names]
    if value and value not in dict(choices):
        choices.append((value, value))
    return choices


class StepFormBase(forms.ModelForm):
    placement = forms.CharField(required=False, label="Inside", widget=forms.Select)

    class Meta:
        model = Step
        fields = ["position", "name", "kind"]
        widgets = {"position": forms.HiddenInput, "kind": forms.Select(choices=KIND_CHOICES)}

    def __init__(self, *args, branch_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["position"].required = False
        instance = self.instance
        placement = f"{instance.parent.name}:{instance.arm}" if instance.parent_id else ""
        self.initial.setdefault("placement", placement)
        value = (
            self.data.get(self.add_prefix("placement"), placement) if self.is_bound else placement
        )
        self.fields["placement"].widget.choices = _arm_choices(branch_names, value)
        if instance.pk and instance.kind in ACTIONS:
            self._initial_config(instance.kind, instance.config or {})
        self.config = {}

    def _initial_config(self, kind, config):
        money = money_fields(kind)
        for key, value in config.items():
            name = config_field_name(kind, key)
            if key in money and isinstance(value, int) and config.get(f"{key}_currency"):
                value = format_amount(value, config[f"{key}_currency"])
            if name in self.fields:
                self.initial[name] = value

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if not kind:
            return data
        if kind == BRANCH:
            self.config = {}
            return data
        prefix = kind_slug(kind) + "__"
        if any(field.startswith(prefix) for field in self.errors):
            return data  # one message per problem: the field's own says what is wrong
        raw = {}
        for name in get_action(kind).form_class.base_fields:
            value = data.get(config_field_name(kind, name))
            if value not in (None, ""):
                raw[name] = value
        for name in money_fields(kind):
            currency = data.get(config_field_name(kind, f"{name}_currency")) or ""
            raw.pop(f"{name}_currency", None)
            value = raw.get(name)
            if value is None or is_reference(value):
                continue
            try:
                raw[name] = to_minor(value, currency)
            except MoneyError as e:
                message = str(e) if currency else "Choose the currency of this amount."
                self.add_error(config_field_name(kind, name), message)
                return data
            raw[f"{name}_currency"] = currency
        try:
            self.config = get_action(kind).validate(raw)
        except ValidationError as e:
            for field, messages in e.message_dict.items():
                target = config_field_name(kind, field)
                for message in messages:
                    self.add_error(target if target in self.fields else None, message)
        for name in money_fields(kind):
            if f"{name}_currency" in raw:
                self.config[f"{name}_currency"] = raw[f"{name}_currency"]
        return data

    def validate_unique(self):
        # Per-row checks against the database would flag a name another row is giving up
        # in the same save; WorkflowEditor checks names across all rows instead.
        pass

    def save(self, commit=True):
        self.instance.config = self.config
        return super().save(commit)


# The config fields are declared on the class so that admin fieldsets can name them.
StepForm = type("StepForm", (StepFormBase,), {"__module__": __name__, **CONFIG_FIELDS})


class ConditionForm(forms.ModelForm):
    scope = forms.CharField(required=False, label="Applies to", widget=forms.Select)
    value_text = forms.CharField(
        required=False,
        label="Value",
        help_text="Amounts as you would write them (1,000); lists separated by commas.",
    )
    currency = forms.ChoiceField(choices=CURRENCIES, required=False)

    class Meta:
        model = Condition
        fields = ["scope", "group", "field", "operator", "value_text", "currency"]
        widgets = {"field": forms.Select, "group": forms.NumberInput(attrs={"style": "width:4em"})}

    def __init__(self, *args, branch_names=(), field_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        scope = instance.step.name if instance.step_id else ""
        self.initial.setdefault("scope", scope)
        self.initial.setdefault("value_text", display_value(instance.value, instance.currency))
        bound = (
            (lambda name, default: self.data.get(self.add_prefix(name), default))
            if self.is_bound
            else (lambda name, default: default)
        )
        self.fields["scope"].widget.choices = _scope_choices(branch_names, bound("scope", scope))
        field = bound("field", instance.field)
        choices = [("", "---------"), *field_choices]
        if field and field not in dict(choices):
            choices.append((field, field))
        self.fields["field"].widget.choices = choices
        self.value = None


def parse_value(text, field_type, op, currency):
    """Return the stored value for what staff typed, or raise ValidationError."""
    if op in UNARY:
        return None
    text = (text or "").strip()
    if op in ("in", "not_in"):
        items = [item.strip() for item in _split_list(text, field_type) if item.strip()]
        if not items:
            raise ValidationError("Enter one or more values separated by commas.")
        return [parse_value(item, field_type, "eq", currency) for item in items]
    if text == "":
        raise ValidationError("Enter a value.")
    if field_type == "money":
        if not currency:
            raise ValidationError("Choose the currency of this amount.")
        try:
            return to_minor(text, currency)
        except MoneyError as e:
            raise ValidationError(str(e)) from None
    if field_type in ("integer", "timestamp"):
        try:
            return int(text.replace(",", ""))
        except ValueError:
            raise ValidationError(f"{text!r} is not a whole number.") from None
    if field_type == "boolean":
        if text.lower() not in ("true", "false", "yes", "no"):
            raise ValidationError("Enter true or false.")
        return text.lower() in ("true", "yes")
    if field_type == "currency":
        return text.lower()
    return text


def _split_list(text, field_type):
    # "1,000, 2,000" is two amounts: split money lists on ", " but not on the thousands comma.
    if field_type == "money":
        return text.split(", ") if ", " in text else text.split(";")
    return text.split(",")


class EditorFormSet(BaseInlineFormSet):
    role = ""

    def __init__(self, *args, editor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.editor = editor
        if editor:
            editor.formsets[self.role] = self

    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        if self.editor:
            kwargs.update(self.editor.form_kwargs(self.role))
        return kwargs

    @property
    def empty_form(self):
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            **(self.editor.form_kwargs(self.role) if self.editor else {}),
        )
        self.add_fields(form, None)
        return form

    def clean(self):
        super().clean()
        if self.editor:
            # The second formset to be cleaned runs the checks across both; errors about a
            # row go next to its field, and what remains is this formset's own error.
            self.editor.cleaned.add(self.role)
            if self.editor.cleaned == {"steps", "conditions"}:
                self.editor.validate()
                if self.editor.errors:
                    raise ValidationError(self.editor.errors)
                if self.editor.cross_errors:
                    # The other formset already said it was valid; this stops the save.
                    raise ValidationError(
                        "Some conditions or steps need correcting: see the messages next "
                        "to their fields."
                    )

    def live_forms(self):
        """Forms that will be saved: not deleted, and either existing or filled in."""
        return [
            form
            for form in self.forms
            if hasattr(form, "cleaned_data")
            and not form.cleaned_data.get("DELETE")
            and (form.instance.pk or form.has_changed())
        ]


class StepFormSet(EditorFormSet):
    role = "steps"

    def validate_unique(self):
        # Step names are checked by WorkflowEditor, with a message naming the step.
        pass


class ConditionFormSet(EditorFormSet):
    role = "conditions"


class WorkflowEditor:
    """Validation across the step and condition inlines of one workflow change page."""

    def __init__(self, workflow, data=None):
        self.workflow = workflow
        self.data = data
        self.formsets = {}
        self.cleaned = set()
        self.errors = []
        self.cross_errors = False
        saved = list(workflow.steps.all()) if workflow.pk else []
        self.saved_branches = [s.name for s in saved if s.kind == BRANCH]
        steps = {s.name: s.kind for s in saved}
        self.field_choices = catalog.reference_choices(self.event_type, steps)

    @property
    def event_type(self):
        if self.data is not None and "event_type" in self.data:
            return self.data.get("event_type") or ""
        return self.workflow.event_type

    def form_kwargs(self, role):
        kwargs = {"branch_names": self.saved_branches}
        if role == "conditions":
            kwargs["field_choices"] = self.field_choices
        return kwargs

    # ------------------------------------------------------------ validation

    def validate(self):
        steps = self.formsets["steps"].live_forms()
        conditions = self.formsets["conditions"].live_forms()
        if any(f.errors for f in steps + conditions):
            return  # fix the fields first; cross-checks on half-valid rows only confuse
        self._cross_check(steps, conditions)
        self.cross_errors = any(f.errors for f in steps + conditions)

    def _cross_check(self, steps, conditions):
        if not self.event_type:
            return  # the workflow form says "choose an event"
        order = self._order_steps(steps)
        if order is None:
            return
        self._check_names(steps)
        self._check_references(order)
        self._check_conditions(order, conditions)
        if not any(f.errors for f in steps + conditions):
            self._check_whole(order, conditions)

    def _order_steps(self, forms_):
        by_name = {f.cleaned_data["name"]: f for f in forms_}
        children = {}
        for index, form in enumerate(forms_):
            placement = form.cleaned_data.get("placement") or ""
            parent, _, arm = placement.partition(":")
            if placement and (
                parent not in by_name
                or by_name[parent].cleaned_data["kind"] != BRANCH
                or arm not in ("then", "else")
            ):
                form.add_error("placement", f"There is no branch {parent!r} to put this step in.")
                return None
            key = form.cleaned_data.get("position")
            children.setdefault((parent, arm), []).append(
                (key if key is not None else 100_000 + index, index, form)
            )
        order = []  # (form, names of steps certain to have run before it, parent, arm)
        visiting = set()

        def walk(parent, arm, earlier):
            for _, _, form in sorted(children.get((parent, arm), []), key=lambda t: t[:2]):
                name = form.cleaned_data["name"]
                if name in visiting:
                    form.add_error("placement", "A branch cannot be inside itself.")
                    raise StopIteration
                order.append((form, dict(earlier), parent, arm))
                if form.cleaned_data["kind"] == BRANCH:
                    visiting.add(name)
                    # Steps inside an arm may not run, so later steps cannot rely on them.
                    walk(name, "then", dict(earlier))
                    walk(name, "else", dict(earlier))
                    visiting.discard(name)
                earlier[name] = form.cleaned_data["kind"]

        try:
            walk("", "", {})
        except StopIteration:
            return None
        placed = {id(form) for form, *_ in order}
        for form in forms_:
            if id(form) not in placed:
                form.add_error("placement", "A branch cannot be inside itself.")
                return None
        return order

    def _check_names(self, forms_):
        seen = {}
        for form in forms_:
            name = form.cleaned_data["name"]
            if not STEP_NAME.match(name):
                form.add_error(
                    "name",
                    "Use lower-case letters, digits and _, starting with a "
                    "letter (it appears in references).",
                )
            elif name in seen:
                form.add_error(
                    "name", f"Another step is already named {name!r}; each needs its own name."
                )
            seen[name] = form

    def _check_references(self, order):
        for form, earlier, _, _ in order:
            kind = form.cleaned_data["kind"]
            if kind == BRANCH:
                continue
            for key, value in form.config.items():
                for path in references_in(value):
                    problem = self.reference_problem(path, earlier)
                    if problem:
                        form.add_error(config_field_name(kind, key), problem)

    def reference_problem(self, path, earlier):
        problems = check_path(path, set(earlier))
        if problems:
            return problems[0][0].upper() + problems[0][1:]
        if catalog.field_type(path, self.event_type, earlier) is None:
            if path.startswith("steps."):
                name = path.split(".")[1]
                return f"Step {name!r} has no output {'.'.join(path.split('.')[2:])!r}."
            return f"{{{{{path}}}}} is not a field of {self.event_type} events."
        return ""

    def _check_conditions(self, order, conditions):
        branches = {
            form.cleaned_data["name"]: (form, earlier)
            for form, earlier, _, _ in order
            if form.cleaned_data["kind"] == BRANCH
        }
        used = set()
        for form in conditions:
            scope = form.cleaned_data.get("scope") or ""
            if scope and scope not in branches:
                form.add_error("scope", f"There is no branch named {scope!r}.")
                continue
            used.add(scope)
            earlier = branches[scope][1] if scope else {}
            field, op = form.cleaned_data.get("field") or "", form.cleaned_data.get("operator")
            if not field:
                form.add_error("field", "Choose a field.")
                continue
            field_type = catalog.field_type(field, self.event_type, earlier)
            if field_type is None:
                where = (
                    f"{self.event_type} events"
                    if not field.startswith("steps.")
                    else "the steps before it"
                )
                form.add_error("field", f"{field} is not a field of {where}.")
                continue
            currency = form.cleaned_data.get("currency") or ""
            if currency and field_type != "money":
                form.add_error("currency", "Only amounts have a currency.")
                continue
            if op in ("gt", "gte", "lt", "lte") and field_type not in (
                "money",
                "integer",
                "timestamp",
            ):
                form.add_error(
                    "operator", f"{OPERATORS[op].capitalize()} needs a number or an amount."
                )
                continue
            try:
                form.value = parse_value(
                    form.cleaned_data.get("value_text"), field_type, op, currency
                )
            except ValidationError as e:
                form.add_error("currency" if "currency" in e.messages[0] else "value_text", e)
        for name, (form, _) in branches.items():
            if name not in used:
                form.add_error(
                    "kind",
                    "A branch needs at least one condition: add one under "
                    "Conditions with “Applies to” set to this branch.",
                )

    def _check_whole(self, order, conditions):
        """Last guard: the definition these rows make must pass the engine's own check."""
        try:
            validate(self.definition(order, conditions))
        except ValidationError as e:
            self.errors = e.messages

    def definition(self, order, conditions):
        groups = {}
        for form in conditions:
            key = form.cleaned_data.get("scope") or ""
            condition = {
                "field": form.cleaned_data["field"],
                "op": form.cleaned_data["operator"],
                "value": form.value,
            }
            if form.cleaned_data.get("currency"):
                condition["currency"] = form.cleaned_data["currency"]
            groups.setdefault(key, {}).setdefault(form.cleaned_data.get("group") or 1, []).append(
                condition
            )

        def grouped(key):
            return [groups[key][g] for g in sorted(groups.get(key, {}))]

        nodes = {"": {"then": [], "else": [], "": []}}
        top = []
        for form, _, parent, arm in order:
            data = form.cleaned_data
            node = {"name": data["name"], "kind": data["kind"]}
            if data["kind"] == BRANCH:
                node.update(conditions=grouped(data["name"]), then=[], **{"else": []})
                nodes[data["name"]] = node
            else:
                node["config"] = form.config
            (nodes[parent][arm] if parent else top).append(node)
        return {
            "name": self.data.get("name", self.workflow.name) if self.data else self.workflow.name,
            "trigger": {"kind": "event", "event_type": self.event_type},
            "conditions": grouped(""),
            "steps": top,
        }

    # ------------------------------------------------------------ saving

    def placements(self):
        """Return {step name: (parent name, arm, position)} for the validated forms."""
        order = self._order_steps(self.formsets["steps"].live_forms()) or []
        return {
            form.cleaned_data["name"]: (parent, arm, index)
            for index, (form, _, parent, arm) in enumerate(order, start=1)
        }
