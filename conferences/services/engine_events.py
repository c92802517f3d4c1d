"""Everything the media engine reports, from any adapter (the HTTP ingress, the simulator),
goes through `handle`. Duplicate, late and out-of-order reports are harmless: each service
below changes state only when the report still applies."""

import uuid

from rest_framework import serializers

from ..actors import Actor
from ..fields import StrictCharField
from ..ids import APP_ID_RE, NODE_RE
from . import audit, members, playback, sessions


class SessionCreated(serializers.Serializer):
    app_id = StrictCharField(max_length=64)
    caller_id = StrictCharField(max_length=128, allow_blank=True)
    session_uuid = StrictCharField(max_length=64, required=False)

    def validate_app_id(self, value):
        if not APP_ID_RE.fullmatch(value):
            raise serializers.ValidationError("Invalid app_id.")
        return value


class SessionRef(serializers.Serializer):
    session_uuid = StrictCharField(max_length=64)


class MemberRef(SessionRef):
    room_id = StrictCharField(max_length=64)


def validate_uuid(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise serializers.ValidationError("Must be a UUID.") from None
    return value


class PlaybackRef(serializers.Serializer):
    room_id = StrictCharField(max_length=64)
    operation_id = StrictCharField(max_length=64, validators=[validate_uuid])


class PlaybackFileRef(PlaybackRef):
    url = StrictCharField(max_length=2048)


class PlaybackError(PlaybackFileRef):
    message = StrictCharField(required=False, allow_blank=True, max_length=2000)


class Heartbeat(serializers.Serializer):
    node = StrictCharField(max_length=5, min_length=5)
    sessions = serializers.ListField(child=StrictCharField(max_length=64), max_length=100_000)

    def validate_node(self, value):
        if not NODE_RE.fullmatch(value):
            raise serializers.ValidationError("Invalid node.")
        return value


SHAPES = {
    "session.created": SessionCreated,
    "session.ended": SessionRef,
    "member.joined": MemberRef,
    "member.left": MemberRef,
    "playback.progress": PlaybackRef,
    "playback.finished": PlaybackFileRef,
    "playback.error": PlaybackError,
    "heartbeat": Heartbeat,
}


def parse(report: dict) -> tuple[str, dict]:
    """Validate a report; raises DRF's ValidationError (400) for malformed ones and unknown types."""
    kind = report.get("type") if isinstance(report, dict) else None
    if not isinstance(kind, str) or kind not in SHAPES:
        raise serializers.ValidationError({"type": [f"Unknown event type; expected one of {', '.join(SHAPES)}."]})
    shape = SHAPES[kind](data=report)
    shape.is_valid(raise_exception=True)
    return kind, shape.validated_data


def handle(report: dict, *, actor: Actor) -> tuple[int, dict]:
    """Apply one engine report; returns (HTTP status, body) for the ingress."""
    kind, data = parse(report)
    if kind == "session.created":
        session = sessions.create_session(
            actor=actor, app_id=data["app_id"], caller_id=data["caller_id"], session_uuid=data.get("session_uuid")
        )
        return 201, {"session_uuid": session.session_uuid}
    if kind == "session.ended":
        changed = members.end_session(
            actor=actor, session_uuid=data["session_uuid"], reason="hangup", tell_engine=False
        )
    elif kind == "member.joined":
        changed = members.confirm_join(actor=actor, session_uuid=data["session_uuid"], room_id=data["room_id"])
    elif kind == "member.left":
        changed = members.engine_member_left(actor=actor, session_uuid=data["session_uuid"], room_id=data["room_id"])
    elif kind == "heartbeat":
        sessions.heartbeat(actor=actor, node=data["node"], live_session_uuids=data["sessions"])
        changed = True
    else:
        changed = _playback_report(kind, data, actor=actor)
    if not changed:
        audit.record(
            actor=actor,
            action=f"engine.{kind}",
            outcome="ignored",
            room_id=data.get("room_id", ""),
            session_uuid=data.get("session_uuid", ""),
            operation_id=data.get("operation_id", ""),
            request=_recorded(kind, data),
        )
    return 200, {"status": "ok", "changed": changed}


def _recorded(kind: str, data: dict) -> dict:
    """The report as the history keeps it: validated fields only (a heartbeat's list by size)."""
    if kind == "heartbeat":
        return {"type": kind, "node": data["node"], "sessions": len(data["sessions"])}
    return {"type": kind, **data}


def _playback_report(kind: str, data: dict, *, actor: Actor) -> bool:
    """A report for a play that already ended (or never was) changes nothing: history only."""

    if kind == "playback.progress":
        return playback.engine_progress(actor=actor, room_id=data["room_id"], operation_id=data["operation_id"])
    if kind == "playback.finished":
        return playback.engine_finished(
            actor=actor, room_id=data["room_id"], operation_id=data["operation_id"], url=data["url"]
        )
    return playback.engine_error(
        actor=actor,
        room_id=data["room_id"],
        operation_id=data["operation_id"],
        url=data["url"],
        message=data.get("message", ""),
    )
