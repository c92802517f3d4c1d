"""Sessions in rooms: join, leave, mute, kick, the engine's confirmations, timeouts, hang-ups.

Locks are taken in one order, session → room → member, so these never deadlock each other;
room-first paths (kick, room deletion) lock no session. Member events are keyed by the room,
`command.result` by the session.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import webhook_events
from ..actors import Actor
from ..errors import Conflict, NotFound
from ..ids import mint_operation_id
from ..models import CallSession, Member, Room
from ..models.sessions import ACTIVE_MEMBER_STATES, MemberState, SessionState
from ..publish import enqueue_on_commit
from . import audit, engine_commands
from .events import record_events
from .locks import lock_live_room

JOIN, LEAVE, MUTE, UNMUTE = "conference/join", "conference/leave", "conference/mute", "conference/unmute"
COMMAND_TIMEOUT_MS = 2000  # leave, mute and unmute take effect at once; the engine follows


def lock_active_session(*, app, session_uuid: str) -> CallSession:
    session = (
        CallSession.objects.select_for_update()
        .filter(app=app, session_uuid=session_uuid, state=SessionState.ACTIVE)
        .first()
    )
    if session is None:
        raise NotFound("Session not found")
    return session


def _lock_room(room_id: int) -> Room:
    return Room.objects.select_for_update(of=("self",)).select_related("app").get(pk=room_id)


def _locked_membership(session: CallSession, *, states=ACTIVE_MEMBER_STATES) -> Member | None:
    """The session's active membership with its room and member rows locked (in that order)."""
    member = session.memberships.filter(state__in=states).first()
    if member is None:
        return None
    room = _lock_room(member.room_id)
    member = Member.objects.select_for_update().filter(pk=member.pk, state__in=states).first()
    if member is None:  # changed before we held the room
        return None
    member.room, member.session = room, session
    return member


def _record_command_result(
    *, member_or_session, app, operation_id: str, command_uid: str, command: str, error: str | None
) -> None:
    record_events([_command_result(member_or_session, app, operation_id, command_uid, command, error)])


def _command_result(member_or_session, app, operation_id: str, command_uid: str, command: str, error: str | None):
    """A `command.result` as record_events takes it: ordered by the session."""
    session = member_or_session.session if isinstance(member_or_session, Member) else member_or_session
    payload = webhook_events.command_result(
        operation_id=operation_id,
        command_uid=command_uid,
        session_uuid=session.session_uuid,
        command=command,
        error=error,
    )
    return (app, None, session.session_uuid, payload)


def _join_result(member: Member, app, error: str | None):
    """The `command.result` of the member's join, as record_events takes it."""
    return _command_result(member, app, str(member.join_operation_id), member.join_command_uid, JOIN, error)


def accepted(operation_id: str, timeout_ms: int) -> dict:
    return {"operation_id": operation_id, "status": "in_progress", "timeout_ms": timeout_ms}


# --- Session commands (run inside services.commands.run_command's transaction) -------------


def join(*, actor: Actor, app, session_uuid: str, room_id: str, muted: bool, command_uid: str) -> dict:
    session = lock_active_session(app=app, session_uuid=session_uuid)
    room = lock_live_room(app=app, room_id=room_id)
    current = session.memberships.filter(state__in=ACTIVE_MEMBER_STATES).select_related("room").first()
    if current is not None:
        raise Conflict(
            "Session is already in a conference",
            code="already_in_conference",
            detail={"room_id": current.room.room_id},
        )
    operation_id = mint_operation_id()
    timeout = settings.JOIN_TIMEOUT_SECONDS
    member = Member.objects.create(
        room=room,
        session=session,
        muted=muted,
        join_operation_id=operation_id,
        join_command_uid=command_uid,
        join_deadline_at=timezone.now() + timedelta(seconds=timeout),
    )
    engine_commands.enqueue(
        "join",
        room=room,
        give_up_at=member.join_deadline_at,
        session_uuid=session_uuid,
        room_id=room_id,
        muted=muted,
        operation_id=operation_id,
    )
    # A precise timer per join; the periodic sweep is the safety net when it is lost.
    enqueue_on_commit("conferences.tasks.expire_join", member.pk, countdown=timeout)
    return accepted(operation_id, int(timeout * 1000))


def leave(*, actor: Actor, app, session_uuid: str, command_uid: str) -> dict:
    session = lock_active_session(app=app, session_uuid=session_uuid)
    member = _locked_membership(session, states=[MemberState.JOINED])
    if member is None:
        raise Conflict("Session is not in a conference", code="not_in_conference")
    operation_id = mint_operation_id()
    _end_locked([member], reason="removed", actor=actor)
    _record_command_result(
        member_or_session=member, app=app, operation_id=operation_id, command_uid=command_uid, command=LEAVE, error=None
    )
    return accepted(operation_id, COMMAND_TIMEOUT_MS)


def set_muted(*, actor: Actor, app, session_uuid: str, muted: bool, command_uid: str) -> dict:
    session = lock_active_session(app=app, session_uuid=session_uuid)
    member = _locked_membership(session, states=[MemberState.JOINED])
    if member is None:
        raise Conflict("Session is not in a conference", code="not_in_conference")
    operation_id = mint_operation_id()
    events = []
    if member.muted != muted:
        member.muted = muted
        member.save(update_fields=["muted"])
        builder = webhook_events.member_muted if muted else webhook_events.member_unmuted
        room = member.room
        events.append((app, room, room.room_id, builder(room, session.session_uuid, session.caller_id)))
        engine_commands.enqueue(
            "mute" if muted else "unmute", room=room, session_uuid=session_uuid, room_id=room.room_id
        )
    events.append(_command_result(member, app, operation_id, command_uid, MUTE if muted else UNMUTE, None))
    record_events(events)  # the member event and the command's result in one statement
    return accepted(operation_id, COMMAND_TIMEOUT_MS)


# --- Room-side and engine-side changes -----------------------------------------------------


def kick(*, actor: Actor, app, room_id: str, session_uuid: str) -> None:

    with transaction.atomic():
        room = lock_live_room(app=app, room_id=room_id)
        member = (
            Member.objects.select_for_update(of=("self",))
            .select_related("session")
            .filter(room=room, session__session_uuid=session_uuid, state__in=ACTIVE_MEMBER_STATES)
            .first()
        )
        if member is None:
            raise NotFound("Member not found")
        member.room = room
        end_membership_locked(member=member, reason="removed", actor=actor)


def end_membership_locked(*, member: Member, reason: str, actor: Actor, tell_engine: bool = True) -> None:
    """End an active membership; the caller holds the room's row lock. See end_memberships_locked."""
    end_memberships_locked(members=[member], reason=reason, actor=actor, tell_engine=tell_engine)


def end_memberships_locked(*, members: list[Member], reason: str, actor: Actor, tell_engine: bool = True) -> None:
    """End active memberships, in order; the caller holds their rooms' row locks.

    A joined member leaves with `conference.member.left`; a pending join is cancelled and its
    `command.result` fails with "cancelled" (a member that never joined gets no left event).
    `tell_engine` is False when the engine is where the leave came from. However many members,
    the same few statements: a room with a hundred calls is destroyed as fast as one with one.
    """
    _end_locked(members, reason=reason, actor=actor, tell_engine=tell_engine, cancelled_joins_fail=True)


def _end_locked(
    members: list[Member], *, reason: str, actor: Actor, tell_engine: bool = True, cancelled_joins_fail: bool = False
) -> None:
    """End the memberships; the engine is told to drop each call unless its room is being
    destroyed (destroy_room covers it) or the engine has no call to drop (`tell_engine`).
    `cancelled_joins_fail`: a pending join gets its failed `command.result` ("cancelled") here."""
    now = timezone.now()
    events, history = [], []
    for member in members:
        room, session = member.room, member.session
        member.ended_at, member.end_reason = now, reason
        if member.state == MemberState.JOINED:
            member.state = MemberState.LEFT
            payload = webhook_events.member_left(room, session.session_uuid, session.caller_id, reason)
            events.append((room.app, room, room.room_id, payload))
        else:
            member.state = MemberState.FAILED
            if cancelled_joins_fail:
                events.append(_join_result(member, room.app, "cancelled"))
        if room.destroyed_at is None and tell_engine:
            engine_commands.enqueue("kick", room=room, session_uuid=session.session_uuid, room_id=room.room_id)
        history.append(
            {
                "actor": actor,
                "action": "member.end",
                "app_id": room.app.app_id,
                "room_id": room.room_id,
                "session_uuid": session.session_uuid,
                "operation_id": str(member.join_operation_id),
                "detail": {"reason": reason, "state": member.state},
            }
        )
    Member.objects.bulk_update(members, ["state", "ended_at", "end_reason"])
    if events:
        record_events(events)
    audit.record_many(history)


def _lock_session_by_uuid(session_uuid: str, *, skip_locked: bool = False) -> CallSession | None:
    return (
        CallSession.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("app")
        .filter(session_uuid=session_uuid)
        .first()
    )


def confirm_join(*, actor: Actor, session_uuid: str, room_id: str) -> bool:
    """The engine says the call joined; only a pending join becomes a member (duplicates and
    late reports change nothing). Returns whether anything changed."""
    with transaction.atomic():
        session = _lock_session_by_uuid(session_uuid)
        if session is None or session.state != SessionState.ACTIVE:
            return False
        member = _locked_membership(session, states=[MemberState.JOINING])
        if member is None or member.room.room_id != room_id:
            return False
        member.state = MemberState.JOINED
        member.joined_at = timezone.now()
        member.save(update_fields=["state", "joined_at"])
        session.last_seen_at = member.joined_at
        session.save(update_fields=["last_seen_at"])
        room = member.room
        joined = webhook_events.member_joined(room, session.session_uuid, session.caller_id)
        record_events([(session.app, room, room.room_id, joined), _join_result(member, session.app, None)])
        audit.record(
            actor=actor,
            action="member.joined",
            app_id=session.app.app_id,
            room_id=room_id,
            session_uuid=session_uuid,
            operation_id=str(member.join_operation_id),
        )
    return True


def engine_member_left(*, actor: Actor, session_uuid: str, room_id: str) -> bool:
    """The engine says the call left the room on its own: it leaves with reason `removed`."""
    with transaction.atomic():
        session = _lock_session_by_uuid(session_uuid)
        if session is None:
            return False
        member = _locked_membership(session)
        if member is None or member.room.room_id != room_id:
            return False
        end_membership_locked(member=member, reason="removed", actor=actor, tell_engine=False)
    return True


def end_session(
    *, actor: Actor, session_uuid: str, reason: str, skip_locked: bool = False, tell_engine: bool = True
) -> bool:
    """The call is gone (hang-up, or an orphan) or staff hung it up: its membership ends with
    that reason. Sweeps pass skip_locked: a session busy elsewhere is left to the next sweep.
    `tell_engine` is False when the engine reported the hang-up: it has no call left to kick."""
    with transaction.atomic():
        session = _lock_session_by_uuid(session_uuid, skip_locked=skip_locked)
        if session is None or session.state != SessionState.ACTIVE:
            return False
        member = _locked_membership(session)
        if member is not None:
            end_membership_locked(member=member, reason=reason, actor=actor, tell_engine=tell_engine)
        session.state = SessionState.ENDED
        session.ended_at = timezone.now()
        session.save(update_fields=["state", "ended_at"])
        audit.record(
            actor=actor,
            action="session.end",
            app_id=session.app.app_id,
            session_uuid=session_uuid,
            detail={"reason": reason},
        )
    return True


def _fail_join(
    candidates, *, error: str, actor: Actor, due_before=None, tell_engine: bool = True, skip_locked: bool = True
) -> bool:
    """Fail the pending join among `candidates` (a Member queryset), if it is still pending.
    Timers and sweeps pass skip_locked: a session busy elsewhere is left to the next one."""
    found = candidates.filter(state=MemberState.JOINING).values_list("pk", "session_id").first()
    if found is None:
        return False
    member_pk, session_pk = found
    with transaction.atomic():
        session = (
            CallSession.objects.select_for_update(of=("self",), skip_locked=skip_locked)
            .select_related("app")
            .filter(pk=session_pk)
            .first()
        )
        if session is None:
            return False
        joining = _locked_membership(session, states=[MemberState.JOINING])
        if joining is None or joining.pk != member_pk:
            return False
        if due_before is not None and joining.join_deadline_at > due_before:
            return False
        _end_locked([joining], reason=error, actor=actor, tell_engine=tell_engine)
        record_events([_join_result(joining, session.app, error)])
    return True


def expire_join(*, member_id: int, actor: Actor, now=None) -> bool:
    """A pending join past its deadline fails with "timeout" (once, whoever fires it)."""
    return _fail_join(
        Member.objects.filter(pk=member_id), error="timeout", actor=actor, due_before=now or timezone.now()
    )


def fail_pending_join(*, operation_id: str, error: str, actor: Actor, tell_engine: bool) -> bool:
    """The engine failed the join; `tell_engine` when it may have carried it out anyway. Waits
    for the session's lock: this runs once, in the transaction that records the failure."""
    return _fail_join(
        Member.objects.filter(join_operation_id=operation_id),
        error=error,
        actor=actor,
        tell_engine=tell_engine,
        skip_locked=False,
    )


def expire_due_joins(*, actor: Actor, now=None, limit: int = 500) -> int:
    """The sweep: every pending join past its deadline (the partial index keeps this cheap)."""
    now = now or timezone.now()
    due = Member.objects.filter(state=MemberState.JOINING, join_deadline_at__lte=now).order_by("join_deadline_at")
    return sum(expire_join(member_id=pk, actor=actor, now=now) for pk in due.values_list("pk", flat=True)[:limit])
