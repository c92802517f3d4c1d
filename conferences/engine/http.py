"""`http`: commands POSTed as signed JSON to ENGINE_URL; the engine reports back through the
ingress.

The contract (README, "The http engine"):
- Body `{"command": <name>, ...arguments}`; headers `x-engine-command-id` (the same on every
  try of one command: an engine drops repeats), `x-engine-timestamp` (Unix seconds) and
  `x-engine-signature: sha256=<hex HMAC-SHA256 of "{command_id}.{timestamp}.{body}" with
  ENGINE_SECRET>`, so the id cannot be changed to replay a command.
- 2xx: taken. 4xx (but 408 and 429): refused, not tried again. Anything else, or no full
  answer within ENGINE_TIMEOUT_SECONDS (one absolute deadline: connect, request, answer):
  tried again with backoff.
- `{"command": "live_sessions"}` (command id `live_sessions`) answers
  `{"node": "<5 chars>", "sessions": [{"session_uuid": ..., "room_id": ... | null}, ...],
  "rooms": [room_id, ...]}`; `rooms` may be left out, and a session may be given as its bare
  session_uuid (its room then unknown).

Requests run on an asyncio loop of the adapter's own (one per process, one pooled keep-alive
client), so the deadline is absolute: a command's lease always outlives it.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time

import aiohttp
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..ids import NODE_RE
from .base import Engine, EngineRejected, EngineState, EngineUnavailable

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a live_sessions answer for a very busy node
RETRIED_CLIENT_ERRORS = (408, 429)
LIVE_SESSIONS_ID = "live_sessions"


def signature(secret: str, command_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{command_id}.{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class HttpEngine(Engine):
    def __init__(self):
        if not settings.ENGINE_SECRET:
            raise ImproperlyConfigured("ENGINE=http needs ENGINE_SECRET, the key that signs commands")
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        threading.Thread(target=self._loop.run_forever, name="engine-http", daemon=True).start()

    def execute(self, command: str, arguments: dict, *, command_id: int) -> None:
        self._send(command, arguments, command_id=str(command_id))

    def _send(self, command: str, arguments: dict, *, command_id: str) -> bytes:
        """The engine's answer body; EngineUnavailable or EngineRejected when it did not take it."""
        body = json.dumps({"command": command, **arguments}, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-engine-command-id": command_id,
            "x-engine-timestamp": timestamp,
            "x-engine-signature": signature(settings.ENGINE_SECRET, command_id, timestamp, body),
        }
        posting = self._post(settings.ENGINE_URL, body, headers, settings.ENGINE_TIMEOUT_SECONDS)
        status, answer = asyncio.run_coroutine_threadsafe(posting, self._loop).result()
        if 400 <= status < 500 and status not in RETRIED_CLIENT_ERRORS:
            raise EngineRejected(f"engine refused: {status}")
        if not 200 <= status < 300:
            raise EngineUnavailable(f"engine answered {status}")
        return answer

    async def _post(self, url: str, body: bytes, headers: dict, timeout: float) -> tuple[int, bytes]:
        if self._session is None:  # made on the loop it belongs to
            self._session = aiohttp.ClientSession(trust_env=False, connector=aiohttp.TCPConnector(limit=0))
        try:
            async with asyncio.timeout(timeout):
                async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                    answer = bytearray()
                    while chunk := await response.content.read(65536):
                        answer += chunk
                        if len(answer) > MAX_ANSWER_BYTES:
                            raise EngineUnavailable("the engine's answer is too large")
                    return response.status, bytes(answer)
        except TimeoutError:
            raise EngineUnavailable(f"no answer within {timeout} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise EngineUnavailable(f"{type(exc).__name__}: {exc}") from None

    def live_state(self) -> EngineState | None:
        try:
            return parse_live_state(json.loads(self._send("live_sessions", {}, command_id=LIVE_SESSIONS_ID)))
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
    sessions = {}
    for entry in listed:
        if isinstance(entry, str):
            sessions[entry] = None
        elif (
            isinstance(entry, dict)
            and isinstance(entry.get("session_uuid"), str)
            and isinstance(entry.get("room_id"), (str, type(None)))
        ):
            sessions[entry["session_uuid"]] = entry["room_id"]
        else:
            raise ValueError("live_sessions: each session is a session_uuid or {session_uuid, room_id}")
    if rooms is not None and (not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms)):
        raise ValueError("live_sessions: `rooms` must be a list of room ids")
    return EngineState(node=body["node"], sessions=sessions, rooms=None if rooms is None else frozenset(rooms))
