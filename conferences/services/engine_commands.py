"""Commands to the media engine: rows of the engine outbox, written in the transaction of the
state change that needs them and sent after it commits (`engine_dispatch`), so the API never
waits on the engine and a command is never lost with a broker or a worker."""

from datetime import datetime

from django.db import transaction

from ..actors import Actor
from ..models import EngineCommand, Room
from ..models.engine import EngineCommandName
from . import outbox

KIND = "engine"
ENGINE_ACTOR = Actor.system("engine-commands")


def enqueue(command: str, *, room: Room, give_up_at: datetime | None = None, **arguments) -> None:
    """Queue `command` behind every earlier command of `room`. The caller holds the room's row
    lock, so a room's commands are numbered in the order their transactions commit."""
    EngineCommand.objects.create(
        room=room, command=EngineCommandName(command), arguments=arguments, give_up_at=give_up_at
    )
    outbox.wake_on_commit(KIND)


def enqueue_published(command: str, arguments: dict) -> None:
    """A command that arrived as a task (the release before this outbox), queued behind its
    room's commands; dropped when its room is unknown."""
    with transaction.atomic():
        room = Room.objects.select_for_update(of=("self",)).filter(room_id=arguments.get("room_id")).first()
        if room is not None:
            enqueue(command, room=room, **arguments)
