"""Sending the engine outbox: claim the heads of rooms' queues, hand each to the engine on a
thread of a small pool, record the outcomes, claim again, until nothing is due.

The claim, the lease, the wake-ups and the re-drive are the webhook outbox's (`outbox`): a
room's commands go one at a time in the order they were written, whatever the number of
workers, and a join also waits for every earlier command of its session (a kick from the room
it leaves). A worker that dies mid-command only delays it until its lease runs out (the engine
sees the same `command_id` again and can drop the repeat). A command the engine could not take
is retried with backoff (ENGINE_RETRY_SCHEDULE) and holds its room's queue meanwhile; a join or
a play is not sent past its own deadline. One that finally fails takes its failure path in the
transaction that records it: a join fails with `engine_unavailable`, a play with
`playback_error`, anything else is recorded in the history; when the engine may have carried it
out (no answer, 5xx), the engine is told to undo it (a kick, a stop).
"""

import concurrent.futures
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import transaction

from ..engine.base import EngineRejected, get_engine
from ..models import EngineCommand
from ..models.engine import EngineCommandStatus
from . import audit, members, outbox, playback
from .engine_commands import ENGINE_ACTOR, KIND
from .sql import execute_prepared

logger = logging.getLogger(__name__)

GIVE_UP_MARGIN = 0.5  # seconds
PASS_SECONDS = 30  # then the pass ends and publishes a wake-up, so a backlog is shared anew
PRECISE_WAKE_LIMIT = 60  # retries due sooner get a timed wake-up; later ones the re-drive

_TABLE = EngineCommand._meta.db_table
_PENDING = f"'{EngineCommandStatus.PENDING.value}'"
_FAILED = f"'{EngineCommandStatus.FAILED.value}'"
_CLAIMABLE = (
    outbox.head_claimable(table=_TABLE, queue=("room_id",), pending=_PENDING)
    + f"""
AND NOT (d.command = 'join' AND EXISTS (
    SELECT 1 FROM {_TABLE} AS earlier
    WHERE earlier.arguments ->> 'session_uuid' = d.arguments ->> 'session_uuid'
      AND earlier.status = {_PENDING} AND earlier.id < d.id))"""
)
# Each room with pending commands (a skip scan), its head, then the claim rule on the heads.
_HEADS = f"""
{outbox.pending_keys(name="pending_room", table=_TABLE, column="room_id", pending=_PENDING)},
head AS (
    SELECT first.id FROM pending_room AS p
    CROSS JOIN LATERAL (
        SELECT h.id FROM {_TABLE} AS h WHERE h.room_id = p.room_id AND h.status = {_PENDING} ORDER BY h.id LIMIT 1
    ) AS first
)"""

CLAIM_SQL = f"""
WITH RECURSIVE {_HEADS}, chosen AS (
    SELECT d.id FROM head JOIN {_TABLE} AS d ON d.id = head.id
    WHERE {_CLAIMABLE}
    ORDER BY d.next_attempt_at, d.id
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE {_TABLE} AS d
SET attempts = d.attempts + 1, lease_expires_at = statement_timestamp() + %(lease)s * interval '1 second'
FROM chosen WHERE d.id = chosen.id
RETURNING d.id, d.command, d.arguments, d.attempts, d.give_up_at <= statement_timestamp()
"""

# A finish matches its own attempt, so a late one for a command taken over changes nothing. A
# retry that would come within GIVE_UP_MARGIN of the command's give-up time fails it instead
# (database time): a join's or a play's own failure then comes before its timeout does, even
# when the retry's wake-up would be late.
FINISH_SQL = f"""
WITH outcome AS (
    SELECT * FROM unnest(%(id)s::bigint[], %(attempts)s::int[], %(status)s::text[], %(retry_in)s::float8[],
                         %(error)s::text[]) AS o(id, attempts, status, retry_in, error)
), decided AS (
    SELECT o.id, o.attempts, o.error,
           CASE WHEN o.status = {_PENDING} AND d.give_up_at IS NOT NULL
                     AND statement_timestamp() + (o.retry_in + %(margin)s) * interval '1 second' >= d.give_up_at
                THEN {_FAILED} ELSE o.status END AS status,
           statement_timestamp() + COALESCE(o.retry_in, 0) * interval '1 second' AS next_attempt_at
    FROM outcome AS o JOIN {_TABLE} AS d ON d.id = o.id
)
UPDATE {_TABLE} AS d
SET status = o.status,
    next_attempt_at = CASE WHEN o.status = {_PENDING} THEN o.next_attempt_at ELSE d.next_attempt_at END,
    lease_expires_at = NULL,
    completed_at = CASE WHEN o.status = {_PENDING} THEN NULL ELSE statement_timestamp() END,
    last_error = o.error
FROM decided AS o
WHERE d.id = o.id AND d.status = {_PENDING} AND d.attempts = o.attempts
RETURNING d.id, d.status
"""

DUE_SQL = (
    f"WITH RECURSIVE {_HEADS} "
    f"SELECT EXISTS (SELECT 1 FROM head JOIN {_TABLE} AS d ON d.id = head.id WHERE {_CLAIMABLE})"
)


@dataclass(frozen=True)
class Claim:
    command_id: int
    command: str
    arguments: dict
    attempts: int
    overdue: bool = False  # past its give-up time: not to be sent any more


@dataclass(frozen=True)
class Result:
    error: str | None = None  # None: the engine took it
    final: bool = False  # no retry: the engine refused it, or it was not sent at all
    sent: bool = True  # False: the engine never saw it, so there is nothing to undo


def lease_seconds() -> float:
    """Longer than a command's absolute deadline, so a live one is never taken over."""
    return 2 * settings.ENGINE_TIMEOUT_SECONDS + 10


def claim(*, limit: int) -> list[Claim]:
    rows = execute_prepared(CLAIM_SQL, {"limit": limit, "lease": lease_seconds()})
    return sorted(
        (
            Claim(
                command_id,
                command,
                arguments if isinstance(arguments, dict) else json.loads(arguments),
                attempts,
                bool(overdue),
            )
            for command_id, command, arguments, attempts, overdue in rows
        ),
        key=lambda c: c.command_id,
    )


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next try after `attempts` failed ones (±20% jitter); None: give up."""
    schedule = settings.ENGINE_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    return schedule[attempts - 1] * random.uniform(0.8, 1.2)


def execute(claim: Claim) -> Result:
    if claim.overdue:
        return Result("not sent: past its deadline", final=True, sent=False)
    if claim.attempts > len(settings.ENGINE_RETRY_SCHEDULE) + 1:
        # Tries lost with dead workers used up the schedule: give up rather than loop.
        return Result("not sent: no tries left", final=True, sent=False)
    try:
        get_engine().execute(claim.command, claim.arguments, command_id=claim.command_id)
    except EngineRejected as exc:
        return Result((str(exc) or type(exc).__name__)[:500], final=True)
    except Exception as exc:  # any failure to hand the command over is the engine's unavailability
        return Result(f"{type(exc).__name__}: {exc}"[:500])
    return Result()


def finish(results: list[tuple[Claim, Result]]) -> int:
    """Record outcomes; the commands that finally fail take their failure path in the same
    transaction. Returns how many finally failed."""
    retry_in = [
        None if result.error is None or result.final else retry_delay(claim.attempts) for claim, result in results
    ]
    statuses = [
        EngineCommandStatus.SENT
        if result.error is None
        else EngineCommandStatus.PENDING
        if delay is not None
        else EngineCommandStatus.FAILED
        for (_, result), delay in zip(results, retry_in, strict=True)
    ]
    # The common case (all taken) is one statement; failures share a transaction with their paths.
    failing = any(result.error is not None for _, result in results)
    with transaction.atomic() if failing else contextlib.nullcontext():
        rows = execute_prepared(
            FINISH_SQL,
            {
                "id": [claim.command_id for claim, _ in results],
                "attempts": [claim.attempts for claim, _ in results],
                "status": [str(status) for status in statuses],
                "retry_in": retry_in,
                "error": [result.error or "" for _, result in results],
                "margin": GIVE_UP_MARGIN,
            },
        )
        failed = {command_id for command_id, status in rows if status == EngineCommandStatus.FAILED}
        for claim, result in results:
            if claim.command_id in failed:
                _fail(claim, result)
    outbox.wake_later(
        KIND,
        [d for d, s in zip(retry_in, statuses, strict=True) if s == EngineCommandStatus.PENDING],
        limit=PRECISE_WAKE_LIMIT,
    )
    return len(failed)


def _fail(claim: Claim, result: Result) -> None:
    arguments = claim.arguments
    audit.record(
        actor=ENGINE_ACTOR,
        action=f"engine.{claim.command}",
        outcome="engine_unavailable",
        room_id=arguments.get("room_id", ""),
        session_uuid=arguments.get("session_uuid", ""),
        operation_id=arguments.get("operation_id", ""),
        detail={"error": result.error, "attempts": claim.attempts, "command_id": claim.command_id},
    )
    # Refused or never sent: the engine did nothing to undo. Otherwise it may have.
    undo = result.sent and not result.final
    if claim.command == "join":
        members.fail_pending_join(
            operation_id=arguments["operation_id"], error="engine_unavailable", actor=ENGINE_ACTOR, tell_engine=undo
        )
    elif claim.command == "play":
        playback.fail_dispatch(operation_id=arguments["operation_id"], actor=ENGINE_ACTOR, tell_engine=undo)


@cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(settings.ENGINE_MAX_IN_FLIGHT, thread_name_prefix="engine-command")


def dispatch(dispatcher: outbox.Dispatcher | None = None, *, pass_seconds: float = PASS_SECONDS) -> int:
    """Send everything due until nothing is; returns the number of tries made."""
    in_flight: dict[concurrent.futures.Future, Claim] = {}
    ends_at = time.monotonic() + pass_seconds
    tries, claiming = 0, True
    try:
        while True:
            if claiming and ((dispatcher is not None and dispatcher.stopping.is_set()) or time.monotonic() > ends_at):
                claiming = False
                outbox.wake(KIND, force=True)  # this or another process goes on where this pass stops
            room = settings.ENGINE_MAX_IN_FLIGHT - len(in_flight)
            if claiming and room > 0:
                if dispatcher is not None:
                    dispatcher.take_wake()
                in_flight.update((_pool().submit(execute, c), c) for c in claim(limit=room))
            if not in_flight:
                return tries
            waiting_on = list(in_flight)
            if dispatcher is not None and claiming and len(in_flight) < settings.ENGINE_MAX_IN_FLIGHT:
                waiting_on.append(dispatcher.next_nudge())
            done, _ = concurrent.futures.wait(waiting_on, timeout=1, return_when=concurrent.futures.FIRST_COMPLETED)
            results = [(in_flight.pop(future), future.result()) for future in done if future in in_flight]
            if results:
                finish(results)
                tries += len(results)
    finally:
        if in_flight:  # a database error: record what we can; the leases cover the rest
            concurrent.futures.wait(in_flight)
            try:
                finish([(c, future.result()) for future, c in in_flight.items()])
            except Exception:
                logger.exception("engine commands in flight could not be recorded; their leases will run out")


def redrive() -> bool:
    return outbox.redrive(KIND, DUE_SQL)


dispatcher = outbox.Dispatcher(KIND, dispatch)
