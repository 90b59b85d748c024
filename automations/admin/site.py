"""The admin site as Kanri: its name, its home dashboard, and its navigation.

dj-stripe registers some 45 models. Staff see only Kanri's lists, by the names they use
("Payments", "Webhook deliveries") and in the order of `list_order`; superusers also keep
dj-stripe's other models under their own heading.
"""

from django.contrib import admin
from django.urls import path
from django.utils.translation import gettext_lazy as _


class KanriSiteMixin:
    site_header = _("Kanri")
    site_title = _("Kanri")
    index_title = _("Home")
    # There is no public site: Django's "View site" link led to a 404.
    site_url = None

    def index(self, request, extra_context=None):
        """Show the dashboard (automations/dashboard.py) above the app list."""
        from automations import dashboard

        # The figures are about runs and money: for those who may read runs.
        shown = request.user.has_perm("automations.view_run")
        extra_context = {**(extra_context or {}), "dashboard": dashboard.build() if shown else None}
        return super().index(request, extra_context)

    def get_urls(self):
        from automations.admin.preferences import preferences_view

        urls = [
            path(
                "preferences/",
                self.admin_view(lambda request: preferences_view(self, request)),
                name="kanri_preferences",
            )
        ]
        return urls + super().get_urls()

    def get_app_list(self, request, app_label=None):
        apps = []
        for app in super().get_app_list(request, app_label):
            if app["app_label"] != "djstripe":
                apps.append(app)
                continue
            ours, rest = [], []
            for entry in app["models"]:
                model_admin = self._registry.get(entry["model"])
                title = getattr(model_admin, "list_title", "")
                if title:
                    ours.append((model_admin.list_order, {**entry, "name": str(title)}))
                else:
                    rest.append(entry)
            if ours:
                models = [entry for _order, entry in sorted(ours, key=lambda pair: pair[0])]
                apps.append({**app, "name": str(_("Stripe data")), "models": models})
            if rest and request.user.is_superuser:
                apps.append({**app, "name": str(_("dj-stripe: every model")), "models": rest})
        return apps


def install(site=admin.site):
    """Give the admin site Kanri's navigation.

    Django takes a custom site class only from an AdminConfig in INSTALLED_APPS; changing
    the class of the site in place keeps every registration already made on it.
    """
    current = site.__class__  # through the lazy default site, the real site's class
    if not issubclass(current, KanriSiteMixin):
        site.__class__ = type(f"Kanri{current.__name__}", (KanriSiteMixin, current), {})
