"""Commands to the media engine: rows of the engine outbox, written in the transaction of the
state change that needs them and sent after it commits (`engine_dispatch`), so the API never
waits on the engine and a command is never lost with a broker or a worker."""

from datetime import datetime

from ..actors import Actor
from ..models import EngineCommand, Room
from ..models.engine import EngineCommandName
from . import outbox

KIND = "engine"
ENGINE_ACTOR = Actor.system("engine-commands")


def enqueue(command: str, *, room: Room, give_up_at: datetime | None = None, **arguments) -> None:
    """Queue `command` behind every earlier command of `room`; the caller's transaction (a
    row lock on the room, or on a session in it) decides the order."""
    EngineCommand.objects.create(
        room=room, command=EngineCommandName(command), arguments=arguments, give_up_at=give_up_at
    )
    outbox.wake_on_commit(KIND)
