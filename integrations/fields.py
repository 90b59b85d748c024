"""Form fields for action configs: each accepts a literal or a `{{reference}}`."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from integrations.references import is_reference

__all__ = ["AmountField", "MetadataField", "StripeIdField", "TemplateField", "is_reference"]


class TemplateField(forms.CharField):
    """Text that may contain references, e.g. "Refund for {{trigger.data.object.id}}"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)


class StripeIdField(forms.CharField):
    """A Stripe object id with one of `prefixes`, or a reference that yields one."""

    def __init__(self, prefixes, **kwargs):
        self.prefixes = tuple(prefixes)
        super().__init__(**kwargs)

    def validate(self, value):
        super().validate(value)
        if value and not is_reference(value) and not value.startswith(self.prefixes):
            raise ValidationError(
                _(
                    "Enter a reference such as {{trigger.data.object.id}} or an id "
                    "starting with %(prefixes)s."
                ),
                params={"prefixes": " / ".join(self.prefixes)},
            )


class AmountField(forms.Field):
    """An amount in minor units (cents; yen are whole), or a reference that yields one."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if is_reference(value):
            return value.strip()
        if isinstance(value, bool):
            raise ValidationError(_("Enter an amount in minor units or a reference."))
        try:
            amount = int(str(value).strip())
        except ValueError:
            raise ValidationError(_("Enter an amount in minor units or a reference.")) from None
        if amount <= 0:
            raise ValidationError(_("The amount must be greater than zero."))
        return amount


class MetadataField(forms.JSONField):
    """Stripe metadata: a flat object of up to 50 string keys (40 chars) and values."""

    def validate(self, value):
        super().validate(value)
        if value in self.empty_values:
            return
        if not isinstance(value, dict):
            raise ValidationError(_("Metadata is an object of keys and values."))
        if len(value) > 50:
            raise ValidationError(_("Stripe allows at most 50 metadata keys."))
        for key, item in value.items():
            if not key or len(key) > 40 or "[" in key or "]" in key:
                raise ValidationError(f"{key!r} is not a valid metadata key (1-40 characters).")
            if isinstance(item, dict | list):
                raise ValidationError(f"Metadata value for {key!r} must be text.")
