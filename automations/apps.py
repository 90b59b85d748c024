from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = _("Automations")

    def ready(self):
        from django_q.signals import post_spawn

        from automations import triggers
        from automations.engine.commits import relax_in_workers
        from automations.roles import ensure_roles
        from automations.tasks import lower_priority, start_sweeping

        triggers.connect()  # the kinds that listen for signals
        # First: the sweeper's and every later connection of a worker commit asynchronously.
        post_spawn.connect(relax_in_workers, dispatch_uid="kanri-worker-async-commit")
        # Each django-q2 worker sweeps for due runs every few seconds (automations/tasks.py).
        post_spawn.connect(start_sweeping, dispatch_uid="kanri-sweeper")
        post_spawn.connect(lower_priority, dispatch_uid="kanri-worker-nice")
        post_migrate.connect(ensure_roles, sender=self)
