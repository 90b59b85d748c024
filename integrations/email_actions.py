"""Send email with Django's mail framework; SMTP errors are classified here."""

import smtplib
import socket

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

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
    if isinstance(error, smtplib.SMTPConnectError | ConnectionRefusedError | socket.gaierror):
        return ActionError(f"SMTP server unreachable: {error}", permanent=False)
    if isinstance(error, smtplib.SMTPServerDisconnected | OSError):
        # A timeout or a dropped connection: the message may already have been accepted.
        return ActionError(f"SMTP server did not answer: {error}", permanent=False, unknown=True)
    return ActionError(f"Mail not sent: {error}", permanent=True)


def email_rows(text):
    """Return [{"label", "value"}] from "Label: value" lines (split at the first colon)."""
    rows = []
    for line in str(text or "").splitlines():
        label, colon, value = line.partition(":")
        if colon and label.strip():
            rows.append({"label": label.strip(), "value": value.strip()})
    return rows


def plain_text(body, rows):
    """Return the plain-text body: the text, then the rows as aligned "Label: value" lines."""
    width = max((len(r["label"]) for r in rows), default=0)
    lines = [f"{(r['label'] + ':').ljust(width + 1)} {r['value']}" for r in rows]
    return "\n\n".join(p for p in (str(body or "").rstrip("\n"), "\n".join(lines)) if p) + (
        "\n" if rows else ""
    )


def html_body(body, rows):
    """Return the HTML alternative: the text's paragraphs, then the rows as a table."""
    text = "".join(
        f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in str(body or "").split("\n\n") if p
    )
    cells = "".join(
        '<tr><th align="left" style="padding:4px 16px 4px 0;color:#666;font-weight:normal">'
        f'{escape(r["label"])}</th><td style="padding:4px 0">{escape(r["value"])}</td></tr>'
        for r in rows
    )
    return f"{text}<table>{cells}</table>"


def addresses(value):
    return [a.strip() for a in str(value or "").replace(";", ",").split(",") if a.strip()]


class SendEmailForm(forms.Form):
    recipient = forms.ChoiceField(
        choices=[("team", _("Team members")), ("customer", _("The Stripe customer"))],
        initial="team",
    )
    to = TemplateField(required=False, help_text=_("Team addresses, comma-separated."))
    customer = StripeIdField(
        ["cus_"],
        required=False,
        initial="{{trigger.data.object.customer}}",
        help_text=_("For the customer: whose email address to use."),
    )
    subject = TemplateField(max_length=998)
    body = TemplateField(widget=forms.Textarea, required=False)
    # Label and value rows, as Stripe's email editor builds them: one "Label: value" per
    # line, sent as a table under the text (and as aligned lines in the plain text).
    fields = TemplateField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label=_("Label and value rows"),
        help_text=_(
            "Optional, one row per line: “Amount: {{trigger.data.object.amount | money}}”. "
            "They are shown as a table under the text."
        ),
    )

    def clean(self):
        data = super().clean()
        if data.get("recipient") == "team":
            to = addresses(data.get("to"))
            if not to:
                raise ValidationError({"to": _("Enter at least one address.")})
            for address in to:
                if "{{" not in address:
                    validate_email(address)
            # The customer field is only for writing to the customer; a leftover value
            # (the editor pre-fills it) must not make a team email invalid.
            data["customer"] = ""
        elif data.get("recipient") == "customer" and not data.get("customer"):
            raise ValidationError({"customer": _("Say which customer to write to.")})
        for line in str(data.get("fields") or "").splitlines():
            if line.strip() and ":" not in line:
                raise ValidationError(
                    {"fields": _("Write each row as “Label: value”: %(line)s") % {"line": line}}
                )
        if not str(data.get("body") or "").strip() and not email_rows(data.get("fields")):
            raise ValidationError({"body": _("Write a text, or label and value rows, or both.")})
        return data


class SendEmail(Action):
    kind = "email.send"
    label = _("Email: send a message")
    provider = "Email"
    form_class = SendEmailForm
    outputs = {"to": _("recipients"), "subject": _("subject")}

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
        request = {
            "from": settings.DEFAULT_FROM_EMAIL,
            "to": to,
            "subject": subject,
            "body": str(config.get("body") or ""),
            "headers": {"X-Kanri-Step": call.idempotency_key},
        }
        rows = email_rows(config.get("fields"))
        if rows:
            request["rows"] = rows
        return request

    def send(self, request, call):
        rows = request.get("rows") or []
        message = EmailMultiAlternatives(
            subject=request["subject"],
            body=plain_text(request["body"], rows) if rows else request["body"],
            from_email=request["from"],
            to=request["to"],
            headers=request["headers"],
            connection=get_connection(fail_silently=False),
        )
        if rows:
            message.attach_alternative(html_body(request["body"], rows), "text/html")
        try:
            message.send()
        except Exception as e:
            raise classify(e) from e
        return {"to": request["to"], "subject": request["subject"]}
