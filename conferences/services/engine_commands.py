"""Commands to the media engine, sent after the transaction commits, so the API never waits
on the engine (`engine_delivery` runs them in a worker, with the failure path)."""

from django.db import transaction

from ..actors import Actor
from ..engine.base import COMMANDS
from ..publish import enqueue_rollback_unsafe
from . import audit

ENGINE_ACTOR = Actor.system("engine-commands")


def send_on_commit(command: str, **arguments) -> None:
    assert command in COMMANDS, command
    transaction.on_commit(lambda: _enqueue(command, arguments), robust=True)


def _enqueue(command: str, arguments: dict) -> None:
    if not enqueue_rollback_unsafe("conferences.tasks.engine_command", command, arguments):
        # Broker down: a join then times out; the history shows what was lost.
        audit.record(actor=ENGINE_ACTOR, action=f"engine.{command}", outcome="broker_unavailable",
                     room_id=arguments.get("room_id", ""), session_uuid=arguments.get("session_uuid", ""),
                     operation_id=arguments.get("operation_id", ""))
