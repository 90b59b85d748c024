"""The extension point for workflow steps: an Action, its result, and its one error type.

An action prepares the exact request it would send (shown in previews and kept in the
audit log), then sends it. It never writes audit rows and knows nothing of workflows or
runs: the runner records what happened. To add one: a subclass, a config form, one line
in integrations/registry.py, and a test.
"""

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.core.exceptions import ValidationError

from integrations.fields import AmountField


class ActionError(Exception):
    """A step failed. Permanent errors are not retried; the rest are, with backoff.

    `unknown` says the request may have reached the provider and been acted on (a read
    timeout, a connection dropped after the request was written): for an action whose
    provider does not deduplicate, the engine then holds the run for a person instead of
    sending again, so a notification is never resent silently.
    """

    def __init__(self, message, *, permanent=False, retry_after=None, unknown=False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after  # seconds the provider asked us to wait, if any
        self.unknown = unknown


@dataclass(frozen=True)
class StepCall:
    """What the runner tells an action about this call; plain values only."""

    idempotency_key: str
    run_id: int | None = None
    workflow_id: int | None = None
    first_attempt_at: datetime | None = None
    # A recording dry-run: `prepare` must not contact any provider, not even to read
    # (a customer's email address); it puts a stand-in in the request instead.
    offline: bool = False


class Action:
    kind = ""
    label = ""
    provider = ""  # the external system it touches, for the inventory
    form_class = forms.Form
    moves_money = False
    reads_only = False  # no side effect: previews may really call it
    outputs = {}  # field -> label: what {{steps.<name>.<field>}} can use afterwards
    # A function making referenced values safe inside this action's text (Slack's markup),
    # or None: then a field holding just one reference keeps the value's type.
    escape = None

    # Where a request may be sent twice without acting twice (an idempotency key, or a
    # read): a run resumed after a crash mid-send may simply send again. Otherwise (Slack,
    # email) the outcome is unknown and a person decides.
    deduplicates = False

    @classmethod
    def check(cls, config):
        """Return ({field: [messages]}, cleaned config)."""
        form = cls.form_class(data=config or {})
        if not form.is_valid():
            return {field: list(errors) for field, errors in form.errors.items()}, {}
        cleaned = {k: v for k, v in form.cleaned_data.items() if v not in ("", None)}
        # An amount keeps the currency staff typed it in (`amount_currency`), so a version
        # shows "14.00 USD" back, not 1400 of nothing.
        for name, field in cls.form_class.base_fields.items():
            currency = (config or {}).get(f"{name}_currency")
            if isinstance(field, AmountField) and isinstance(currency, str) and currency:
                if len(currency) != 3 or not currency.isalpha():
                    return {f"{name}_currency": [f"{currency!r} is not a currency code."]}, {}
                cleaned[f"{name}_currency"] = currency.lower()
        return {}, cleaned

    @classmethod
    def validate(cls, config):
        """Return the cleaned config, or raise ValidationError with per-field messages."""
        errors, cleaned = cls.check(config)
        if errors:
            raise ValidationError(errors)
        return cleaned

    @classmethod
    def repeatable(cls):
        """Return whether sending the same request again cannot act twice."""
        return cls.reads_only or cls.deduplicates

    def prepare(self, config, call):
        """Return the exact request this step would send, as a JSON-able dict."""
        raise NotImplementedError

    def send(self, request, call):
        """Send a prepared request; return the output dict or raise ActionError."""
        raise NotImplementedError

    def money(self, request):
        """Return {"amount": minor units, "currency": "usd"} that a prepared request moves, or
        None. Actions with `moves_money` must say, so money caps can count it."""
        return None

    def dry_output(self, request):
        """Return stand-in outputs for a preview that does not send anything."""
        return {field: f"<{field} from {self.kind}>" for field in self.outputs}


def excerpt(obj, fields):
    """Return only `fields` of a provider object: audit rows keep excerpts, not objects."""
    return {field: obj.get(field) for field in fields if field in obj}
