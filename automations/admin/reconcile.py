"""Reports of `reconcile_events`: what Stripe listed, what Kanri had never received, and
the runs the missing events started. Read-only: only the reconciliation writes them."""

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from automations.admin.base import ReadOnlyAdmin
from automations.models import Reconciliation


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "since",
        "until",
        "status",
        "listed",
        "missing_count",
        "replayed",
        "finished_at",
    ]
    list_filter = ["status"]
    fields = [
        "status",
        "since",
        "until",
        "listed",
        "missing_ids",
        "replayed",
        "error",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("Missing"))
    def missing_count(self, obj):
        return len(obj.missing or [])

    @admin.display(description=_("Events Kanri had not received"))
    def missing_ids(self, obj):
        if not obj.missing:
            return "—"
        return format_html_join("", "<code>{}</code><br>", ((i,) for i in obj.missing))
