"""Pruning what is past its retention period, in batches."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..models import AuditEntry, DeliveryAttempt


def prune(*, now: datetime | None = None, batch: int = 10_000) -> dict[str, int]:
    """Delete delivery attempts and audit entries older than their retention, in batches."""
    now = now or timezone.now()
    removed = {}
    for name, model, timestamp, days in (
        ("attempts", DeliveryAttempt, "started_at", settings.WEBHOOK_ATTEMPT_RETENTION_DAYS),
        ("audit", AuditEntry, "occurred_at", settings.AUDIT_RETENTION_DAYS),
    ):
        cutoff = now - timedelta(days=days)
        removed[name] = 0
        while True:
            ids = list(model.objects.filter(**{f"{timestamp}__lt": cutoff}).values_list("pk", flat=True)[:batch])
            if not ids:
                break
            removed[name] += model.objects.filter(pk__in=ids).delete()[0]
    return removed
