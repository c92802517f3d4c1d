"""What every outbox shares (webhook deliveries, engine commands): the claim rule, wake-ups
coalesced across processes, a dispatching thread per worker process, timed and periodic
re-drives.

An outbox row is sent when it is due, not held by a live lease, and the head of its queue
(`head_claimable`); a claim sets a lease, so a worker that dies mid-send only delays it.

A commit that adds work asks for a wake-up. The request is a flag in the database
(`OutboxWake`): only the commit that raises it publishes a task; the worker that takes the task
lowers the flag *before* it claims, so whatever committed before that is claimed, and whatever
commits after raises the flag again. A burst of commits is therefore a handful of tasks, not
one per room. Within a worker process one thread dispatches (`Dispatcher`); a wake-up only
tells it to look again.
"""

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection, transaction

from ..models import OutboxWake
from ..publish import enqueue_rollback_unsafe

logger = logging.getLogger(__name__)

# The task that runs each outbox's dispatcher.
DISPATCH_TASKS = {
    "webhooks": "conferences.tasks.dispatch_webhooks",
    "engine": "conferences.tasks.dispatch_engine_commands",
}
# A raised flag older than this is taken as a lost message; the next commit publishes again.
LOST_WAKE_SECONDS = 5

_TABLE = OutboxWake._meta.db_table
# Each outbox's flag raised unless a wake-up is already waiting; per kind: (raised, flag row exists).
RAISE_SQL = f"""
WITH raised AS (
    UPDATE {_TABLE} SET requested_at = statement_timestamp()
    WHERE kind = ANY (%(kinds)s)
      AND (requested_at IS NULL OR requested_at < statement_timestamp() - %(lost)s * interval '1 second')
    RETURNING kind
)
SELECT wanted.kind,
       EXISTS (SELECT 1 FROM raised WHERE raised.kind = wanted.kind),
       EXISTS (SELECT 1 FROM {_TABLE} AS flag WHERE flag.kind = wanted.kind)
FROM unnest(%(kinds)s::text[]) AS wanted(kind)
"""
CREATE_RAISED_SQL = f"""
INSERT INTO {_TABLE} (kind, requested_at) VALUES (%(kind)s, statement_timestamp())
ON CONFLICT (kind) DO NOTHING RETURNING 1
"""
LOWER_SQL = f"UPDATE {_TABLE} SET requested_at = NULL WHERE kind = %(kind)s AND requested_at IS NOT NULL"


def pending_keys(*, name: str, table: str, column: str, pending: str) -> str:
    """A recursive CTE `name(column)` listing the distinct `column` values of pending rows, one
    index step each (a skip scan): a claim then costs what is queued per key, not the depth of
    the backlog."""
    return f"""
{name} AS (
    (SELECT {column} FROM {table} WHERE status = {pending} ORDER BY {column} LIMIT 1)
    UNION ALL
    SELECT (SELECT d.{column} FROM {table} AS d
            WHERE d.status = {pending} AND d.{column} > p.{column} ORDER BY d.{column} LIMIT 1)
    FROM {name} AS p WHERE p.{column} IS NOT NULL
)"""


def head_claimable(*, table: str, queue: tuple[str, ...], pending: str, ended: str = "", position: str = "id") -> str:
    """The claim rule, for rows aliased `d`: pending, due, not held by a live lease, and the head
    of its queue (the lowest pending `position` among rows with the same `queue` columns).
    `ended` is SQL that leaves out the heads the same statement ends, which no longer hold their
    queue."""
    same_queue = " AND ".join(f"head.{column} = d.{column}" for column in queue)
    return f"""
d.status = {pending} AND d.next_attempt_at <= statement_timestamp()
AND (d.lease_expires_at IS NULL OR d.lease_expires_at < statement_timestamp())
AND d.id = (
    -- written as the first of the queue, so every plan takes it from the queue index in one step
    SELECT head.id FROM {table} AS head
    WHERE {same_queue} AND head.status = {pending}
      {ended}
    ORDER BY head.{position} LIMIT 1)"""


def wake_on_commit(kind: str) -> None:
    """One wake-up after the current transaction commits, however many rows it adds; the flags of
    every outbox it adds to are raised in one statement."""
    for _, callback, _ in connection.run_on_commit:
        if (kinds := getattr(callback, "outbox_kinds", None)) is not None:
            kinds.add(kind)
            return
    kinds = {kind}

    def wake_up():
        for raised in _raise_flags(sorted(kinds)):
            _publish_raised(raised)

    wake_up.outbox_kinds = kinds
    # Robust: the state change has committed; a failed wake-up is the re-drive's to catch up.
    transaction.on_commit(wake_up, robust=True)


def wake(kind: str, *, countdown: float | None = None, force: bool = False) -> None:
    """Publish a wake-up unless one is already waiting. `force` publishes anyway (the periodic
    re-drive, a retry due soon) and leaves the flag alone."""
    if force:
        enqueue_rollback_unsafe(DISPATCH_TASKS[kind], countdown=countdown)
    elif _raise_flags([kind]):
        _publish_raised(kind, countdown=countdown)


def _publish_raised(kind: str, *, countdown: float | None = None) -> None:
    """The wake-up of the flag this process raised; if nothing was published, the flag goes
    down again so that the next commit tries again."""
    if not enqueue_rollback_unsafe(DISPATCH_TASKS[kind], countdown=countdown):
        lower_flag(kind)


_timed_wakes: dict[str, set[int]] = {}


def wake_later(kind: str, delays: list[float], *, limit: float) -> None:
    """Timed wake-ups for retries due in `delays` seconds: one per tenth of a second, and none
    for delays beyond `limit` (the periodic re-drive catches those)."""
    now = time.time()
    planned = _timed_wakes.setdefault(kind, set())
    planned.difference_update({at for at in planned if at < now * 10})
    for delay in delays:
        if delay > limit:
            continue
        bucket = int((now + delay) * 10) + 1
        if bucket not in planned:
            planned.add(bucket)
            wake(kind, countdown=bucket / 10 - now, force=True)


def redrive(kind: str, due_sql: str) -> bool:
    """Wake a dispatcher when `due_sql` finds something due that nobody holds (a lost wake-up,
    a worker that died mid-send, a broker that was down); True when it did."""
    with connection.cursor() as cursor:
        cursor.execute(due_sql)
        due = cursor.fetchone()[0]
    if due:
        wake(kind, force=True)
    return due


def _raise_flags(kinds: list[str]) -> list[str]:
    """The kinds whose flag this call raised (their wake-up is to be published)."""
    raised = []
    with connection.cursor() as cursor:
        cursor.execute(RAISE_SQL, {"kinds": kinds, "lost": LOST_WAKE_SECONDS})
        for kind, raised_now, exists in cursor.fetchall():
            if not exists:  # the first wake-up of this outbox
                cursor.execute(CREATE_RAISED_SQL, {"kind": kind})
                raised_now = cursor.fetchone() is not None
            if raised_now:
                raised.append(kind)
    return raised


def lower_flag(kind: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(LOWER_SQL, {"kind": kind})


class Dispatcher:
    """A thread per process that dispatches one pass at a time, started by a wake-up and ended
    when no wake-up is left. Celery only carries the wake-ups: the task returns at once, so no
    pool slot (thread or prefork child) is held while requests are in flight, and sweeps never
    wait behind sending. A wake-up during a pass nudges it to claim again at once (it may be
    waiting on slow receivers); one after it starts another pass."""

    def __init__(self, kind: str, dispatch: Callable[["Dispatcher"], int]):
        self.kind = kind
        self._dispatch = dispatch
        self._woken = threading.Event()
        self._nudges_lock = threading.Lock()
        self._nudge = concurrent.futures.Future()
        self._thread_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Set when the worker shuts down: stop claiming, finish what is in flight.
        self.stopping = threading.Event()

    def wake(self) -> None:
        """Ask this process's dispatching thread to look again, starting it when none runs."""
        with self._nudges_lock:
            self._woken.set()
            if not self._nudge.done():
                self._nudge.set_result(None)
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"{self.kind}-dispatcher", daemon=True)
                self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop claiming and wait (bounded) for the running pass to finish what is in flight."""
        self.stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            close_old_connections()
            try:
                while self.take_wake():
                    self._dispatch(self)
            except Exception:
                logger.exception("%s dispatcher failed; the next wake-up or the re-drive goes on", self.kind)
                time.sleep(1)  # a database that is down is not hammered
            with self._thread_lock:
                if not self._woken.is_set():  # checked under the lock `wake` starts threads with
                    self._thread = None
                    connection.close()
                    return

    def take_wake(self) -> bool:
        """Whether a wake-up came since the last look; if so the flag is lowered, so that what
        commits after the claim that follows publishes a wake-up again."""
        if not self._woken.is_set():
            return False
        self._woken.clear()
        lower_flag(self.kind)
        return True

    def next_nudge(self) -> concurrent.futures.Future:
        """A future that completes at the next wake-up (to wait on beside the work in flight)."""
        with self._nudges_lock:
            if self._nudge.done():
                self._nudge = concurrent.futures.Future()
                if self._woken.is_set():  # a wake-up the last future already stood for: not lost
                    self._nudge.set_result(None)
            return self._nudge
