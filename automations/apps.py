from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self):
        from automations import triggers  # noqa: F401  (connects the signal receivers)
        from automations.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self)
