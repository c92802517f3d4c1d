"""`http`: commands POSTed as signed JSON to ENGINE_URL; the engine reports back through the
ingress. The signature is HMAC-SHA256 over "{timestamp}.{body}" with ENGINE_TOKEN."""

import hashlib
import hmac
import json
import time

import httpx
from django.conf import settings

from .base import Engine, EngineUnavailable

TIMEOUT_SECONDS = 2


class HttpEngine(Engine):
    def __init__(self):
        self.client = httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False, follow_redirects=False)

    def _send(self, command: str, **arguments) -> httpx.Response:
        if not settings.ENGINE_URL:
            raise EngineUnavailable("ENGINE_URL is not set")
        body = json.dumps({"command": command, **arguments}, separators=(",", ":"))
        timestamp = str(int(time.time()))
        signature = hmac.new(settings.ENGINE_TOKEN.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
        headers = {
            "content-type": "application/json",
            "x-engine-timestamp": timestamp,
            "x-engine-signature": f"sha256={signature.hexdigest()}",
        }
        try:
            response = self.client.post(settings.ENGINE_URL, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"{type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise EngineUnavailable(f"engine answered {response.status_code}")
        return response

    def live_sessions(self):
        """The engine answers `{"node": "<5 chars>", "sessions": [session_uuid, ...]}`; anything
        else (or no answer) means it cannot tell, and only ORPHAN_AFTER_SECONDS applies."""
        try:
            body = self._send("live_sessions").json()
        except (EngineUnavailable, ValueError):
            return None
        node, sessions = (body.get("node"), body.get("sessions")) if isinstance(body, dict) else (None, None)
        if not isinstance(node, str) or not isinstance(sessions, list) or not all(isinstance(s, str) for s in sessions):
            return None
        return node, set(sessions)

    def join(self, *, session_uuid, room_id, muted, operation_id):
        self._send("join", session_uuid=session_uuid, room_id=room_id, muted=muted, operation_id=operation_id)

    def kick(self, *, session_uuid, room_id):
        self._send("kick", session_uuid=session_uuid, room_id=room_id)

    def mute(self, *, session_uuid, room_id):
        self._send("mute", session_uuid=session_uuid, room_id=room_id)

    def unmute(self, *, session_uuid, room_id):
        self._send("unmute", session_uuid=session_uuid, room_id=room_id)

    def play(self, *, room_id, operation_id, urls, volume):
        self._send("play", room_id=room_id, operation_id=operation_id, urls=urls, volume=volume)

    def pause(self, *, room_id, operation_id):
        self._send("pause", room_id=room_id, operation_id=operation_id)

    def resume(self, *, room_id, operation_id):
        self._send("resume", room_id=room_id, operation_id=operation_id)

    def stop(self, *, room_id, operation_id):
        self._send("stop", room_id=room_id, operation_id=operation_id)

    def set_volume(self, *, room_id, volume):
        self._send("set_volume", room_id=room_id, volume=volume)

    def destroy_room(self, *, room_id):
        self._send("destroy_room", room_id=room_id)
