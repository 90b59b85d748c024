"""Sync problems: deliveries the Stripe mirror could not sync, and why.

Read-only (the mirror writes them); a permanent problem is not retried until staff ask,
a transient one shows when it is tried next. Staff who may see webhook deliveries may
see these; staff who may retry runs may retry a sync.
"""

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from djstripe.models import Event, WebhookEventTrigger

from automations.admin.base import ReadOnlyAdmin, change_url
from automations.redaction import redact
from integrations.models import SyncProblem
from integrations.stripe_webhooks import retry_syncs

DELIVERY_PERMISSION = "djstripe.view_webhookeventtrigger"


def _link(url, text):
    return format_html('<a href="{}">{}</a>', url, text) if url else text


@admin.register(SyncProblem)
class SyncProblemAdmin(ReadOnlyAdmin):
    list_display = [
        "delivery_link",
        "event_link",
        "event_type",
        "object_id",
        "kind",
        "code",
        "attempts",
        "first_seen",
        "last_tried",
        "next_try",
    ]
    list_filter = ["kind", "code", "event_type"]
    search_fields = ["event_id", "object_id", "detail"]
    fields = [
        "delivery_link",
        "event_link",
        "event_type",
        "object_id",
        "kind",
        "code",
        "detail_text",
        "attempts",
        "first_seen",
        "last_tried",
        "next_try",
    ]
    readonly_fields = fields
    actions = ["retry"]

    def get_queryset(self, request):
        # The Event row exists once some delivery of the event synced; one query per page.
        events = Event.objects.filter(id=OuterRef("event_id")).values("pk")[:1]
        return super().get_queryset(request).annotate(event_pk=Subquery(events))

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm(
            DELIVERY_PERMISSION
        )

    def has_module_permission(self, request):
        return super().has_module_permission(request) or request.user.has_perm(DELIVERY_PERMISSION)

    def has_retry_permission(self, request):
        return request.user.has_perm("automations.retry_run")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("delivery"), ordering="delivery_id")
    def delivery_link(self, obj):
        url = change_url(WebhookEventTrigger, obj.delivery_id)
        return _link(url, obj.delivery_id)

    @admin.display(description=_("event"), ordering="event_id")
    def event_link(self, obj):
        if not obj.event_id:
            return "—"
        pk = getattr(obj, "event_pk", None)
        url = change_url(Event, pk) if pk else ""
        return _link(url, obj.event_id)

    @admin.display(description=_("detail"))
    def detail_text(self, obj):
        # Stripe's and dj-stripe's own words; a key quoted in them is never shown.
        return redact(obj.detail)

    @admin.action(description=_("Retry the sync of the selected deliveries"), permissions=["retry"])
    def retry(self, request, queryset):
        count = retry_syncs(queryset.values_list("delivery_id", flat=True))
        self.message_user(
            request,
            ngettext(
                "Queued %(count)d delivery for a sync.",
                "Queued %(count)d deliveries for a sync.",
                count,
            )
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )
        if count < queryset.count():
            self.message_user(
                request,
                gettext("Deliveries already synced were left as they are."),
                messages.INFO,
            )
