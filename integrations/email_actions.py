"""Send email with Django's mail framework; SMTP errors are classified here."""

import smtplib
import socket

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email

from integrations import stripe_client
from integrations.base import Action, ActionError
from integrations.fields import StripeIdField, TemplateField


def classify(error):
    """Return the ActionError for an error raised while sending mail.

    SMTP replies 4xx are temporary by definition (RFC 5321 §4.2.1) and worth retrying;
    5xx are permanent. Not reaching the server at all is temporary.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        transient = all(400 <= code < 500 for code in codes)
        refused = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in error.recipients.items())
        return ActionError(f"SMTP refused {refused}", permanent=not transient)
    if isinstance(error, smtplib.SMTPResponseException):
        message = (
            error.smtp_error.decode(errors="replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        return ActionError(
            f"SMTP {error.smtp_code}: {message}", permanent=not 400 <= error.smtp_code < 500
        )
    if isinstance(error, smtplib.SMTPServerDisconnected | socket.timeout | ConnectionError):
        return ActionError(f"SMTP server unreachable: {error}", permanent=False)
    if isinstance(error, OSError):
        return ActionError(f"SMTP server unreachable: {error}", permanent=False)
    return ActionError(f"Mail not sent: {error}", permanent=True)


def addresses(value):
    return [a.strip() for a in str(value or "").replace(";", ",").split(",") if a.strip()]


class SendEmailForm(forms.Form):
    recipient = forms.ChoiceField(
        choices=[("team", "Team members"), ("customer", "The Stripe customer")],
        initial="team",
    )
    to = TemplateField(required=False, help_text="Team addresses, comma-separated.")
    customer = StripeIdField(
        ["cus_"],
        required=False,
        initial="{{trigger.data.object.customer}}",
        help_text="For the customer: whose email address to use.",
    )
    subject = TemplateField(max_length=998)
    body = TemplateField(widget=forms.Textarea)

    def clean(self):
        data = super().clean()
        if data.get("recipient") == "team":
            to = addresses(data.get("to"))
            if not to:
                raise ValidationError({"to": "Enter at least one address."})
            for address in to:
                if "{{" not in address:
                    validate_email(address)
            # The customer field is only for writing to the customer; a leftover value
            # (the editor pre-fills it) must not make a team email invalid.
            data["customer"] = ""
        elif data.get("recipient") == "customer" and not data.get("customer"):
            raise ValidationError({"customer": "Say which customer to write to."})
        return data


class SendEmail(Action):
    kind = "email.send"
    label = "Email: send a message"
    provider = "Email"
    form_class = SendEmailForm
    outputs = {"to": "recipients", "subject": "subject"}

    def prepare(self, config, call):
        if config.get("recipient") == "customer":
            customer = config.get("customer")
            if not isinstance(customer, str) or not customer.startswith("cus_"):
                raise ActionError(f"{customer!r} is not a customer id.", permanent=True)
            if call.offline:  # a recording dry-run reads nothing from Stripe
                email = stripe_client.mirrored_customer(customer).get("email")
            else:
                email = stripe_client.request("get", f"/v1/customers/{customer}").get("email")
            if not email:
                raise ActionError(f"Customer {customer} has no email address.", permanent=True)
            to = [email]
        else:
            to = addresses(config.get("to"))
        if not to:
            raise ActionError("No recipient.", permanent=True)
        subject = " ".join(str(config.get("subject") or "").split())  # no header injection
        return {
            "from": settings.DEFAULT_FROM_EMAIL,
            "to": to,
            "subject": subject,
            "body": str(config.get("body") or ""),
            "headers": {"X-Kanri-Step": call.idempotency_key},
        }

    def send(self, request, call):
        message = EmailMessage(
            subject=request["subject"],
            body=request["body"],
            from_email=request["from"],
            to=request["to"],
            headers=request["headers"],
            connection=get_connection(fail_silently=False),
        )
        try:
            message.send()
        except Exception as e:
            raise classify(e) from e
        return {"to": request["to"], "subject": request["subject"]}
