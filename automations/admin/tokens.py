"""API tokens in the admin: each staff member lists, makes and revokes their own (superusers
see everyone's). A token's digest is never shown, and its raw value only once, in the
message on the page after it is made.

The roles carry no token permissions: a token acts with its user's own role, so anyone
who can sign in to the admin may make one for themselves.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from automations.models.tokens import ApiToken

SHOWN = ("name", "user", "hint", "created_at", "last_used_at", "revoked_at")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "hint", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "hint")
    actions = ["revoke"]
    # `digest` is left out of every form and page.
    fields = SHOWN

    def get_queryset(self, request):
        tokens = super().get_queryset(request).select_related("user")
        return tokens if request.user.is_superuser else tokens.filter(user=request.user)

    def get_fields(self, request, obj=None):
        return ("name",) if obj is None else SHOWN

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else SHOWN

    def _own(self, request, obj):
        return obj is None or request.user.is_superuser or obj.user_id == request.user.pk

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and self._own(request, obj)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return False  # a token is made, used and revoked; nothing in it is edited

    def has_delete_permission(self, request, obj=None):
        # Revoked tokens stay, so "which token did this" keeps an answer.
        return request.user.is_superuser

    def has_revoke_permission(self, request):
        return self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        # Made through ApiToken.issue, the one place a raw value exists; the admin then
        # logs and links the row it made.
        token, raw = ApiToken.issue(request.user, form.cleaned_data["name"])
        obj.pk, obj.user, obj.digest, obj.hint = token.pk, token.user, token.digest, token.hint
        obj.created_at = token.created_at
        obj._state.adding, obj._state.db = False, token._state.db
        messages.warning(
            request,
            _t(
                "Your new token “%(name)s” is %(raw)s — copy it now: it is shown only this "
                "once and cannot be shown again. Send it as “Authorization: Bearer …”."
            )
            % {"name": token.name, "raw": raw},
        )

    def response_add(self, request, obj, post_url_continue=None):
        # Straight to the list (no "was added successfully" next to the token's message).
        return HttpResponseRedirect(reverse("admin:automations_apitoken_changelist"))

    @admin.action(description=_("Revoke selected tokens"), permissions=["revoke"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            ngettext("Revoked %(count)d token.", "Revoked %(count)d tokens.", count)
            % {"count": count},
        )
