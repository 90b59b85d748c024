"""'Refund as store credit…' on selected charges (being built: issue 9)."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _


@admin.action(description=_("Refund as store credit…"))
def refund_as_store_credit(modeladmin, request, queryset):
    modeladmin.message_user(request, "Not built yet.", messages.WARNING)
