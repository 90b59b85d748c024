from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self):
        from automations import triggers
        from automations.roles import ensure_roles

        triggers.connect()  # the kinds that listen for signals
        post_migrate.connect(ensure_roles, sender=self)
