"""Shared admin plumbing: Kanri's own pages, status badges, read-only audit admins."""

import re

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.html import format_html

# Stripe secrets by their documented prefixes (https://docs.stripe.com/keys), and the
# client secrets of intents (they let anyone confirm the payment). No page shows one,
# whatever field it hides in: Stripe lists, run snapshots, step requests and answers.
SECRET = re.compile(
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9_]+"
    r"|\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"
)


def redact(text):
    """Return text with anything shaped like a Stripe secret replaced."""
    return SECRET.sub("[redacted]", str(text))


def redact_data(value):
    """Return plain data (dicts, lists, strings) with every secret-shaped string redacted."""
    if isinstance(value, dict):
        return {redact(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def page(model_admin, request, template, title, **context):
    """Render one of Kanri's own admin pages: the admin's chrome plus plain dicts."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": title,
            **context,
        },
    )


def badge(obj):
    """A workflow's or run's status as a coloured label."""
    return format_html(
        '<span class="kanri-status kanri-{}">{}</span>', obj.status, obj.get_status_display()
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit log: staff read it; only the engine writes it."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
