"""`sim`: an embedded simulated engine. It reports back through Celery tasks that feed the same
handler as the ingress, and serves sessions of every node.

- Joins are confirmed after SIM_JOIN_DELAY_MS.
- It carries out every command it is sent, so its live state is the database's: its node's
  active sessions, in the rooms of their active memberships (reconciliation then only marks
  them seen).
- Playback plays each URL for the duration its fragment gives (`#duration=3.5`, else 2 s),
  reports progress every few seconds on long files and `playback.finished` after the last;
  `#error` reports `playback.error` (after its duration), `#hang` never ends. While the room
  is paused a file's end waits (checked every 0.5 s); a stopped or replaced play goes silent.
"""

import re

from django.conf import settings

from ..actors import Actor
from ..models import CallSession, Member, Room
from ..models.sessions import ACTIVE_MEMBER_STATES
from ..publish import enqueue_rollback_unsafe
from ..services import engine_events
from .base import Engine, EngineState, EngineUnavailable

DEFAULT_FILE_SECONDS = 2.0
MAX_FILE_SECONDS = 3600.0  # a fragment cannot make the simulator publish progress without end
PROGRESS_EVERY_SECONDS = 3.0
PAUSED_RECHECK_SECONDS = 0.5
_DURATION = re.compile(r"duration=([0-9]+(?:\.[0-9]+)?)")


def file_behaviour(url: str) -> tuple[float, str]:
    """(seconds, "finish" | "error" | "hang") from the URL's fragment."""
    fragment = url.partition("#")[2]
    match = _DURATION.search(fragment)
    seconds = min(float(match.group(1)), MAX_FILE_SECONDS) if match else DEFAULT_FILE_SECONDS
    if "hang" in fragment.split("&"):
        return seconds, "hang"
    if "error" in fragment.split("&"):
        return seconds, "error"
    return seconds, "finish"


def _report(report: dict) -> None:
    engine_events.handle(report, actor=Actor.engine(settings.NODE_HASH))


def _schedule(room_id, operation_id, urls, index, kind, countdown) -> bool:
    return enqueue_rollback_unsafe(
        "conferences.tasks.sim_playback_step", room_id, operation_id, urls, index, kind, countdown=countdown
    )


def _start_file(room_id, operation_id, urls, index) -> None:
    seconds, behaviour = file_behaviour(urls[index])
    if behaviour == "hang":
        return
    if not _schedule(room_id, operation_id, urls, index, "end", seconds):
        raise EngineUnavailable("the simulator cannot schedule the file's end (broker unavailable)")
    for at in range(1, int(seconds // PROGRESS_EVERY_SECONDS) + 1):
        _schedule(room_id, operation_id, urls, index, "progress", at * PROGRESS_EVERY_SECONDS)


def playback_step(*, room_id: str, operation_id: str, urls: list[str], index: int, kind: str) -> None:
    room = Room.objects.filter(room_id=room_id).values("playback_status", "playback_operation_id").first()
    if room is None or str(room["playback_operation_id"]) != operation_id:
        return  # stopped, ended or replaced
    if room["playback_status"] == "paused":
        if kind == "end":
            _schedule(room_id, operation_id, urls, index, kind, PAUSED_RECHECK_SECONDS)
        return
    url = urls[index]
    if kind == "progress":
        _report({"type": "playback.progress", "room_id": room_id, "operation_id": operation_id})
    elif file_behaviour(url)[1] == "error":
        _report(
            {
                "type": "playback.error",
                "room_id": room_id,
                "operation_id": operation_id,
                "url": url,
                "message": "simulated play-file failure",
            }
        )
    elif index + 1 < len(urls):
        _report({"type": "playback.progress", "room_id": room_id, "operation_id": operation_id})
        _start_file(room_id, operation_id, urls, index + 1)
    else:
        _report({"type": "playback.finished", "room_id": room_id, "operation_id": operation_id, "url": url})


class SimEngine(Engine):
    def join(self, *, session_uuid, room_id, muted, operation_id):
        report = {"type": "member.joined", "session_uuid": session_uuid, "room_id": room_id}
        if not enqueue_rollback_unsafe(
            "conferences.tasks.sim_report", report, countdown=settings.SIM_JOIN_DELAY_MS / 1000
        ):
            raise EngineUnavailable("the simulator cannot schedule the join (broker unavailable)")

    def play(self, *, room_id, operation_id, urls, volume):
        _start_file(room_id, operation_id, urls, 0)

    def live_state(self) -> EngineState:
        node = settings.NODE_HASH
        sessions = dict.fromkeys(
            CallSession.objects.filter(node=node, state="active").values_list("session_uuid", flat=True)
        )
        sessions.update(
            Member.objects.filter(
                session__node=node, session__state="active", state__in=ACTIVE_MEMBER_STATES
            ).values_list("session__session_uuid", "room__room_id")
        )
        return EngineState(node=node, sessions=sessions)
