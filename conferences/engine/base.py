"""The media-engine boundary, outbound side: what the service asks of an engine.

Inbound, every adapter's reports go through conferences.services.engine_events.handle, the
same handler as the HTTP ingress, so state rules live in one place.
"""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

ADAPTERS = {
    "sim": "conferences.engine.sim.SimEngine",
    "http": "conferences.engine.http.HttpEngine",
}


class EngineUnavailable(Exception):
    """The engine rejected a command or could not be reached."""


class Engine:
    def join(self, *, session_uuid: str, room_id: str, muted: bool, operation_id: str) -> None: ...
    def kick(self, *, session_uuid: str, room_id: str) -> None: ...
    def mute(self, *, session_uuid: str, room_id: str) -> None: ...
    def unmute(self, *, session_uuid: str, room_id: str) -> None: ...
    def play(self, *, room_id: str, operation_id: str, urls: list[str], volume: int) -> None: ...
    def pause(self, *, room_id: str, operation_id: str) -> None: ...
    def resume(self, *, room_id: str, operation_id: str) -> None: ...
    def stop(self, *, room_id: str, operation_id: str) -> None: ...
    def set_volume(self, *, room_id: str, volume: int) -> None: ...
    def destroy_room(self, *, room_id: str) -> None: ...

    def live_sessions(self) -> tuple[str, set[str]] | None:
        """(node, session_uuids the engine holds on it), or None when it cannot tell."""
        return None


COMMANDS = frozenset(
    {"join", "kick", "mute", "unmute", "play", "pause", "resume", "stop", "set_volume", "destroy_room"}
)


@cache
def _engine(name: str) -> Engine:
    if name not in ADAPTERS:
        raise ValueError(f"Unknown ENGINE {name!r}; choose one of {', '.join(ADAPTERS)}")
    return import_string(ADAPTERS[name])()


def get_engine() -> Engine:
    return _engine(settings.ENGINE)
