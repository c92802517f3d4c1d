"""Room playback: play, the pause toggle, stop, volume, the engine's reports and the watchdog.

Everything runs under the room's row lock, and a play ends exactly once: whichever of stop,
finish, error or timeout takes the lock first ends it; the others find it ended and go to the
history only.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import webhook_events
from ..actors import Actor
from ..errors import Conflict
from ..ids import mint_operation_id
from ..models import PlaybackOperation, Room
from ..models.playback import ACTIVE_PLAYBACK_STATES, PlaybackState
from ..models.rooms import PlaybackStatus
from ..publish import enqueue_on_commit
from . import audit, engine_commands
from .events import record_event, record_events
from .locks import lock_live_room


def _timeout() -> timedelta:
    return timedelta(seconds=settings.PLAYBACK_TIMEOUT_SECONDS)


def _active_operation(room: Room) -> PlaybackOperation | None:
    return room.playbacks.filter(state__in=ACTIVE_PLAYBACK_STATES).first()


def _status(room: Room) -> dict:
    return {"playback_status": room.playback_status, "volume": room.volume}


def _arm_watchdog_on_commit(operation: PlaybackOperation) -> None:
    """A precise timer per deadline; the periodic sweep is the safety net when it is lost."""
    enqueue_on_commit("conferences.tasks.playback_deadline", str(operation.operation_id), eta=operation.deadline_at)


def _reset_room(room: Room) -> None:
    room.playback_status = PlaybackStatus.STOPPED
    room.playback_operation_id = None
    room.playback_urls = []
    room.save(update_fields=["playback_status", "playback_operation_id", "playback_urls"])


def _end(operation: PlaybackOperation, room: Room, *, state: str, error: str = "") -> None:
    operation.state = state
    operation.error = error
    operation.ended_at = timezone.now()
    operation.deadline_at = None
    operation.save(update_fields=["state", "error", "ended_at", "deadline_at"])
    _reset_room(room)


# --- API commands ------------------------------------------------------------------------------


def play(*, actor: Actor, app, room_id: str, urls: list[str]) -> dict:
    with transaction.atomic():
        room = lock_live_room(app=app, room_id=room_id)
        if room.playback_status != PlaybackStatus.STOPPED:
            raise Conflict("Playback is already active in this conference", code="playback_active")
        operation_id = mint_operation_id()
        now = timezone.now()
        operation = PlaybackOperation.objects.create(
            operation_id=operation_id, room=room, urls=urls, dispatched_at=now, deadline_at=now + _timeout()
        )
        room.playback_status = PlaybackStatus.PLAYING
        room.playback_operation_id = operation_id
        room.playback_urls = urls
        room.save(update_fields=["playback_status", "playback_operation_id", "playback_urls"])
        record_event(app=app, room=room, payload=webhook_events.play_started(room, operation_id, urls))
        audit.record(
            actor=actor,
            action="playback.play",
            app_id=app.app_id,
            room_id=room_id,
            operation_id=operation_id,
            request={"urls": urls},
        )
        engine_commands.enqueue(
            "play",
            room=room,
            give_up_at=operation.deadline_at,
            room_id=room_id,
            operation_id=operation_id,
            urls=urls,
            volume=room.volume,
        )
        _arm_watchdog_on_commit(operation)
        return {"operation_id": operation_id, **_status(room)}


def toggle_pause(*, actor: Actor, app, room_id: str) -> dict:
    """Pause when playing, resume when paused, decided on the state read under the row lock."""
    with transaction.atomic():
        room = lock_live_room(app=app, room_id=room_id)
        operation = _active_operation(room)
        if operation is None:
            raise Conflict("No playback in this conference", code="no_playback")
        operation_id = mint_operation_id()
        now = timezone.now()
        if operation.state == PlaybackState.PLAYING:
            operation.state = PlaybackState.PAUSED
            operation.remaining_ms = max(0, int((operation.deadline_at - now).total_seconds() * 1000))
            operation.deadline_at = None
            room.playback_status = PlaybackStatus.PAUSED
            payload, command, action = webhook_events.play_paused(room, operation_id), "pause", "playback.pause"
        else:
            operation.state = PlaybackState.PLAYING
            operation.deadline_at = now + timedelta(milliseconds=operation.remaining_ms or 0)
            operation.remaining_ms = None
            room.playback_status = PlaybackStatus.PLAYING
            payload, command, action = webhook_events.play_resumed(room, operation_id), "resume", "playback.resume"
            _arm_watchdog_on_commit(operation)
        operation.save(update_fields=["state", "remaining_ms", "deadline_at"])
        room.save(update_fields=["playback_status"])
        record_event(app=app, room=room, payload=payload)
        audit.record(
            actor=actor,
            action=action,
            app_id=app.app_id,
            room_id=room_id,
            operation_id=operation_id,
            detail={"play_operation_id": str(operation.operation_id)},
        )
        engine_commands.enqueue(command, room=room, room_id=room_id, operation_id=str(operation.operation_id))
        return {"operation_id": operation_id, **_status(room)}


def stop(*, actor: Actor, app, room_id: str, operation_id: str | None = None) -> dict:
    """Stop the room's playback; with `operation_id`, only if that play is the one active."""
    with transaction.atomic():
        room = lock_live_room(app=app, room_id=room_id)
        active = _active_operation(room)
        if active is None or (operation_id is not None and str(active.operation_id) != str(operation_id)):
            raise Conflict("No playback in this conference", code="no_playback")
        operation_id = stop_locked(room=room, actor=actor)
        return {"operation_id": operation_id, **_status(room)}


def stop_locked(*, room: Room, actor: Actor) -> str:
    """End the room's active playback with `conference.play.stopped`; the caller holds the lock."""
    operation = _active_operation(room)
    operation_id = mint_operation_id()
    _end(operation, room, state=PlaybackState.STOPPED)
    record_event(app=room.app, room=room, payload=webhook_events.play_stopped(room, operation_id))
    audit.record(
        actor=actor,
        action="playback.stop",
        app_id=room.app.app_id,
        room_id=room.room_id,
        operation_id=operation_id,
        detail={"play_operation_id": str(operation.operation_id)},
    )
    if room.destroyed_at is None:
        engine_commands.enqueue("stop", room=room, room_id=room.room_id, operation_id=str(operation.operation_id))
    return operation_id


def set_volume(*, actor: Actor, app, room_id: str, volume: int) -> dict:
    with transaction.atomic():
        room = lock_live_room(app=app, room_id=room_id)
        operation_id = mint_operation_id()
        room.volume = volume
        room.save(update_fields=["volume"])
        record_event(app=app, room=room, payload=webhook_events.play_volume_changed(room, operation_id, volume))
        audit.record(
            actor=actor,
            action="playback.volume",
            app_id=app.app_id,
            room_id=room_id,
            operation_id=operation_id,
            request={"volume": volume},
        )
        engine_commands.enqueue("set_volume", room=room, room_id=room_id, volume=volume)
        return {"operation_id": operation_id, **_status(room)}


# --- Engine reports and the watchdog -----------------------------------------------------------


def _lock_operation(operation_id: str, room_id: str | None = None) -> tuple[Room, PlaybackOperation] | None:
    """The room (locked) and its active operation `operation_id`, or None when the play has
    ended, is unknown, or (with `room_id`) belongs to another room."""
    try:
        uuid.UUID(operation_id)
    except ValueError:
        return None
    room_pk = PlaybackOperation.objects.filter(operation_id=operation_id).values_list("room_id", flat=True).first()
    if room_pk is None:
        return None
    room = Room.objects.select_for_update(of=("self",)).select_related("app").get(pk=room_pk)
    operation = room.playbacks.filter(operation_id=operation_id, state__in=ACTIVE_PLAYBACK_STATES).first()
    if operation is None or (room_id is not None and room.room_id != room_id):
        return None
    return room, operation


def engine_progress(*, actor: Actor, room_id: str, operation_id: str) -> bool:
    """Progress restarts the watchdog's clock."""
    with transaction.atomic():
        found = _lock_operation(operation_id, room_id)
        if found is None:
            return False
        room, operation = found
        if operation.state == PlaybackState.PLAYING:
            operation.deadline_at = timezone.now() + _timeout()
            _arm_watchdog_on_commit(operation)
        else:
            operation.remaining_ms = int(_timeout().total_seconds() * 1000)
        operation.save(update_fields=["deadline_at", "remaining_ms"])
    return True


def engine_finished(*, actor: Actor, room_id: str, operation_id: str, url: str) -> bool:
    return _end_from_engine(actor=actor, room_id=room_id, operation_id=operation_id, url=url, error=None)


def engine_error(*, actor: Actor, room_id: str, operation_id: str, url: str, message: str = "") -> bool:
    return _end_from_engine(
        actor=actor, room_id=room_id, operation_id=operation_id, url=url, error="playback_error", message=message
    )


def _end_from_engine(*, actor, room_id, operation_id, url, error, message="") -> bool:
    with transaction.atomic():
        found = _lock_operation(operation_id, room_id)
        if found is None:
            return False
        room, operation = found
        if error is None:
            _end(operation, room, state=PlaybackState.FINISHED)
            payload = webhook_events.play_finished(room, operation_id, [url])
        else:
            _end(operation, room, state=PlaybackState.FAILED, error=error)
            payload = webhook_events.play_failed(room, operation_id, [url], error)
        record_event(app=room.app, room=room, payload=payload)
        audit.record(
            actor=actor,
            action=f"playback.{'finished' if error is None else 'failed'}",
            app_id=room.app.app_id,
            room_id=room_id,
            operation_id=operation_id,
            detail={"url": url, "message": message} if message else {"url": url},
        )
    return True


def fail_dispatch(*, operation_id: str, actor: Actor, tell_engine: bool) -> bool:
    """The engine refused the play or could not be reached; `tell_engine` (to stop) when it may
    have started playing anyway."""
    with transaction.atomic():
        found = _lock_operation(operation_id)
        if found is None:
            return False
        room, operation = found
        _end(operation, room, state=PlaybackState.FAILED, error="playback_error")
        if tell_engine:
            engine_commands.enqueue("stop", room=room, room_id=room.room_id, operation_id=operation_id)
        record_event(
            app=room.app,
            room=room,
            payload=webhook_events.play_failed(room, operation_id, operation.urls, "playback_error"),
        )
        audit.record(
            actor=actor,
            action="playback.failed",
            app_id=room.app.app_id,
            room_id=room.room_id,
            operation_id=operation_id,
            detail={"reason": "engine_unavailable"},
        )
    return True


def expire(*, operation_id: str, actor: Actor, now: datetime | None = None) -> bool:
    """The watchdog for one play: failed with playback_timeout if still playing at its deadline."""
    try:
        uuid.UUID(operation_id)
    except ValueError:
        return False
    return _expire_batch(actor=actor, now=now or timezone.now(), operation_id=operation_id) == 1


def expire_due(*, actor: Actor, now: datetime | None = None, limit: int = 500) -> int:
    """Every play past its deadline fails with playback_timeout (the partial index on playing
    deadlines keeps the cost in proportion to what is due). Used by each precise timer and by
    the periodic sweep: whichever fires first takes everything due."""
    return _expire_batch(actor=actor, now=now or timezone.now(), limit=limit)


def _expire_batch(*, actor: Actor, now: datetime, operation_id: str | None = None, limit: int = 500) -> int:
    due = PlaybackOperation.objects.filter(state=PlaybackState.PLAYING, deadline_at__lte=now)
    if operation_id is not None:
        due = due.filter(operation_id=operation_id)
    room_ids = list(due.order_by("room_id").values_list("room_id", flat=True)[:limit])
    if not room_ids:
        return 0
    with transaction.atomic():
        # Rooms busy elsewhere are skipped (the next timer or sweep takes them); the state is
        # read again under the lock.
        rooms = {
            room.pk: room
            for room in Room.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("app")
            .filter(pk__in=room_ids)
            .order_by("pk")
        }
        expired = list(due.filter(room_id__in=rooms).select_for_update())
        if not expired:
            return 0
        PlaybackOperation.objects.filter(pk__in=[op.pk for op in expired]).update(
            state=PlaybackState.FAILED, error="playback_timeout", ended_at=now, deadline_at=None
        )
        Room.objects.filter(pk__in=[op.room_id for op in expired]).update(
            playback_status=PlaybackStatus.STOPPED, playback_operation_id=None, playback_urls=[]
        )
        items = []
        for operation in expired:
            room = rooms[operation.room_id]
            op_id = str(operation.operation_id)
            items.append(
                (
                    room.app,
                    room,
                    room.room_id,
                    webhook_events.play_failed(room, op_id, operation.urls, "playback_timeout"),
                )
            )
            engine_commands.enqueue("stop", room=room, room_id=room.room_id, operation_id=op_id)
        record_events(items)
        audit.record_many(
            [
                dict(
                    actor=actor,
                    action="playback.timeout",
                    app_id=rooms[op.room_id].app.app_id,
                    room_id=rooms[op.room_id].room_id,
                    operation_id=str(op.operation_id),
                )
                for op in expired
            ]
        )
    return len(expired)
