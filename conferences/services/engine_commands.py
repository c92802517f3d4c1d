"""Commands to the media engine: sent after the transaction commits, so the API never waits
on the engine; run by a Celery task with a defined failure path."""

import time

from django.db import transaction

from ..actors import Actor
from ..engine.base import COMMANDS, EngineUnavailable, get_engine
from ..publish import enqueue_rollback_unsafe
from . import audit


RETRY_PAUSES = (0.2, 0.5, 1.0)  # "retried briefly"; joins and plays fail at once instead
ENGINE_ACTOR = Actor.system("engine-commands")


def send_on_commit(command: str, **arguments) -> None:
    assert command in COMMANDS, command
    transaction.on_commit(lambda: _enqueue(command, arguments))


def _enqueue(command: str, arguments: dict) -> None:
    if not enqueue_rollback_unsafe("conferences.tasks.engine_command", command, arguments):
        # Broker down: a join then times out; the history shows what was lost.
        audit.record(actor=ENGINE_ACTOR, action=f"engine.{command}", outcome="broker_unavailable",
                     room_id=arguments.get("room_id", ""), session_uuid=arguments.get("session_uuid", ""),
                     operation_id=arguments.get("operation_id", ""))


def run(command: str, arguments: dict) -> None:
    """Send one command to the engine; on failure, fail what depends on it."""
    engine = get_engine()
    pauses = () if command in ("join", "play") else RETRY_PAUSES
    for pause in (*pauses, None):
        try:
            getattr(engine, command)(**arguments)
            return
        except Exception as exc:  # any failure to hand the command over counts as unavailable
            error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, EngineUnavailable) else str(exc)
            if pause is None:
                break
            time.sleep(pause)
    audit.record(
        actor=ENGINE_ACTOR,
        action=f"engine.{command}",
        outcome="engine_unavailable",
        room_id=arguments.get("room_id", ""),
        session_uuid=arguments.get("session_uuid", ""),
        operation_id=arguments.get("operation_id", ""),
        detail={"error": error},
    )
    if command == "join":
        from .members import fail_pending_join

        fail_pending_join(operation_id=arguments["operation_id"], error="engine_unavailable", actor=ENGINE_ACTOR)
    elif command == "play":
        from .playback import fail_dispatch

        fail_dispatch(operation_id=arguments["operation_id"], actor=ENGINE_ACTOR)
