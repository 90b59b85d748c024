"""The workflow editor's forms: staff edit conditions and steps as admin inlines.

The forms only turn what staff typed into a definition dict ("1,000" with USD becomes
100000; "is_vip → If" places a step in a branch arm). The one validator
(automations/definition.py) then checks the whole definition, and each Problem it
returns is put next to the field it is about: this module keeps a map from each
Problem's `where` to a form and a field. If anything is wrong, nothing is saved.

Each step form carries the config fields of every action, prefixed by the action kind
("email_send__subject"); the page shows only the selected kind's fields.
"""

import copy

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from automations import catalog, definition, triggers
from automations.engine.conditions import UNARY, display_value
from automations.models import Condition, Step, TriggerKind
from automations.money import (
    MoneyError,
    format_amount,
    format_input,
    parse_money,
    to_minor,
)
from automations.problems import message
from automations.triggers import schedule as schedule_trigger
from integrations import registry
from integrations.fields import AmountField, is_reference
from integrations.references import parse
from integrations.registry import ACTIONS, get_action

BRANCH = Step.BRANCH
_CURRENCY_CODES = ("usd", "eur", "gbp", "jpy", "cad", "aud", "chf", "cny", "hkd", "sgd", "krw")
CURRENCIES = [
    ("", "—"),
    *[(c, c.upper()) for c in (*_CURRENCY_CODES, "inr", "sek", "nok", "dkk", "nzd")],
]
KIND_CHOICES = [
    ("", "---------"),
    (BRANCH, _("Branch: if … / all other cases")),
    *registry.choices(),
]
# Problem `where` tails -> the condition form's fields.
CONDITION_FIELDS = {
    "field": "field",
    "op": "operator",
    "value": "value_text",
    "currency": "currency",
}


def kind_slug(kind):
    return kind.replace(".", "_")


def config_field_name(kind, field):
    return f"{kind_slug(kind)}__{field}"


def money_fields(kind):
    return [
        n for n, f in get_action(kind).form_class.base_fields.items() if isinstance(f, AmountField)
    ]


# ------------------------------------------------------------------ the trigger menu


def trigger_choices():
    """Return the editor's grouped trigger menu: every kind's choices, as "kind:param"."""
    choices = [("", "---------")]
    for name in TriggerKind.values:
        kind = triggers.kind(name)
        for group, options in kind.choices():
            choices.append((group, [(f"{name}:{value}", text) for value, text in options]))
    return choices


def trigger_value(trigger):
    kind = triggers.kind(trigger.get("kind"))
    return f"{trigger['kind']}:{trigger.get(kind.PARAM) or ''}" if kind else ""


def parse_trigger(value, data=None):
    """Return the trigger dict of a trigger menu value ("stripe_event:charge.succeeded"),
    with a schedule's settings from the form's `data` (see ScheduleFields)."""
    name, _, param = (value or "").partition(":")
    kind = triggers.kind(name)
    if kind is None:
        return {"kind": name}
    trigger = {"kind": name, kind.PARAM: param}
    if name == TriggerKind.SCHEDULE and data is not None:
        trigger.update(schedule_options(data))
    return trigger


# ------------------------------------------------------------------ a schedule's settings

# The workflow form's schedule fields -> the trigger dict's keys (and Problems back).
SCHEDULE_FIELDS = {
    "schedule_filter": "filter",
    "schedule_every": "every",
    "schedule_weekday": "weekday",
    "schedule_at": "at",
    "schedule_cron": "cron",
    "schedule_timezone": "timezone",
}
EVERY_CHOICES = [
    ("daily", _("Every day at a time")),
    ("weekly", _("Every week on a day at a time")),
    ("cron", _("Custom (a cron expression)")),
]
WEEKDAY_CHOICES = list(schedule_trigger.WEEKDAY_NAMES.items())


def zone_choices():
    return [(name, name) for name in sorted(schedule_trigger.zones())]


def schedule_options(data):
    """Return a schedule trigger's settings from what staff chose: "daily at 09:00" keeps
    its choice and the cron derived from it; a custom cron is kept as typed."""
    value = {key: str(data.get(name) or "").strip() for name, key in SCHEDULE_FIELDS.items()}
    every = value["every"] or "daily"
    options = {"filter": value["filter"], "every": every, "timezone": value["timezone"]}
    if every == "cron":
        options["cron"] = value["cron"]
        return options
    options["at"] = value["at"]
    if every == "weekly":
        options["weekday"] = value["weekday"]
    options["cron"] = schedule_trigger.derived_cron(options) or ""
    return options


def schedule_filter_choices(user, current=""):
    """The saved filters a person may schedule: their own and shared ones on lists they may
    see (automations.bookmarks.visible); a filter already chosen stays, unnamed if hidden."""
    from automations import bookmarks

    choices = [("", "---------")]
    choices += [(f.slug, f"{f.name} ({_list_name(f.list)})") for f in bookmarks.visible(user)]
    if current and current not in dict(choices):
        choices.append((current, _("A saved filter you cannot see, or one deleted")))
    return choices


def _list_name(list_label):
    from django.apps import apps

    try:
        return capfirst(apps.get_model(list_label)._meta.verbose_name_plural)
    except (LookupError, ValueError):
        return list_label


class ScheduleFields(forms.Form):
    """The workflow form's fields for a schedule trigger (shown when it is chosen)."""

    schedule_filter = forms.ChoiceField(
        label=_("Saved filter"),
        required=False,
        choices=[("", "---------")],
        help_text=_("The rows each tick runs on; save one from any Stripe list."),
    )
    schedule_every = forms.ChoiceField(
        label=_("Runs"), required=False, choices=EVERY_CHOICES, initial="daily"
    )
    schedule_weekday = forms.ChoiceField(
        label=_("On"), required=False, choices=WEEKDAY_CHOICES, initial="mon"
    )
    schedule_at = forms.CharField(
        label=_("At"),
        required=False,
        initial="09:00",
        max_length=5,
        widget=forms.TextInput(attrs={"size": 5, "placeholder": "09:00"}),
        help_text=_("24-hour clock, HH:MM, in the time zone below."),
    )
    schedule_cron = forms.CharField(
        label=_("Cron"),
        required=False,
        max_length=100,
        help_text=_("Minute hour day month weekday, e.g. “0 9 * * 1-5”: 09:00 on weekdays."),
    )
    schedule_timezone = forms.ChoiceField(
        label=_("Time zone"), required=False, choices=zone_choices
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("schedule_timezone", timezone.get_current_timezone_name())
        instance = getattr(self, "instance", None)
        if instance is not None and instance.pk and instance.trigger_kind == TriggerKind.SCHEDULE:
            trigger = definition.trigger_of(instance)
            for name, key in SCHEDULE_FIELDS.items():
                if trigger.get(key):
                    self.initial[name] = trigger[key]

    def offer_filters(self, user):
        current = self.data.get("schedule_filter") if self.is_bound else None
        self.fields["schedule_filter"].choices = schedule_filter_choices(
            user, current or self.initial.get("schedule_filter") or ""
        )


def next_runs(trigger, count=3):
    """Return a schedule's next ticks for the editor, in its zone with the zone named, and
    the Problems with its timing as words: {"zone", "times": [{"iso", "text"}], "problems"}."""
    problems = [message(p) for p in schedule_trigger.validate_timing(trigger)]
    times = [] if problems else schedule_trigger.next_times(trigger, count)
    zone = trigger.get("timezone") or ""
    return {
        "zone": zone,
        "times": [
            {
                "iso": tick.isoformat(),
                "text": f"{date_format(tick, 'D')} {date_format(tick, 'DATETIME_FORMAT')} ({zone})",
            }
            for tick in times
        ],
        "problems": problems,
    }


# ------------------------------------------------------------------ config fields


def _config_form_fields():
    """Return {prefixed name: field} for every action's config fields, all optional here:
    the validator decides what is required once the kind is known."""
    fields = {}
    for kind in ACTIONS:
        for name, field in get_action(kind).form_class.base_fields.items():
            if isinstance(field, AmountField):
                field = forms.CharField(
                    label=_("Amount"),
                    help_text=_(
                        "For example 14.00 (in the currency beside it), or a reference "
                        "such as {{steps.charge.amount}}."
                    ),
                )
                field.widget.attrs["data-kanri-references"] = "amount"
                currency = forms.ChoiceField(
                    choices=CURRENCIES, required=False, label=_("Currency of that amount")
                )
                currency.widget.attrs["data-kanri-kind"] = kind
                fields[config_field_name(kind, f"{name}_currency")] = currency
            else:
                field = copy.deepcopy(field)
                # The prefixed name would make Django's label "Email send subject".
                field.label = field.label or name.replace("_", " ").capitalize()
                if isinstance(field, forms.CharField) and not isinstance(
                    field.widget, forms.Select
                ):
                    field.widget.attrs["data-kanri-references"] = "text"
            field.required = False
            if isinstance(field, forms.JSONField):
                field.widget = forms.Textarea(attrs={"rows": 3})
            field.widget.attrs["data-kanri-kind"] = kind
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
    choices = [("", _("Top level"))]
    for name in branch_names:
        choices += [
            (f"{name}:then", f"{name} → {Step.Arm.THEN.label}"),
            (f"{name}:else", f"{name} → {Step.Arm.ELSE.label}"),
        ]
    if value and value not in dict(choices):
        choices.append((value, value))
    return choices


def _scope_choices(branch_names, value=""):
    choices = [("", _("The trigger (whether a run starts)"))]
    choices += [(name, _("Branch %(name)s") % {"name": name}) for name in branch_names]
    if value and value not in dict(choices):
        choices.append((value, value))
    return choices


class StepFormBase(forms.ModelForm):
    placement = forms.CharField(required=False, label=_("Inside"), widget=forms.Select)

    class Meta:
        model = Step
        fields = ["position", "name", "kind"]
        widgets = {"position": forms.HiddenInput, "kind": forms.Select(choices=KIND_CHOICES)}

    def __init__(self, *args, branch_names=(), trigger=None, **kwargs):
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
        elif not instance.pk and (trigger or {}).get("kind"):
            self._initial_for_trigger(trigger)
        self.config = {}

    def _initial_config(self, kind, config):
        """Show a saved step exactly as saved: a field left blank stays blank after a reload
        (a form default must not come back)."""
        money = money_fields(kind)
        for name in get_action(kind).form_class.base_fields:
            value = config.get(name, "")
            if name in money and isinstance(value, int) and config.get(f"{name}_currency"):
                value = format_amount(value, config[f"{name}_currency"])
            self.initial[config_field_name(kind, name)] = value
            if name in money:
                self.initial[config_field_name(kind, f"{name}_currency")] = config.get(
                    f"{name}_currency", ""
                )

    def _initial_for_trigger(self, trigger):
        """Pre-fill a new step's references only where the trigger has that field, so an
        early fraud warning's email step is not born invalid."""
        for kind in ACTIONS:
            for name, field in get_action(kind).form_class.base_fields.items():
                initial = field.initial
                if not isinstance(initial, str) or "{{" not in initial:
                    continue
                fits = all(
                    catalog.field_type(path, trigger, {}) is not None
                    for path, _filter in parse(initial)
                )
                self.fields[config_field_name(kind, name)].initial = initial if fits else ""

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        self.config = {}
        if not kind or kind == BRANCH or kind not in ACTIONS:
            return data  # an unknown kind is the validator's to report, next to "kind"
        raw = {}
        for name in get_action(kind).form_class.base_fields:
            value = data.get(config_field_name(kind, name))
            if value not in (None, ""):
                raw[name] = value
        for name in money_fields(kind):
            currency = data.get(config_field_name(kind, f"{name}_currency")) or ""
            value = raw.get(name)
            if currency:
                raw[f"{name}_currency"] = currency
            if value is None or is_reference(value):
                continue
            if not currency:
                self.add_error(
                    config_field_name(kind, name), _("Choose the currency of this amount.")
                )
                continue
            try:
                raw[name] = to_minor(value, currency)
            except MoneyError as e:
                self.add_error(config_field_name(kind, name), str(e))
        self.config = raw
        return data

    def validate_unique(self):
        # Names are checked across all rows by the validator, with a message naming the step.
        pass


# The config fields are declared on the class so that admin fieldsets can name them.
StepForm = type("StepForm", (StepFormBase,), {"__module__": __name__, **CONFIG_FIELDS})


class ConditionForm(forms.ModelForm):
    scope = forms.CharField(required=False, label=_("Applies to"), widget=forms.Select)
    value_text = forms.CharField(
        required=False,
        label=_("Value"),
        help_text=_("Amounts as you would write them (1,000); lists separated by commas."),
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
            raise ValidationError(_("Enter one or more values separated by commas."))
        return [parse_value(item, field_type, "eq", currency) for item in items]
    if text == "":
        return None  # the validator says "Enter a value" where it is needed
    if field_type == "money":
        if not currency:
            return text  # the validator asks for the currency
        try:
            return to_minor(text, currency)
        except MoneyError as e:
            raise ValidationError(str(e)) from None
    if field_type in ("integer", "timestamp"):
        try:
            return int(text.replace(",", ""))
        except ValueError:
            raise ValidationError(_("%(text)r is not a whole number.") % {"text": text}) from None
    if field_type == "boolean":
        if text.lower() not in ("true", "false", "yes", "no"):
            raise ValidationError(_("Enter true or false."))
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
            # The second formset to be cleaned validates the whole definition; problems
            # about a row go next to its field, and what remains is this formset's error.
            self.editor.cleaned.add(self.role)
            if self.editor.cleaned == {"steps", "conditions"}:
                self.editor.validate()
                if self.editor.errors:
                    raise ValidationError(self.editor.errors)
                if self.editor.has_errors:
                    raise ValidationError(
                        _(
                            "Some conditions or steps need correcting: see the messages next "
                            "to their fields."
                        )
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
        pass


class ConditionFormSet(EditorFormSet):
    role = "conditions"


def order_steps(items):
    """Place steps by their "Inside" choice and position; return (tree, problems).

    `items` is [(key, name, kind, placement, position)] in page order. The tree is
    nested definition steps, each carrying "_key" so callers can find their form.
    `problems` is [(key, message)] for placements that cannot be honoured.
    """
    by_name = {}
    for key, name, kind, _placement, _position in items:
        by_name.setdefault(name, (key, kind))
    children, problems = {}, []
    for index, (key, name, kind, placement, position) in enumerate(items):
        parent, _sep, arm = (placement or "").partition(":")
        if placement and (
            parent not in by_name or by_name[parent][1] != BRANCH or arm not in ("then", "else")
        ):
            problems.append(
                (key, _("There is no branch %(name)r to put this step in.") % {"name": parent})
            )
            parent, arm = "", ""
        sort_key = (position if position is not None else 100_000 + index, index)
        children.setdefault((parent, arm), []).append((sort_key, key, name, kind))
    placed = set()

    def tree(parent, arm, ancestors):
        out = []
        for _sort, key, name, kind in sorted(children.get((parent, arm), []), key=lambda t: t[0]):
            if name in ancestors or key in placed:
                problems.append((key, _("A branch cannot be inside itself.")))
                continue
            if len(ancestors) >= definition.MAX_DEPTH:
                problems.append(
                    (
                        key,
                        _("Branches may be nested at most %(depth)d deep.")
                        % {"depth": definition.MAX_DEPTH},
                    )
                )
                continue
            placed.add(key)
            node = {"_key": key, "name": name, "kind": kind}
            if kind == BRANCH:
                node["then"] = tree(name, "then", ancestors | {name})
                node["else"] = tree(name, "else", ancestors | {name})
            out.append(node)
        return out

    top = tree("", "", frozenset())
    for key, *_rest in items:
        if key not in placed and not any(k == key for k, _m in problems):
            problems.append((key, _("A branch cannot be inside itself.")))
    return top, problems


def references_for(trigger, items):
    """Return what each step and condition scope may reference, for the editor's menus.

    `items` is [(key, name, kind, placement, position)] in page order. The answer comes
    from the one catalog and the one tree walker, so the menus offer exactly what the
    validator accepts: never a step inside a branch arm to the steps after the branch.
    """
    tree, _problems = order_steps(items)
    steps, scopes = {}, {"": _menu(trigger, {})}
    for step, _where, earlier in definition.walk(tree):
        steps[step["_key"]] = _menu(trigger, earlier)
        if step["kind"] == BRANCH:
            scopes[step["name"]] = steps[step["_key"]]
    return {"steps": steps, "scopes": scopes}


def _menu(trigger, earlier):
    return [
        [f["path"], str(f["label"]), f["type"], *_loop_snippet(f)]
        for f in catalog.fields_in_scope(trigger, earlier)
    ]


def _loop_snippet(field):
    """A list that can be looped over gets a ready loop to insert: its first few item
    fields, amounts shown with their currency."""
    items = field.get("items")
    if not items:
        return []
    wanted = [f for f in items if f["type"] == "id"][:1]
    wanted += [f for f in items if f["type"] == "money"][:1]
    body = " ".join(
        "{{" + f["path"] + (" | money" if f["type"] == "money" else "") + "}}"
        for f in wanted or items[:1]
    )
    return ["{{#each " + field["path"] + " limit=10}}• " + body + "\n{{/each}}"]


LIMIT_FIELDS = ("per_run", "per_day")


def parse_caps(text):
    """Return {currency: minor units} from lines such as "1,000 USD" (one per currency)."""
    caps = {}
    for line in str(text or "").replace(";", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            # "1,000 USD", "¥1,000", "1000円": the amount and its currency, as typed.
            minor, currency = parse_money(line)
        except MoneyError as e:
            if e.code in ("no_currency", "not_amount"):
                raise ValidationError(
                    _("Write one cap per line, as an amount and a currency: “1,000 USD”.")
                ) from e
            raise ValidationError(str(e)) from e
        if minor <= 0:
            raise ValidationError(_("A cap must be more than zero."))
        caps[currency] = minor
    return caps


def format_caps(amounts):
    """Return the lines "1,000.00 USD" for {currency: minor units}, as the form shows them."""
    return "\n".join(format_input(v, c) for c, v in sorted((amounts or {}).items()))


class WorkflowEditor:
    """The definition of one workflow change page, validated once across both inlines."""

    def __init__(self, workflow, data=None, workflow_form=None):
        self.workflow = workflow
        self.data = data
        self.workflow_form = workflow_form
        self.formsets = {}
        self.cleaned = set()
        self.errors = []
        self.has_errors = False
        self.definition = None
        saved = list(workflow.steps.all()) if workflow.pk else []
        self.saved_branches = [s.name for s in saved if s.kind == BRANCH]
        steps = {s.name: s.kind for s in saved}
        self.field_choices = catalog.reference_choices(self.trigger, steps)

    @property
    def trigger(self):
        if self.data is not None and "trigger" in self.data:
            return parse_trigger(self.data.get("trigger"), self.data)
        if self.workflow.pk:
            return definition.trigger_of(self.workflow)
        return {}

    def form_kwargs(self, role):
        kwargs = {"branch_names": self.saved_branches}
        if role == "conditions":
            kwargs["field_choices"] = self.field_choices
        else:
            kwargs["trigger"] = self.trigger
        return kwargs

    # ------------------------------------------------------------ validation

    def validate(self):
        steps = self.formsets["steps"].live_forms()
        conditions = self.formsets["conditions"].live_forms()
        if any(f.errors for f in steps + conditions):
            return  # fix the fields first; the whole cannot be judged on half-read rows
        self.definition, locations = self.build(steps, conditions)
        if any(f.errors for f in steps + conditions):
            self.has_errors = True
            return
        for problem in definition.validate(self.definition):
            self.place(problem, locations)
        # Problems placed on the workflow form (trigger, name, caps) count too: that form
        # was validated before the inlines, so only this flag stops the save.
        self.has_errors = self.has_errors or any(f.errors for f in steps + conditions)

    def build(self, step_forms, condition_forms):
        """Return (definition, {where: (form, role)}) from the validated forms."""
        forms_by_key = {id(f): f for f in step_forms}
        items = [
            (
                id(f),
                f.cleaned_data["name"],
                f.cleaned_data["kind"],
                f.cleaned_data.get("placement") or "",
                f.cleaned_data.get("position"),
            )
            for f in step_forms
        ]
        tree, problems = order_steps(items)
        for key, text in problems:
            forms_by_key[key].add_error("placement", text)
        locations, branches = {}, {}
        for node, where, earlier in definition.walk(tree):
            form = forms_by_key[node.pop("_key")]
            locations[where] = (form, "steps")
            if node["kind"] == BRANCH:
                node["conditions"] = []
                branches[node["name"]] = (node, where, earlier)
            else:
                node["config"] = form.config
        groups = {}
        for form in condition_forms:
            scope = form.cleaned_data.get("scope") or ""
            if scope and scope not in branches:
                form.add_error("scope", _("There is no branch named %(name)r.") % {"name": scope})
                continue
            groups.setdefault(scope, {}).setdefault(form.cleaned_data.get("group") or 1, []).append(
                form
            )
        conditions = []
        for scope, by_group in groups.items():
            branch, where, earlier = branches[scope] if scope else (None, "", {})
            target = branch["conditions"] if branch else conditions
            base = f"{where}.conditions" if branch else "conditions"
            for g, number in enumerate(sorted(by_group)):
                group = []
                for i, form in enumerate(by_group[number]):
                    group.append(self._condition(form, earlier))
                    locations[f"{base}.{g}.{i}"] = (form, "conditions")
                target.append(group)
        data = self.data or {}
        built = {
            "name": data.get("name", self.workflow.name),
            "description": data.get("description", self.workflow.description),
            "trigger": self.trigger,
            "conditions": conditions,
            "steps": tree,
        }
        limits = self.limits()
        if limits:
            built["limits"] = limits
        return built, locations

    def limits(self):
        """Return the money caps typed on the workflow form ({} if none), as minor units."""
        form = self.workflow_form
        if self.data is None or form is None:
            return dict(self.workflow.limits or {}) if self.workflow.pk else {}
        limits = {}
        for cap in LIMIT_FIELDS:
            try:
                amounts = parse_caps(self.data.get(cap, ""))
            except ValidationError as e:
                form.add_error(cap, e)
                self.has_errors = True
                continue
            if amounts:
                limits[cap] = amounts
        return limits

    def _condition(self, form, earlier):
        field_path = form.cleaned_data.get("field") or ""
        op = form.cleaned_data.get("operator")
        currency = form.cleaned_data.get("currency") or ""
        field_type = catalog.field_type(field_path, self.trigger, earlier) if field_path else None
        try:
            form.value = parse_value(form.cleaned_data.get("value_text"), field_type, op, currency)
        except ValidationError as e:
            form.add_error("value_text", e)
        condition = {"field": field_path, "op": op, "value": form.value}
        if currency:
            condition["currency"] = currency
        return condition

    def place(self, problem, locations):
        """Put a Problem next to its field; what has no field becomes the page's error."""
        where = problem.where
        text = message(problem)
        best = max(
            (w for w in locations if where == w or where.startswith(w + ".")), key=len, default=None
        )
        if best is None:
            if where.startswith("trigger") and self.workflow_form is not None:
                # A schedule's settings have their own fields; the rest is the trigger menu.
                fields = {f"trigger.{key}": name for name, key in SCHEDULE_FIELDS.items()}
                target = fields.get(where, "trigger")
                if target not in self.workflow_form.fields:
                    target = "trigger"
                self.workflow_form.add_error(target, text)
                self.has_errors = True
            elif where == "name" and self.workflow_form is not None:
                self.workflow_form.add_error("name", text)
                self.has_errors = True
            elif where.startswith("limits") and self.workflow_form is not None:
                cap = where.split(".")[1] if where.count(".") else "per_run"
                self.workflow_form.add_error(cap if cap in LIMIT_FIELDS else "per_run", text)
                self.has_errors = True
            else:
                self.errors.append(text)
            return
        form, role = locations[best]
        tail = where[len(best) + 1 :]
        if role == "conditions":
            target = CONDITION_FIELDS.get(tail.split(".")[0])
        else:
            kind = form.cleaned_data.get("kind")
            head, _sep, rest = tail.partition(".")
            if head == "config" and kind in ACTIONS:
                name = config_field_name(kind, rest.split(".")[0])
                target = name if name in form.fields else None
            else:
                target = {"name": "name", "kind": "kind", "conditions": "kind"}.get(
                    head, "placement" if head in ("then", "else") else None
                )
        form.add_error(target, text)
