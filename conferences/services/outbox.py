"""Waking an outbox's dispatcher: coalesced across processes, and within a worker process.

A commit that adds work asks for a wake-up. The request is a flag in the database
(`OutboxWake`): only the commit that raises it publishes a task; the worker that takes the task
lowers the flag *before* it claims, so whatever committed before that is claimed, and whatever
commits after raises the flag again. A burst of commits is therefore a handful of tasks, not
one per room. Within a worker process one thread dispatches at a time; a wake-up arriving
meanwhile only tells it to look again (`Dispatcher.wake`).
"""

import concurrent.futures
import threading
from collections.abc import Callable

from django.db import connection, transaction

from ..models import OutboxWake
from ..publish import enqueue_rollback_unsafe

# The task that runs each outbox's dispatcher.
DISPATCH_TASKS = {"webhooks": "conferences.tasks.dispatch_webhooks"}
# A raised flag older than this is taken as a lost message; the next commit publishes again.
LOST_WAKE_SECONDS = 5

_TABLE = OutboxWake._meta.db_table
RAISE_SQL = f"""
WITH raised AS (
    UPDATE {_TABLE} SET requested_at = statement_timestamp()
    WHERE kind = %(kind)s
      AND (requested_at IS NULL OR requested_at < statement_timestamp() - %(lost)s * interval '1 second')
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM raised), EXISTS (SELECT 1 FROM {_TABLE} WHERE kind = %(kind)s)
"""
CREATE_RAISED_SQL = f"""
INSERT INTO {_TABLE} (kind, requested_at) VALUES (%(kind)s, statement_timestamp())
ON CONFLICT (kind) DO NOTHING RETURNING 1
"""
LOWER_SQL = f"UPDATE {_TABLE} SET requested_at = NULL WHERE kind = %(kind)s AND requested_at IS NOT NULL"


def wake_on_commit(kind: str) -> None:
    # Robust: the state change has committed; a failed wake-up is the re-drive's to catch up.
    transaction.on_commit(lambda: wake(kind), robust=True)


def wake(kind: str, *, countdown: float | None = None, force: bool = False) -> None:
    """Publish a wake-up unless one is already waiting. `force` publishes anyway (the periodic
    re-drive, a retry due soon) and leaves the flag alone."""
    if not force and not _raise_flag(kind):
        return
    if not enqueue_rollback_unsafe(DISPATCH_TASKS[kind], countdown=countdown) and not force:
        lower_flag(kind)  # nothing was published: the next commit must try again


def _raise_flag(kind: str) -> bool:
    parameters = {"kind": kind, "lost": LOST_WAKE_SECONDS}
    with connection.cursor() as cursor:
        cursor.execute(RAISE_SQL, parameters)
        raised, exists = cursor.fetchone()
        if exists:
            return raised
        cursor.execute(CREATE_RAISED_SQL, parameters)
        return cursor.fetchone() is not None


def lower_flag(kind: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(LOWER_SQL, {"kind": kind})


class Dispatcher:
    """One dispatch pass at a time per process. A wake-up during a pass nudges it to claim again
    at once (it may be waiting on slow receivers); one after it starts another pass."""

    def __init__(self, kind: str, dispatch: Callable[["Dispatcher"], int]):
        self.kind = kind
        self._dispatch = dispatch
        self._running = threading.Lock()
        self._woken = threading.Event()
        self._nudges_lock = threading.Lock()
        self._nudge = concurrent.futures.Future()

    def wake(self) -> int:
        """Dispatch until nothing new was asked for; returns how many items were sent, 0 when
        another thread of this process is dispatching (it is nudged and claims again)."""
        with self._nudges_lock:
            self._woken.set()
            if not self._nudge.done():
                self._nudge.set_result(None)
        sent = 0
        while self._woken.is_set():
            if not self._running.acquire(blocking=False):
                return sent
            try:
                while self.take_wake():
                    sent += self._dispatch(self)
            finally:
                self._running.release()
        return sent

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
