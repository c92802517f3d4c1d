"""Reconciliation: the engine's live state against the database, drift repaired both ways and
each repair recorded in the history.

- A session the engine lost (one of its node's active sessions it does not list) is ended as
  an orphan, if it was created and last seen before the engine was asked: a session newer than
  the answer is not judged by it.
- A call the engine still has in a room where we ended it (or never put it) is kicked again,
  and a room we destroyed that the engine still holds is destroyed again, through the outbox.
  A repair whose own commands are still on their way (written before the engine was asked,
  and pending or sent since) waits for the next pass: the engine's answer may predate them.
"""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..actors import Actor
from ..engine.base import EngineState, get_engine
from ..models import EngineCommand, Member, Room
from ..models.engine import EngineCommandStatus
from ..models.sessions import ACTIVE_MEMBER_STATES
from . import audit, engine_commands, sessions

logger = logging.getLogger(__name__)

RECONCILER = Actor.system("reconciliation")


def reconcile(*, actor: Actor = RECONCILER) -> dict[str, int]:
    asked_at = timezone.now()  # before the engine answers: anything newer is not judged
    state = get_engine().live_state()
    if state is None:
        return {}
    return {
        "orphaned": sessions.heartbeat(
            actor=actor, node=state.node, live_session_uuids=list(state.sessions), taken_at=asked_at
        ),
        "kicked": _kick_stale_calls(state, asked_at=asked_at, actor=actor),
        "destroyed": _destroy_stale_rooms(state, asked_at=asked_at, actor=actor),
    }


def _kick_stale_calls(state: EngineState, *, asked_at, actor: Actor) -> int:
    in_rooms = {session: room for session, room in state.sessions.items() if room is not None}
    if not in_rooms:
        return 0
    expected = set(
        Member.objects.filter(session__session_uuid__in=in_rooms, state__in=ACTIVE_MEMBER_STATES).values_list(
            "session__session_uuid", "room__room_id"
        )
    )
    stale = [(session, room) for session, room in in_rooms.items() if (session, room) not in expected]
    return sum(
        _repair(room_id, actor=actor, asked_at=asked_at, command="kick", session_uuid=session)
        for session, room_id in stale
    )


def _destroy_stale_rooms(state: EngineState, *, asked_at, actor: Actor) -> int:
    if not state.rooms:
        return 0
    destroyed = Room.objects.filter(room_id__in=state.rooms, destroyed_at__lt=asked_at).values_list(
        "room_id", flat=True
    )
    return sum(_repair(room_id, actor=actor, asked_at=asked_at, command="destroy_room") for room_id in destroyed)


def _repair(room_id: str, *, actor: Actor, asked_at, command: str, session_uuid: str = "") -> bool:
    """Queue `command` again for the room, unless the room's queue may explain the drift."""
    with transaction.atomic():
        room = Room.objects.select_for_update(of=("self",)).select_related("app").filter(room_id=room_id).first()
        if room is None:
            logger.warning("the engine holds room %s, which this service does not know", room_id)
            return False
        # Commands written before the engine answered that it may not have carried out yet.
        in_transit = EngineCommand.objects.filter(room=room, created_at__lt=asked_at).filter(
            Q(status=EngineCommandStatus.PENDING) | Q(completed_at__gte=asked_at)
        )
        if session_uuid:
            in_transit = in_transit.filter(Q(arguments__session_uuid=session_uuid) | Q(command="destroy_room"))
        ended_since = session_uuid and Member.objects.filter(room=room, session__session_uuid=session_uuid).filter(
            Q(state__in=ACTIVE_MEMBER_STATES) | Q(ended_at__gte=asked_at)
        )
        if in_transit.exists() or (ended_since and ended_since.exists()):
            return False
        arguments = {"session_uuid": session_uuid, "room_id": room_id} if session_uuid else {"room_id": room_id}
        engine_commands.enqueue(command, room=room, **arguments)
        audit.record(
            actor=actor,
            action=f"reconcile.{command}",
            app_id=room.app.app_id,
            room_id=room_id,
            session_uuid=session_uuid,
            detail={"reason": "the engine still holds it"},
        )
    return True
