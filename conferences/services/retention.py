"""Pruning what is past its retention period, in batches."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..models import AuditEntry, DeliveryAttempt, EngineCommand
from ..models.engine import EngineCommandStatus


def prune(*, now: datetime | None = None, batch: int = 10_000) -> dict[str, int]:
    """Delete delivery attempts, audit entries and finished engine commands older than their
    retention, in batches."""
    now = now or timezone.now()
    removed = {}
    for name, rows, timestamp, days in (
        ("attempts", DeliveryAttempt.objects.all(), "started_at", settings.WEBHOOK_ATTEMPT_RETENTION_DAYS),
        ("audit", AuditEntry.objects.all(), "occurred_at", settings.AUDIT_RETENTION_DAYS),
        ("engine_commands", EngineCommand.objects.exclude(status=EngineCommandStatus.PENDING), "created_at",
         settings.ENGINE_COMMAND_RETENTION_DAYS),
    ):
        cutoff = now - timedelta(days=days)
        removed[name] = 0
        model = rows.model
        while True:
            ids = list(rows.filter(**{f"{timestamp}__lt": cutoff}).values_list("pk", flat=True)[:batch])
            if not ids:
                break
            removed[name] += model.objects.filter(pk__in=ids).delete()[0]
    return removed
