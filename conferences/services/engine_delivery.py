"""Running an engine command in a worker: retried briefly, and on failure the state that
depends on it fails (a join with `engine_unavailable`, a play with `playback_error`)."""

import time

from ..engine.base import EngineUnavailable, get_engine
from . import audit, members, playback
from .engine_commands import ENGINE_ACTOR

RETRY_PAUSES = (0.2, 0.5, 1.0)  # "retried briefly"; joins and plays fail at once instead


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
        members.fail_pending_join(operation_id=arguments["operation_id"], error="engine_unavailable", actor=ENGINE_ACTOR)
    elif command == "play":
        playback.fail_dispatch(operation_id=arguments["operation_id"], actor=ENGINE_ACTOR)
