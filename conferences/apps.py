from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConferencesConfig(AppConfig):
    name = "conferences"
    verbose_name = "Conferences"

    def ready(self):
        from .api import schema  # noqa: F401  registers the OpenAPI authentication extension
        from .periodic import register_periodic_tasks

        post_migrate.connect(register_periodic_tasks, sender=self)
