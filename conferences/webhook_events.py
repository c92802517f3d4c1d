"""Builders of the webhook bodies of events.schema.json: exactly these keys, nothing added."""

from .models import Room


def conference_created(room: Room) -> dict:
    return {"event": "conference.created", "app_id": room.app.app_id, "room_id": room.room_id, "name": room.name}


def conference_destroyed(room: Room) -> dict:
    return {"event": "conference.destroyed", "app_id": room.app.app_id, "room_id": room.room_id}


def play_started(room: Room, operation_id: str, urls: list[str]) -> dict:
    return {"event": "conference.play.started", "room_id": room.room_id, "urls": urls, "operation_id": operation_id}


def play_paused(room: Room, operation_id: str) -> dict:
    return {"event": "conference.play.paused", "room_id": room.room_id, "operation_id": operation_id}


def play_resumed(room: Room, operation_id: str) -> dict:
    return {
        "event": "conference.play.resumed",
        "app_id": room.app.app_id,
        "room_id": room.room_id,
        "operation_id": operation_id,
    }


def play_stopped(room: Room, operation_id: str) -> dict:
    return {"event": "conference.play.stopped", "room_id": room.room_id, "operation_id": operation_id}


def play_volume_changed(room: Room, operation_id: str, volume: int) -> dict:
    return {
        "event": "conference.play.volume_changed",
        "room_id": room.room_id,
        "volume": volume,
        "operation_id": operation_id,
    }


def play_finished(room: Room, operation_id: str, urls: list[str]) -> dict:
    return {"event": "conference.play.finished", "room_id": room.room_id, "operation_id": operation_id, "urls": urls}


def play_failed(room: Room, operation_id: str, urls: list[str], error: str) -> dict:
    return {
        "event": "conference.play.failed",
        "room_id": room.room_id,
        "operation_id": operation_id,
        "urls": urls,
        "error": error,
    }


def member_left(room: Room, session_uuid: str, caller_id: str, reason: str) -> dict:
    return {
        "event": "conference.member.left",
        "session_uuid": session_uuid,
        "room_id": room.room_id,
        "reason": reason,
        "caller_id": caller_id,
    }


def command_result(*, operation_id: str, command_uid: str, session_uuid: str, command: str, error: str | None) -> dict:
    return {
        "event": "command.result",
        "operation_id": operation_id,
        "command_uid": command_uid,
        "session_uuid": session_uuid,
        "command": command,
        "success": error is None,
        "error": error,
    }


def _member(event: str, room: Room, session_uuid: str, caller_id: str) -> dict:
    return {"event": event, "session_uuid": session_uuid, "room_id": room.room_id, "caller_id": caller_id}


def member_joined(room: Room, session_uuid: str, caller_id: str) -> dict:
    return _member("conference.member.joined", room, session_uuid, caller_id)


def member_muted(room: Room, session_uuid: str, caller_id: str) -> dict:
    return _member("conference.member.muted", room, session_uuid, caller_id)


def member_unmuted(room: Room, session_uuid: str, caller_id: str) -> dict:
    return _member("conference.member.unmuted", room, session_uuid, caller_id)
