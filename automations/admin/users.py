"""Users leave by being deactivated, never deleted: their name stays on what they did.

Deleting a user would delete their admin history (Django's LogEntry cascades from its
user) and blank who activated each version, started each run and decided each step (those
keys are SET_NULL): the audit would forget who did what. A superuser unticks "Active".
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin


class KanriUserAdmin(UserAdmin):
    def has_delete_permission(self, request, obj=None):
        return False


def register(site=admin.site):
    User = get_user_model()
    model_admin = site._registry.get(User)
    if model_admin is not None and not isinstance(model_admin, KanriUserAdmin):
        site.unregister(User)
        site.register(User, type("KanriUserAdmin", (KanriUserAdmin, type(model_admin)), {}))


register()
