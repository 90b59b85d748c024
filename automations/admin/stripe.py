"""Stripe object lists: dj-stripe's admin for the objects staff act on, plus
"Run workflow on selected…" (a manual trigger) on charges, payment intents, customers,
subscriptions and invoices."""

from django.contrib import admin

from automations.admin.actions import run_workflow_on_selected
from automations.triggers import manual


def _with_manual_runs(model, object_name):
    site = admin.site
    base = type(site._registry[model]) if model in site._registry else admin.ModelAdmin
    if model in site._registry:
        site.unregister(model)

    def get_actions(self, request):
        actions = base.get_actions(self, request)
        if not request.user.has_perm("automations.run_workflow"):
            actions.pop("run_workflow_on_selected", None)
        return actions

    admin_class = type(
        f"Kanri{model.__name__}Admin",
        (base,),
        {
            "kanri_object": object_name,
            "actions": [*(base.actions or []), run_workflow_on_selected],
            "get_actions": get_actions,
            "__module__": __name__,
        },
    )
    site.register(model, admin_class)


def register():
    from django.apps import apps

    for object_name, dotted in manual.MODELS.items():
        _with_manual_runs(apps.get_model(dotted), object_name)


register()
