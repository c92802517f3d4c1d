"""The media-engine boundary, outbound side: what the service asks of an engine.

Commands reach an adapter through the engine outbox (services.engine_dispatch), in order per
room and one at a time per room. Inbound, every adapter's reports go through
conferences.services.engine_events.handle, the same handler as the HTTP ingress, so state
rules live in one place.
"""

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

ADAPTERS = {
    "sim": "conferences.engine.sim.SimEngine",
    "http": "conferences.engine.http.HttpEngine",
}


class EngineUnavailable(Exception):
    """The engine could not take a command now (no answer, an error on its side): retried."""


class EngineRejected(EngineUnavailable):
    """The engine refused the command itself: trying again would not help."""


@dataclass(frozen=True)
class EngineState:
    """What an engine holds, as it answers a reconciliation."""

    node: str
    # session_uuid → the room it is in, None when in none or when the engine does not say.
    sessions: dict[str, str | None]
    # The rooms it holds, None when it does not say.
    rooms: frozenset[str] | None = None


class Engine:
    def execute(self, command: str, arguments: dict, *, command_id: int) -> None:
        """Hand one command over; raises EngineUnavailable (or EngineRejected). `command_id`
        is the same on every try of one command, so an engine can drop repeats."""
        getattr(self, command)(**arguments)

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

    def live_state(self) -> EngineState | None:
        """The sessions (with their rooms) and rooms the engine holds, or None when it cannot
        tell; reconciliation repairs the drift from the database."""
        return None


@cache
def _engine(name: str) -> Engine:
    if name not in ADAPTERS:
        raise ValueError(f"Unknown ENGINE {name!r}; choose one of {', '.join(ADAPTERS)}")
    return import_string(ADAPTERS[name])()


def get_engine() -> Engine:
    return _engine(settings.ENGINE)
