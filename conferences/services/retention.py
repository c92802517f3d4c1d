"""Pruning what is past its retention period, in small batches (one short transaction each,
so no lock is held long), oldest first along the primary key."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from ..models import (
    AuditEntry,
    CallSession,
    Delivery,
    DeliveryAttempt,
    EngineCommand,
    Event,
    Member,
    PlaybackOperation,
    Room,
)
from ..models.engine import EngineCommandStatus
from ..models.playback import ACTIVE_PLAYBACK_STATES
from ..models.sessions import ACTIVE_MEMBER_STATES, SessionState
from ..models.webhooks import DeliveryStatus

BATCH = 1000


def _older(days: float, now: datetime) -> datetime:
    return now - timedelta(days=days)


def _what_to_prune(now: datetime) -> list[tuple[str, QuerySet]]:
    """In an order that removes what refers to a row before the row (rooms last)."""
    events_cutoff, rooms_cutoff = _older(settings.EVENT_RETENTION_DAYS, now), _older(settings.ROOM_RETENTION_DAYS, now)
    rooms = Room.objects.filter(destroyed_at__lt=rooms_cutoff)
    for model in (Event, Member, PlaybackOperation, EngineCommand):  # a room goes after all that names it
        rooms = rooms.exclude(Exists(model.objects.filter(room=OuterRef("pk"))))
    return [
        (
            "attempts",
            DeliveryAttempt.objects.filter(started_at__lt=_older(settings.WEBHOOK_ATTEMPT_RETENTION_DAYS, now)),
        ),
        ("audit", AuditEntry.objects.filter(occurred_at__lt=_older(settings.AUDIT_RETENTION_DAYS, now))),
        (
            "engine_commands",
            EngineCommand.objects.exclude(status=EngineCommandStatus.PENDING).filter(
                created_at__lt=_older(settings.ENGINE_COMMAND_RETENTION_DAYS, now)
            ),
        ),
        # An event goes with its deliveries and their attempts, once none is still to be sent.
        (
            "events",
            Event.objects.filter(created_at__lt=events_cutoff).exclude(
                Exists(Delivery.objects.filter(event=OuterRef("pk"), status=DeliveryStatus.PENDING))
            ),
        ),
        (
            "playbacks",
            PlaybackOperation.objects.exclude(state__in=ACTIVE_PLAYBACK_STATES).filter(ended_at__lt=rooms_cutoff),
        ),
        ("members", Member.objects.exclude(state__in=ACTIVE_MEMBER_STATES).filter(ended_at__lt=rooms_cutoff)),
        (
            "sessions",
            CallSession.objects.filter(state=SessionState.ENDED, ended_at__lt=rooms_cutoff).exclude(
                Exists(Member.objects.filter(session=OuterRef("pk")))
            ),
        ),
        ("rooms", rooms),
    ]


def prune(*, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Delete what is older than its retention: attempts, history, finished engine commands,
    events (with their deliveries), finished playbacks, ended members, sessions and rooms."""
    now = now or timezone.now()
    removed = {}
    for name, rows in _what_to_prune(now):
        removed[name] = 0
        while ids := list(rows.order_by("pk").values_list("pk", flat=True)[:batch]):
            # The conditions again: a row that changed since (a delivery sent again) stays.
            _, deleted = rows.filter(pk__in=ids).delete()
            removed[name] += deleted.get(rows.model._meta.label, 0)
            if len(ids) < batch:
                break
    return removed
