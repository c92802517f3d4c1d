from django.utils import timezone

from .. import webhook_events
from ..actors import Actor
from ..models import Member
from ..models.sessions import MemberState
from . import audit
from .events import record_event


def end_membership_locked(*, member: Member, reason: str, actor: Actor) -> None:
    """End an active membership; the caller holds the room's row lock.

    A joined member leaves with `conference.member.left`; a pending join is cancelled and its
    `command.result` fails with "cancelled" (a member that never joined gets no left event).
    """
    room, session = member.room, member.session
    member.ended_at = timezone.now()
    member.end_reason = reason
    if member.state == MemberState.JOINED:
        member.state = MemberState.LEFT
        record_event(
            app=room.app,
            room=room,
            payload=webhook_events.member_left(room, session.session_uuid, session.caller_id, reason),
        )
    else:
        member.state = MemberState.FAILED
        record_event(
            app=room.app,
            ordering_key=session.session_uuid,
            payload=webhook_events.command_result(
                operation_id=str(member.join_operation_id),
                command_uid=member.join_command_uid,
                session_uuid=session.session_uuid,
                command="conference/join",
                error="cancelled",
            ),
        )
    member.save(update_fields=["state", "ended_at", "end_reason"])
    audit.record(
        actor=actor,
        action="member.end",
        app_id=room.app.app_id,
        room_id=room.room_id,
        session_uuid=session.session_uuid,
        detail={"reason": reason, "state": member.state},
    )
