"""Shared admin plumbing: Kanri's own pages, status badges, read-only audit admins."""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html


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


def change_url(model, pk):
    """Return the admin change page of `model` row `pk`, or "" if the admin has none."""
    opts = model._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
    except NoReverseMatch:
        return ""


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
