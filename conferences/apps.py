from django.apps import AppConfig


class ConferencesConfig(AppConfig):
    name = "conferences"
    verbose_name = "Conferences"

    def ready(self):
        from .api import schema  # noqa: F401  registers the OpenAPI authentication extension
