"""Domain metrics for `/metrics`, read from PostgreSQL when scraped.

Web and worker processes run on many hosts, so a counter kept in one process's memory would
show only what that process did. Every figure here is derived from the database instead: any
web process answers the same numbers (do not sum them across instances; take one, or `max`).

The figures are read in a few statements, each along indexes and each under a short statement
timeout, so a slow part (a backlog of millions during an outage) drops only its own figures
and says so in `conference_metrics_read_success`. A reading is kept a few seconds, so that
concurrent scrapes share it. Times are the database's clock, except where a row was stamped
by an application host (engine commands' due times, playback deadlines).
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric

from .models import (
    CallSession,
    Delivery,
    DeliveryAttempt,
    EngineCommand,
    Event,
    Member,
    PlaybackOperation,
    Room,
    WebhookEndpoint,
)
from .models.engine import EngineCommandStatus
from .models.playback import ACTIVE_PLAYBACK_STATES, PlaybackState
from .models.sessions import ACTIVE_MEMBER_STATES, MemberState, SessionState
from .models.webhooks import DeliveryStatus
from .services import outbox
from .services.delivery_dispatch import lease_seconds

logger = logging.getLogger(__name__)

# Completions and latency: deliveries finished in the last minute. Reading them costs what the
# window holds (about 2.5 µs per attempt on the admin bench's data), so the window stays short.
WINDOW_SECONDS = 60
LATENCY_QUANTILES = (0.5, 0.9, 0.99)
CACHE_SECONDS = 5.0
STATEMENT_TIMEOUT_MS = 1000  # per part; a scrape waits four of them at most

_DELIVERY = Delivery._meta.db_table
_ATTEMPT = DeliveryAttempt._meta.db_table
_ENDPOINT = WebhookEndpoint._meta.db_table
_COMMAND = EngineCommand._meta.db_table
_EVENT = Event._meta.db_table
_PLAYBACK = PlaybackOperation._meta.db_table
_ROOM = Room._meta.db_table
_MEMBER = Member._meta.db_table
_SESSION = CallSession._meta.db_table


def _literal(value: str) -> str:
    """A state as a literal, so that the planner matches the partial indexes it names."""
    return f"'{value}'"


def _in(values) -> str:
    return "(" + ", ".join(_literal(value) for value in values) + ")"


_PENDING = _literal(DeliveryStatus.PENDING)
_DELIVERED = _literal(DeliveryStatus.DELIVERED)
_FAILED = _literal(DeliveryStatus.FAILED)
_COMMAND_PENDING = _literal(EngineCommandStatus.PENDING)
_NOW = "statement_timestamp()"
# Due and not being sent now: no lease, or the lease of a worker that died.
_WAITING = f"d.next_attempt_at <= {_NOW} AND (d.lease_expires_at IS NULL OR d.lease_expires_at < {_NOW})"


def _seconds_since(column: str) -> str:
    return f"extract(epoch FROM {_NOW} - {column})"


ACTIVITY_SQL = f"""
WITH overdue AS (
    SELECT count(*) AS plays, min(deadline_at) AS deadline_at FROM {_PLAYBACK}
    WHERE state = {_literal(PlaybackState.PLAYING)} AND deadline_at <= {_NOW}
)
SELECT
    coalesce(pg_sequence_last_value(pg_get_serial_sequence('{_EVENT}', 'id')), 0) AS events_written,
    coalesce(pg_sequence_last_value(pg_get_serial_sequence('{_DELIVERY}', 'id')), 0) AS deliveries_written,
    (SELECT coalesce(jsonb_object_agg(node, n), '{{}}') FROM (
        SELECT node, count(*) AS n FROM {_ROOM} WHERE destroyed_at IS NULL GROUP BY node
    ) AS r) AS rooms_live,
    (SELECT count(*) FROM {_MEMBER} WHERE state IN {_in(ACTIVE_MEMBER_STATES)}) AS members_active,
    (SELECT count(*) FROM {_MEMBER} WHERE state = {_literal(MemberState.JOINING)}) AS members_joining,
    (SELECT count(*) FROM {_SESSION} WHERE state = {_literal(SessionState.ACTIVE)}) AS sessions_active,
    (SELECT coalesce(jsonb_object_agg(state, n), '{{}}') FROM (
        SELECT state, count(*) AS n FROM {_PLAYBACK} WHERE state IN {_in(ACTIVE_PLAYBACK_STATES)} GROUP BY state
    ) AS p) AS playbacks_active,
    plays AS playbacks_overdue,
    coalesce({_seconds_since("deadline_at")}, 0) AS watchdog_lateness
FROM overdue
"""

WEBHOOKS_SQL = f"""
WITH RECURSIVE
{outbox.pending_keys(name="pending_endpoint", table=_DELIVERY, column="endpoint_id", pending=_PENDING)},
waiting AS (
    -- per endpoint with pending deliveries, one step down its due index
    SELECT min(first.next_attempt_at) AS due_at FROM pending_endpoint AS p
    CROSS JOIN LATERAL (
        SELECT d.next_attempt_at FROM {_DELIVERY} AS d
        WHERE d.endpoint_id = p.endpoint_id AND d.status = {_PENDING} AND {_WAITING}
        ORDER BY d.next_attempt_at LIMIT 1
    ) AS first
)
SELECT count(*) AS pending, count(*) FILTER (WHERE next_attempt_at <= {_NOW}) AS due,
       (SELECT {_seconds_since("due_at")} FROM waiting) AS oldest_due_age
FROM {_DELIVERY} WHERE status = {_PENDING}
"""

ENGINE_SQL = f"""
SELECT count(*) AS pending, count(*) FILTER (WHERE next_attempt_at <= {_NOW}) AS due,
       (SELECT {_seconds_since("d.next_attempt_at")} FROM {_COMMAND} AS d
        WHERE d.status = {_COMMAND_PENDING} AND {_WAITING}
        ORDER BY d.next_attempt_at LIMIT 1) AS oldest_due_age
FROM {_COMMAND} WHERE status = {_COMMAND_PENDING}
"""

DELIVERIES_SQL = f"""
WITH completed AS (
    -- A finished delivery's last attempt started at most a lease before it finished. Each
    -- delivery by its key (the LIMIT keeps the planner from scanning the deliveries instead).
    SELECT d.status, d.attempts = d.total_attempts AS first_round,
           extract(epoch FROM d.completed_at - d.created_at) AS latency
    FROM {_ATTEMPT} AS a
    CROSS JOIN LATERAL (
        SELECT * FROM {_DELIVERY} AS d WHERE d.id = a.delivery_id AND d.total_attempts = a.number LIMIT 1
    ) AS d
    WHERE a.started_at >= {_NOW} - (%(window)s + %(lease)s) * interval '1 second'
      AND d.status <> {_PENDING} AND d.completed_at >= {_NOW} - %(window)s * interval '1 second'
)
SELECT
    -- an endpoint at a time, along its (endpoint, status) index
    (SELECT count(*) FROM {_ENDPOINT} AS ep
     CROSS JOIN LATERAL (SELECT 1 FROM {_DELIVERY} AS d WHERE d.endpoint_id = ep.id AND d.status = {_FAILED}) AS f
    ) AS failed,
    count(*) FILTER (WHERE status = {_DELIVERED}) AS completed_delivered,
    count(*) FILTER (WHERE status = {_FAILED}) AS completed_failed,
    percentile_cont(%(quantiles)s::float8[]) WITHIN GROUP (ORDER BY latency)
        FILTER (WHERE status = {_DELIVERED} AND first_round) AS latency_quantiles,
    max(latency) FILTER (WHERE status = {_DELIVERED} AND first_round) AS latency_max
FROM completed
"""


def activity_families(row: dict) -> list[Metric]:
    rooms = GaugeMetricFamily("conference_rooms_live", "Live (not destroyed) rooms, by engine node", labels=["node"])
    for node, count in sorted(json.loads(row["rooms_live"]).items()):  # Django's cursor leaves jsonb as text
        rooms.add_metric([node], count)
    members = GaugeMetricFamily(
        "conference_members_active", "Members in a room, by state (joining: waiting for the engine)", labels=["state"]
    )
    members.add_metric([MemberState.JOINING.value], row["members_joining"])
    members.add_metric([MemberState.JOINED.value], row["members_active"] - row["members_joining"])
    playbacks = GaugeMetricFamily("conference_playbacks_active", "Plays in progress, by state", labels=["state"])
    playbacks_by_state = json.loads(row["playbacks_active"])
    for state in ACTIVE_PLAYBACK_STATES:
        playbacks.add_metric([state.value], playbacks_by_state.get(state.value, 0))
    return [
        CounterMetricFamily(
            "conference_events_written",
            "Webhook events written (the events table's id sequence: unaffected by retention pruning; "
            "an event whose transaction rolled back counts too)",
            value=row["events_written"],
        ),
        CounterMetricFamily(
            "conference_webhook_deliveries_written",
            "Webhook deliveries written, one per event and endpoint (the deliveries table's id sequence)",
            value=row["deliveries_written"],
        ),
        rooms,
        members,
        GaugeMetricFamily("conference_sessions_active", "Active call sessions", value=row["sessions_active"]),
        playbacks,
        GaugeMetricFamily(
            "conference_playbacks_overdue", "Plays still playing past their deadline", value=row["playbacks_overdue"]
        ),
        GaugeMetricFamily(
            "conference_playback_watchdog_lateness_seconds",
            "Seconds since the deadline of the most overdue play still playing (0 when none): how late the "
            "watchdog is in ending it",
            value=float(row["watchdog_lateness"]),
        ),
    ]


def outbox_families(queue: str) -> Callable[[dict], list[Metric]]:
    """The backlog of the outbox that Celery queue `queue` sends."""

    def families(row: dict) -> list[Metric]:
        pending = GaugeMetricFamily(
            "conference_outbox_pending",
            "Outbox rows not yet sent, by Celery queue: due (its time has come: waiting for a worker or in "
            "flight) or scheduled (a retry's backoff, or held behind its queue's head)",
            labels=["queue", "state"],
        )
        pending.add_metric([queue, "due"], row["due"])
        pending.add_metric([queue, "scheduled"], row["pending"] - row["due"])
        oldest = GaugeMetricFamily(
            "conference_outbox_oldest_due_age_seconds",
            "Seconds since the oldest due row that no worker is sending became due, by Celery queue (0 when none)",
            labels=["queue"],
        )
        oldest.add_metric([queue], max(float(row["oldest_due_age"] or 0), 0.0))
        return [pending, oldest]

    return families


def delivery_families(row: dict) -> list[Metric]:
    completed = GaugeMetricFamily(
        "conference_webhook_deliveries_completed_1m",
        "Webhook deliveries that reached a final state in the last minute, by outcome (failed: gave up after "
        "its last attempt; failures without an attempt, when an endpoint is disabled or deleted, are only in "
        "conference_webhook_deliveries_failed)",
        labels=["outcome"],
    )
    completed.add_metric([DeliveryStatus.DELIVERED.value], row["completed_delivered"])
    completed.add_metric([DeliveryStatus.FAILED.value], row["completed_failed"])
    latency = GaugeMetricFamily(
        "conference_webhook_delivery_latency_seconds",
        "Seconds from a delivery being written (with its event) to its delivery, over deliveries delivered in "
        "the last minute (redelivered ones left out); quantile 1 is the maximum; absent when none",
        labels=["quantile"],
    )
    if row["latency_quantiles"] is not None:
        for quantile, seconds in zip(LATENCY_QUANTILES, row["latency_quantiles"], strict=True):
            latency.add_metric([str(quantile)], seconds)
        latency.add_metric(["1"], float(row["latency_max"]))
    return [
        GaugeMetricFamily(
            "conference_webhook_deliveries_failed",
            "Webhook deliveries in state failed (given up), kept until redelivered or pruned",
            value=row["failed"],
        ),
        completed,
        latency,
    ]


@dataclass(frozen=True)
class Part:
    name: str
    sql: str
    families: Callable[[dict], list[Metric]]


PARTS = (
    Part("activity", ACTIVITY_SQL, activity_families),
    Part("webhooks", WEBHOOKS_SQL, outbox_families("webhooks")),
    Part("engine", ENGINE_SQL, outbox_families("engine")),
    Part("deliveries", DELIVERIES_SQL, delivery_families),
)


def read() -> list[Metric]:
    """Every part's figures, read now; a part that fails (its timeout) is left out and reported."""
    parameters = {"window": WINDOW_SECONDS, "lease": lease_seconds(), "quantiles": list(LATENCY_QUANTILES)}
    succeeded = dict.fromkeys((part.name for part in PARTS), 0)
    result = []
    started = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            # A busy window makes the estimate large enough for JIT, whose compiling costs more than it saves here.
            cursor.execute("SET LOCAL jit = off")
            for part in PARTS:
                try:
                    with transaction.atomic():
                        cursor.execute(part.sql, parameters)
                        columns = [column.name for column in cursor.description]
                        row = dict(zip(columns, cursor.fetchone(), strict=True))
                except DatabaseError:
                    logger.exception("domain metrics: part %s could not be read", part.name)
                    continue
                result += part.families(row)
                succeeded[part.name] = 1
    except DatabaseError:  # no database at all
        logger.exception("domain metrics could not be read")
    success = GaugeMetricFamily(
        "conference_metrics_read_success",
        "1 when the last reading of a part of the domain metrics succeeded, 0 when it failed (its figures are "
        "absent then)",
        labels=["part"],
    )
    for name, value in succeeded.items():
        success.add_metric([name], value)
    duration = GaugeMetricFamily(
        "conference_metrics_read_duration_seconds",
        "Seconds the last reading of the domain metrics took",
        time.perf_counter() - started,
    )
    return [*_merged(result), success, duration]


def _merged(families: list[Metric]) -> list[Metric]:
    """One family per name (both outboxes give `conference_outbox_pending`): the text format
    allows a name's HELP and TYPE once."""
    by_name: dict[str, Metric] = {}
    for family in families:
        if family.name in by_name:
            by_name[family.name].samples += family.samples
        else:
            by_name[family.name] = family
    return list(by_name.values())


class DomainCollector:
    """Reads the figures at most once per `cache_seconds`; scrapes meanwhile get that reading
    (a failed one included, so a struggling database is not asked again at every scrape)."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS):
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._families: list[Metric] = []

    def collect(self) -> list[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.cache_seconds:
                self._families = read()
                self._read_at = time.monotonic()
            return self._families


collector = DomainCollector()
registry = CollectorRegistry()
registry.register(collector)
