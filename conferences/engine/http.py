"""`http`: commands POSTed as signed JSON to ENGINE_URL; the engine reports back through the
ingress.

The contract (README, "The http engine"):
- Body `{"command": <name>, ...arguments}`; headers `x-engine-command-id` (the same on every
  try of one command: an engine drops repeats), `x-engine-timestamp` (Unix seconds) and
  `x-engine-signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" with ENGINE_SECRET>`.
- 2xx: taken. 4xx (but 408 and 429): refused, not tried again. Anything else, or no answer
  within ENGINE_TIMEOUT_SECONDS: tried again with backoff.
- `{"command": "live_sessions"}` answers
  `{"node": "<5 chars>", "sessions": [{"session_uuid": ..., "room_id": ... | null}, ...],
  "rooms": [room_id, ...]}`; `rooms` may be left out, and a session may be given as its bare
  session_uuid (its room then unknown).
"""

import hashlib
import hmac
import json
import logging
import time

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..ids import NODE_RE
from .base import Engine, EngineRejected, EngineState, EngineUnavailable

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a live_sessions answer for a very busy node
RETRIED_CLIENT_ERRORS = (408, 429)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class HttpEngine(Engine):
    def __init__(self):
        if not settings.ENGINE_SECRET:
            raise ImproperlyConfigured("ENGINE=http needs ENGINE_SECRET, the key that signs commands")
        self.client = httpx.Client(trust_env=False, follow_redirects=False)

    def execute(self, command: str, arguments: dict, *, command_id: int) -> None:
        self._send(command, arguments, command_id=command_id)

    def _send(self, command: str, arguments: dict, *, command_id: int | None = None) -> bytes:
        """The engine's answer body; EngineUnavailable or EngineRejected when it did not take it."""
        if not settings.ENGINE_URL:
            raise EngineUnavailable("ENGINE_URL is not set")
        body = json.dumps({"command": command, **arguments}, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-engine-timestamp": timestamp,
            "x-engine-signature": signature(settings.ENGINE_SECRET, timestamp, body),
        }
        if command_id is not None:
            headers["x-engine-command-id"] = str(command_id)
        timeout = settings.ENGINE_TIMEOUT_SECONDS
        deadline = time.monotonic() + timeout
        try:
            with self.client.stream("POST", settings.ENGINE_URL, content=body, headers=headers,
                                    timeout=timeout) as response:
                answer = bytearray()
                for chunk in response.iter_bytes():
                    answer += chunk
                    if len(answer) > MAX_ANSWER_BYTES or time.monotonic() > deadline:
                        raise EngineUnavailable("the engine's answer was too large or too slow")
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"{type(exc).__name__}: {exc}") from None
        if response.is_client_error and response.status_code not in RETRIED_CLIENT_ERRORS:
            raise EngineRejected(f"engine refused: {response.status_code}")
        if not response.is_success:
            raise EngineUnavailable(f"engine answered {response.status_code}")
        return bytes(answer)

    def live_state(self) -> EngineState | None:
        try:
            return parse_live_state(json.loads(self._send("live_sessions", {})))
        except (EngineUnavailable, ValueError) as exc:
            logger.warning("the engine's live sessions are unavailable: %s", exc)
            return None


def parse_live_state(body) -> EngineState:
    """The live_sessions answer; ValueError when it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("node"), str) or not NODE_RE.fullmatch(body["node"]):
        raise ValueError("live_sessions: `node` must be 5 characters of [A-Za-z0-9]")
    listed, rooms = body.get("sessions"), body.get("rooms")
    if not isinstance(listed, list):
        raise ValueError("live_sessions: `sessions` must be a list")
    sessions, knows_rooms = {}, True
    for entry in listed:
        if isinstance(entry, str):
            sessions[entry], knows_rooms = None, False
        elif (isinstance(entry, dict) and isinstance(entry.get("session_uuid"), str)
              and isinstance(entry.get("room_id"), (str, type(None)))):
            sessions[entry["session_uuid"]] = entry["room_id"]
        else:
            raise ValueError("live_sessions: each session is a session_uuid or {session_uuid, room_id}")
    if rooms is not None and (not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms)):
        raise ValueError("live_sessions: `rooms` must be a list of room ids")
    return EngineState(node=body["node"], sessions=sessions,
                       rooms=None if rooms is None else frozenset(rooms), knows_rooms=knows_rooms)
