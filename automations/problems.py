"""Located problems with a workflow definition, and the words screens show for them.

The validator (automations/definition.py) returns Problems: where (a dotted path into the
definition, such as "steps.1.then.0.config.amount"), a code and its parameters. Nothing
stores sentences; each screen turns a Problem into words here, in the reader's language.
"""

from dataclasses import dataclass, field

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class CodedError(ValueError):
    """An error kept as a code and its parameters, worded only when read, in the reader's
    language. Subclasses give `messages`: code -> a gettext_noop'd or lazy string."""

    messages = {}

    def __init__(self, code, **params):
        self.code = code
        self.params = params
        super().__init__(code)

    @property
    def message(self):
        text = self.messages[self.code]
        return (gettext(text) if isinstance(text, str) else str(text)) % self.params

    def __str__(self):
        return self.message


@dataclass(frozen=True)
class Problem:
    where: str
    code: str
    params: dict = field(default_factory=dict)

    def as_dict(self):
        return {"where": self.where, "code": self.code, "params": dict(self.params)}

    def __str__(self):
        return f"{self.where or '(definition)'}: {message(self)}"


class InvalidDefinition(ValueError):
    """A definition that the validator refused; `problems` says where and why."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


MESSAGES = {
    "definition_invalid": _("A workflow definition is an object with a trigger and steps."),
    "name_required": _("Give the workflow a name."),
    "name_too_long": _("A name is at most %(max)d characters."),
    "description_invalid": _("The description must be text."),
    "trigger_invalid": _("The trigger must be an object with a kind."),
    "trigger_kind_unknown": _("There is no trigger kind %(kind)r."),
    "event_type_required": _("Choose the Stripe event that starts the workflow."),
    "event_type_unknown": _("%(event_type)r is not a Stripe event Kanri knows."),
    "object_required": _("Choose the kind of Stripe object this workflow runs on."),
    "object_unknown": _("Workflows cannot be run on %(object)r objects."),
    # money caps
    "limits_invalid": _(
        "Money caps are an object with “per_run” and “per_day”, each mapping currencies to amounts."
    ),
    "limits_required": _(
        "This workflow moves money: set a cap per run and per day for each currency it uses."
    ),
    "limit_amount_invalid": _("A cap is a positive whole number of minor units."),
    "steps_invalid": _("Steps must be a list."),
    "steps_too_deep": _("Branches may be nested at most %(depth)d deep."),
    "steps_too_many": _("A workflow may have at most %(count)d steps."),
    "step_invalid": _("A step must be an object with a name and a kind."),
    "step_name_invalid": _(
        "Use lower-case letters, digits and _, starting with a letter (it appears in references)."
    ),
    "step_name_duplicate": _("Another step is already named %(name)r; each needs its own name."),
    "action_unknown": _("There is no step kind %(kind)r."),
    "config_invalid": _("%(message)s"),
    "branch_conditions_required": _(
        "A branch needs at least one condition: add one under Conditions with "
        "“Applies to” set to this branch."
    ),
    "branch_arm_invalid": _("A branch arm must be a list of steps."),
    "reference_unbalanced": _("Unbalanced {{ }} in %(text)r."),
    "reference_root": _("Unknown reference {{%(path)s}}: it must start with %(roots)s."),
    "reference_private": _("{{%(path)s}} is not allowed: names may not start with “_”."),
    "reference_syntax": _("{{%(path)s}} is not a valid reference."),
    "reference_step_unknown": _(
        "Unknown reference {{%(path)s}}: no step %(step)r runs before this point."
    ),
    "reference_field_unknown": _("{{%(path)s}} is not a field of %(source)s."),
    "reference_output_unknown": _("Step %(step)r has no output %(output)r."),
    "filter_unknown": _("Unknown filter %(filter)r in {{%(path)s}}."),
    "filter_type": _("The money filter needs an amount; {{%(path)s}} is %(type)s."),
    "amount_reference_type": _(
        "This field takes a whole amount in minor units: use {{%(path)s}} without "
        "a filter, and a field that is an amount or a number."
    ),
    "conditions_invalid": _("Conditions must be a list of groups of conditions."),
    "condition_invalid": _("A condition must be an object with a field and an operator."),
    "condition_field_required": _("Choose a field."),
    "operator_unknown": _("Unknown operator %(op)r."),
    "operator_type": _("“%(operator)s” does not apply to a field of type %(type)s."),
    "value_required": _("Enter a value."),
    "value_list_required": _("“Is one of” needs a list of values."),
    "value_type": _("This value must be %(type)s."),
    "currency_invalid": _("%(currency)r is not a currency code."),
    "currency_not_money": _("Only amounts have a currency."),
    "currency_required": _("Choose the currency of this amount."),
    "money_minor_units": _("A money value is a whole number of minor units."),
    # schedule trigger
    "schedule_filter_required": _("Choose the saved filter whose rows the schedule runs on."),
    "schedule_filter_unknown": _("There is no saved filter %(filter)r."),
    "schedule_filter_private": _(
        "A schedule runs for the whole team: share the saved filter “%(name)s” first."
    ),
    "schedule_mode_unknown": _(
        "%(mode)r is not a way to run on a schedule: choose one digest or one run per row."
    ),
    "schedule_every_unknown": _("%(every)r is not daily, weekly or a custom cron."),
    "schedule_time_invalid": _("Enter the time as HH:MM on a 24-hour clock, such as 09:00."),
    "schedule_weekday_unknown": _("Choose the day of the week."),
    "schedule_cron_required": _("Enter a cron expression, such as “0 9 * * 1-5”."),
    "schedule_cron_invalid": _(
        "%(cron)r is not a cron expression: five fields, minute hour day month weekday."
    ),
    "schedule_cron_mismatch": _(
        "The cron %(cron)r does not say what was chosen (%(expected)r); leave it out or "
        "choose a custom cron."
    ),
    "schedule_timezone_required": _("Choose the time zone the schedule runs in."),
    "schedule_timezone_unknown": _("%(timezone)r is not a time zone (such as Asia/Tokyo)."),
    # loops in message templates
    "loop_unbalanced": _("Each {{#each …}} needs its own {{/each}}, in %(text)r."),
    "loop_nested": _("A loop cannot be inside another loop, in %(text)r."),
    "loop_syntax": _("%(text)s is not a valid loop: write {{#each LIST limit=10}}."),
    "loop_limit": _("A loop shows between 1 and %(max)d items, not %(limit)d."),
    "loop_not_list": _("{{#each %(path)s}} needs a list of rows; %(path)s is %(type)s."),
    "loop_item_unknown": _("{{%(path)s}} is not a field of the items of %(list)s."),
}


def message(problem):
    """Return the words for a Problem, in the active language."""
    template = MESSAGES.get(problem.code)
    if template is None:
        return str(problem.code)
    try:
        return str(template) % problem.params if "%(" in str(template) else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)
