"""Publishing Celery tasks by name, the one way: services never import `tasks.py`.

One broker-failure policy for every publish: a short circuit breaker. When a publish fails
the broker is taken as down for BROKER_BACKOFF_SECONDS and publishes are skipped at once, so
requests never wait on a dead broker again and again. Nothing depends on a publish alone:
the outboxes are re-driven and every timer has a periodic sweep behind it.
"""

import logging
import time
from datetime import datetime

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

BROKER_BACKOFF_SECONDS = 5.0

_broker_down_until = 0.0


def enqueue_rollback_unsafe(task_name: str, *args, countdown: float | None = None, eta: datetime | None = None) -> bool:
    """Publish now, whatever becomes of the caller's transaction; False when not published.
    The queue comes from CELERY_TASK_ROUTES."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return False
    try:
        current_app.send_task(task_name, args=args, countdown=countdown, eta=eta, retry=False)
    except Exception:  # any broker failure: the re-drive and the sweeps catch up
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning(
            "broker unavailable for %.0f s; %s left to the sweeps", BROKER_BACKOFF_SECONDS, task_name, exc_info=True
        )
        return False
    return True


def enqueue_on_commit(task_name: str, *args, countdown: float | None = None, eta: datetime | None = None) -> None:
    """Publish after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: enqueue_rollback_unsafe(task_name, *args, countdown=countdown, eta=eta), robust=True)
