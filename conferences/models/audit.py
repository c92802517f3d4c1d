from django.db import models
from django.db.models import Q
from django.utils import timezone


class AuditEntry(models.Model):
    """Append-only history of every command; a trigger (migration 0002) refuses UPDATE.

    Ids are plain strings, not foreign keys, so an entry outlives anything it names.
    """

    class ActorKind(models.TextChoices):
        APP = "app"
        STAFF = "staff"
        ENGINE = "engine"
        SYSTEM = "system"

    occurred_at = models.DateTimeField(default=timezone.now)
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor = models.CharField(max_length=150)
    api_key_prefix = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=64)
    app_id = models.CharField(max_length=64, blank=True)
    room_id = models.CharField(max_length=64, blank=True)
    session_uuid = models.CharField(max_length=64, blank=True)
    operation_id = models.CharField(max_length=64, blank=True)
    request = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=64)
    detail = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit history"
        indexes = [
            # Per-room timeline.
            models.Index(fields=["room_id", "id"], condition=~Q(room_id=""), name="audit_by_room"),
            # Per-session timeline.
            models.Index(fields=["session_uuid", "id"], condition=~Q(session_uuid=""), name="audit_by_session"),
            # Per-app timeline.
            models.Index(fields=["app_id", "id"], name="audit_by_app"),
            # Retention pruning.
            models.Index(fields=["occurred_at"], name="audit_occurred_at"),
            # Admin: search by operation, filter by action, filter the (few) outcomes other than ok.
            models.Index(fields=["operation_id"], condition=~Q(operation_id=""), name="audit_by_operation"),
            models.Index(fields=["action", "id"], name="audit_by_action"),
            models.Index(fields=["outcome", "id"], condition=~Q(outcome="ok"), name="audit_not_ok_by_outcome"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_kind}:{self.actor}"
