from django.db import models
from django.db.models import Q
from django.utils import timezone


class App(models.Model):
    """A tenant: it owns rooms, sessions, API keys and webhook endpoints."""

    app_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(app_id__regex=r"^[a-z0-9][a-z0-9_-]{0,63}$"), name="app_id_format"),
        ]

    def __str__(self) -> str:
        return self.app_id


class ApiKey(models.Model):
    """An API key, stored as a SHA-256 hash; `prefix` is the visible part used to find it."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
