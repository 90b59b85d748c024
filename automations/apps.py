from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self):
        from automations import triggers  # noqa: F401  (connects the signal receivers)
