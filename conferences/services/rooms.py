from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import webhook_events
from ..actors import Actor
from ..errors import NameTaken
from ..ids import mint_room_id
from ..models import App, Room
from ..models.rooms import PlaybackStatus
from ..models.sessions import ACTIVE_MEMBER_STATES
from . import audit, engine_commands, quotas
from .events import record_event
from .locks import lock_live_room
from .members import end_memberships_locked
from .playback import stop_locked

NAME_CONSTRAINT = "room_live_name_unique"


def _violates(exc: IntegrityError, constraint: str) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def create_room(*, actor: Actor, app: App, name: str) -> Room:
    """Create a live room named `name`, or raise NameTaken naming the live room that has it.

    Concurrent creates race on the partial unique index: the loser's insert waits for the
    winner's commit, fails, and then reads the winner's room.
    """
    try:
        quotas.check_live_rooms(app)
    except quotas.QuotaExceeded as exc:
        audit.record(
            actor=actor,
            action="conference.create",
            outcome=exc.code,
            app_id=app.app_id,
            request={"name": name},
            detail=exc.detail,
        )
        raise
    for _ in range(3):
        try:
            with transaction.atomic():
                room = Room.objects.create(room_id=mint_room_id(), app=app, name=name, node=settings.NODE_HASH)
                record_event(app=app, room=room, payload=webhook_events.conference_created(room))
                audit.record(
                    actor=actor,
                    action="conference.create",
                    app_id=app.app_id,
                    room_id=room.room_id,
                    request={"name": name},
                )
                return room
        except IntegrityError as exc:
            if not _violates(exc, NAME_CONSTRAINT):
                raise
        existing = Room.objects.live().filter(app=app, name=name).values_list("room_id", flat=True).first()
        if existing is not None:
            audit.record(
                actor=actor,
                action="conference.create",
                outcome=NameTaken.code,
                app_id=app.app_id,
                room_id=existing,
                request={"name": name},
            )
            raise NameTaken(existing)
        # The holder was destroyed between our insert and our read: the name is free again.
    raise NameTaken("")  # pragma: no cover - three destroys racing three creates


def destroy_room(*, actor: Actor, app: App, room_id: str) -> None:
    """Delete a room: playback ends first, then every member goes, then `conference.destroyed`.

    The row stays, marked destroyed, for history.
    """
    with transaction.atomic():
        room = lock_live_room(app=app, room_id=room_id)
        room.destroyed_at = timezone.now()  # set first: the engine is told to destroy, not to stop or kick
        if room.playback_status != PlaybackStatus.STOPPED:
            stop_locked(room=room, actor=actor)
        members = list(
            room.memberships.select_for_update(of=("self",))
            .select_related("session")
            .filter(state__in=ACTIVE_MEMBER_STATES)
            .order_by("requested_at", "id")
        )
        for member in members:
            member.room = room
        end_memberships_locked(members=members, reason="removed", actor=actor)
        room.save(update_fields=["destroyed_at"])
        record_event(app=app, room=room, payload=webhook_events.conference_destroyed(room))
        audit.record(actor=actor, action="conference.destroy", app_id=app.app_id, room_id=room.room_id)
        engine_commands.enqueue("destroy_room", room=room, room_id=room.room_id)
