"""Webhook dispatch: claim many queue heads in one statement, send them concurrently, record
the outcomes in one statement, and claim again, until nothing is due.

- A claim takes due heads (the lowest pending position of their queue) across rooms and endpoints,
  oldest due first, with SKIP LOCKED; it sets a lease and writes each attempt row before any
  I/O. Whatever the number of workers, a head is sent by one of them at a time.
- At most WEBHOOK_ENDPOINT_CONCURRENCY attempts per endpoint are in flight in a worker process,
  so a slow or dead endpoint holds a bounded share of it while other endpoints flow.
- A finish matches its own attempt (the attempt number never repeats, a redelivery included),
  so a late finish of a taken-over attempt changes nothing. Times that decide retries are the
  database's.
"""

import concurrent.futures
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from ..actors import Actor
from ..models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from ..models.webhooks import DeliveryStatus
from ..webhooks.sender import Request, SendResult, sender
from ..webhooks.signing import encode_body, signature_headers
from . import outbox
from .endpoints import disable_endpoint
from .fan_out import PENDING
from .sql import execute_prepared

logger = logging.getLogger(__name__)

KIND = "webhooks"
# A pass ends after this long and publishes a wake-up, so a long backlog is shared anew among
# the worker processes.
PASS_SECONDS = 30
MAX_CLAIM = 500
# A retry due sooner than this gets a wake-up timed for it; later ones wait for the re-drive.
PRECISE_WAKE_LIMIT = 60

# Endpoints whose last attempt got no answer at all (timeout, refused, blocked): they get
# UNRESPONSIVE_CAP slots until one answers, so dead endpoints cannot fill a process.
# Touched only by the dispatching thread (one per process).
unresponsive: set[int] = set()
UNRESPONSIVE_CAP = 2

_DELIVERY = Delivery._meta.db_table
_ATTEMPT = DeliveryAttempt._meta.db_table
_EVENT = Event._meta.db_table
_ENDPOINT = WebhookEndpoint._meta.db_table
_PENDING = PENDING  # the one literal fan-out uses too (prepared statements' generic plans need it)

# The endpoints with pending deliveries (a skip scan): the claim and the re-drive cost what is
# due on them, not the number of endpoints or the backlog's depth.
_PENDING_ENDPOINTS = outbox.pending_keys(
    name="pending_endpoint", table=_DELIVERY, column="endpoint_id", pending=_PENDING
)


def _claimable(ended: str = "") -> str:
    return outbox.head_claimable(
        table=_DELIVERY, queue=("endpoint_id", "ordering_key"), pending=_PENDING, ended=ended, position="queue_position"
    )


# Up to its free slots from each enabled endpoint, oldest due first; then the attempt rows.
_CLAIM_CTES = f"""
{_PENDING_ENDPOINTS}, open_endpoint AS (
    SELECT ep.id, COALESCE(busy.room, %(cap)s) AS room
    FROM pending_endpoint AS p
    JOIN {_ENDPOINT} AS ep ON ep.id = p.endpoint_id AND ep.enabled
    LEFT JOIN unnest(%(busy)s::bigint[], %(room)s::int[]) AS busy(endpoint_id, room) ON busy.endpoint_id = ep.id
    WHERE COALESCE(busy.room, %(cap)s) > 0
), chosen AS (
    SELECT head.id, head.next_attempt_at FROM open_endpoint AS oe
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM {_DELIVERY} AS d
        WHERE d.endpoint_id = oe.id AND {{claimable}}
        ORDER BY d.next_attempt_at, d.id
        LIMIT oe.room
        FOR UPDATE OF d SKIP LOCKED
    ) AS head
    ORDER BY head.next_attempt_at, head.id
    LIMIT %(limit)s
), claimed AS (
    UPDATE {_DELIVERY} AS d
    SET attempts = d.attempts + 1, total_attempts = d.total_attempts + 1,
        lease_expires_at = statement_timestamp() + %(lease)s * interval '1 second'
    FROM chosen WHERE d.id = chosen.id
    RETURNING d.id, d.event_id, d.endpoint_id, d.attempts, d.total_attempts
), attempt AS (
    INSERT INTO {_ATTEMPT} (delivery_id, number, started_at, response_excerpt, error)
    SELECT id, total_attempts, statement_timestamp(), '', '' FROM claimed
    RETURNING id, delivery_id
)"""
_CLAIMED = f"""
SELECT claimed.id, attempt.id, claimed.attempts, claimed.total_attempts, e.uuid, e.payload,
       ep.id, ep.url, ep.secret,
       CASE WHEN ep.previous_secret_expires_at > statement_timestamp() THEN ep.previous_secret ELSE '' END
FROM claimed
JOIN attempt ON attempt.delivery_id = claimed.id
JOIN {_EVENT} AS e ON e.id = claimed.event_id
JOIN {_ENDPOINT} AS ep ON ep.id = claimed.endpoint_id
ORDER BY claimed.id
"""
CLAIM_SQL = "WITH RECURSIVE " + _CLAIM_CTES.format(claimable=_claimable()) + _CLAIMED

# The outcomes of many attempts at once. A delivery that waits for a retry holds the rest of
# its queue until then.
_FINISH_CTES = f"""
outcome AS (
    SELECT * FROM unnest(%(delivery)s::bigint[], %(attempt)s::bigint[], %(number)s::int[], %(status)s::text[],
                         %(retry_in)s::float8[], %(code)s::int[], %(duration)s::int[], %(excerpt)s::text[],
                         %(error)s::text[])
        AS o(delivery_id, attempt_id, number, status, retry_in, code, duration, excerpt, error)
), recorded AS (
    UPDATE {_ATTEMPT} AS a
    SET duration_ms = o.duration, status_code = o.code, response_excerpt = o.excerpt, error = o.error
    FROM outcome AS o WHERE a.id = o.attempt_id
), finished AS (
    UPDATE {_DELIVERY} AS d
    SET status = o.status,
        next_attempt_at = CASE WHEN o.status = {_PENDING}
                               THEN statement_timestamp() + o.retry_in * interval '1 second'
                               ELSE d.next_attempt_at END,
        lease_expires_at = NULL,
        completed_at = CASE WHEN o.status = {_PENDING} THEN NULL ELSE statement_timestamp() END,
        last_status_code = o.code, last_error = o.error
    FROM outcome AS o
    WHERE d.id = o.delivery_id AND d.status = {_PENDING} AND d.total_attempts = o.number
    RETURNING d.id, d.endpoint_id, d.ordering_key, d.queue_position, d.status, d.next_attempt_at
), held AS (
    UPDATE {_DELIVERY} AS later SET next_attempt_at = f.next_attempt_at
    FROM finished AS f
    WHERE f.status = {_PENDING} AND later.endpoint_id = f.endpoint_id AND later.ordering_key = f.ordering_key
      AND later.status = {_PENDING} AND later.queue_position > f.queue_position
      AND later.next_attempt_at < f.next_attempt_at
)"""
FINISH_SQL = "WITH " + _FINISH_CTES + " SELECT id FROM finished"
# The hot path's one round trip: outcomes recorded and the next heads claimed together. The
# claim reads the statement's snapshot, where the deliveries being finished are still pending
# and leased: it never takes them, and takes the next of a queue whose head this statement ends.
FINISH_AND_CLAIM_SQL = (
    "WITH RECURSIVE "
    + _FINISH_CTES
    + ", "
    + _CLAIM_CTES.format(
        claimable=_claimable(ended=f"AND head.id NOT IN (SELECT id FROM finished WHERE status <> {_PENDING})")
    )
    + _CLAIMED
)

# Anything due that nobody holds (a lost wake-up, a worker that died mid-send).
DUE_SQL = f"""
WITH RECURSIVE {_PENDING_ENDPOINTS}
SELECT EXISTS (
    SELECT 1 FROM pending_endpoint AS p
    CROSS JOIN LATERAL (
        SELECT 1 FROM {_DELIVERY} AS d WHERE d.endpoint_id = p.endpoint_id AND {_claimable()} LIMIT 1
    ) AS due
)
"""


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt_id: int
    attempt_number: int  # in the current round: decides the retry delay
    number: int  # over all rounds: this attempt's record number
    msg_id: str
    payload: dict
    endpoint_id: int
    url: str
    secrets: list[str] = field(repr=False)


def lease_seconds() -> float:
    """Comfortably longer than an attempt's absolute deadline, so a live one is not taken over."""
    return 2 * settings.WEBHOOK_TIMEOUT_SECONDS + 30


def _cap(endpoint_id: int) -> int:
    return UNRESPONSIVE_CAP if endpoint_id in unresponsive else settings.WEBHOOK_ENDPOINT_CONCURRENCY


def _claim_parameters(limit: int, in_flight: Counter | None) -> dict:
    in_flight = in_flight or Counter()
    busy = {endpoint: _cap(endpoint) - in_flight[endpoint] for endpoint in {*in_flight, *unresponsive}}
    return {
        "busy": list(busy),
        "room": list(busy.values()),
        "cap": settings.WEBHOOK_ENDPOINT_CONCURRENCY,
        "limit": limit,
        "lease": lease_seconds(),
    }


def _claims(rows) -> list[Claim]:
    return [
        Claim(
            delivery_id=delivery_id,
            attempt_id=attempt_id,
            attempt_number=attempts,
            number=number,
            msg_id=f"msg_{event_uuid.hex}",
            payload=payload if isinstance(payload, dict) else json.loads(payload),
            endpoint_id=endpoint_id,
            url=url,
            secrets=[secret] + ([previous] if previous else []),
        )
        for delivery_id, attempt_id, attempts, number, event_uuid, payload, endpoint_id, url, secret, previous in rows
    ]


def claim(*, limit: int, in_flight: Counter | None = None) -> list[Claim]:
    """Claim up to `limit` due heads, at most the endpoint cap per endpoint counting what this
    process has `in_flight` per endpoint."""
    return _claims(execute_prepared(CLAIM_SQL, _claim_parameters(limit, in_flight)))


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next try after `attempts` failed ones (±20% jitter); None: give up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    return schedule[attempts - 1] * random.uniform(0.8, 1.2)


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None  # seconds, when status is pending


def outcome_of(claim: Claim, result: SendResult) -> Outcome:
    if result.ok:
        return Outcome(DeliveryStatus.DELIVERED, None)
    if result.status_code == 410:
        return Outcome(DeliveryStatus.FAILED, None)
    retry_in = retry_delay(claim.attempt_number)
    return Outcome(DeliveryStatus.FAILED, None) if retry_in is None else Outcome(DeliveryStatus.PENDING, retry_in)


def finish(results: list[tuple[Claim, SendResult]]) -> list[Outcome]:
    """Record many outcomes in one statement; 410 then disables its endpoint."""
    outcomes = _record(results)
    _after_finish(results, outcomes)
    return outcomes


def _record(results: list[tuple[Claim, SendResult]]) -> list[Outcome]:
    outcomes, parameters = _finish_parameters(results)
    execute_prepared(FINISH_SQL, parameters)
    return outcomes


def finish_and_claim(
    results: list[tuple[Claim, SendResult]], *, limit: int, in_flight: Counter
) -> tuple[list[Outcome], list[Claim]]:
    """`finish` and `claim` in one round trip. The caller sends the claims first and then calls
    `_after_finish`, so nothing it does can leave claimed deliveries unsent."""
    outcomes, parameters = _finish_parameters(results)
    rows = execute_prepared(FINISH_AND_CLAIM_SQL, {**parameters, **_claim_parameters(limit, in_flight)})
    gone = _gone(results)  # claimed in the same statement, before the 410 disables the endpoint
    return outcomes, [claim for claim in _claims(rows) if claim.endpoint_id not in gone]


def _gone(results: list[tuple[Claim, SendResult]]) -> set[int]:
    return {claim.endpoint_id for claim, result in results if result.status_code == 410}


def _finish_parameters(results: list[tuple[Claim, SendResult]]) -> tuple[list[Outcome], dict]:
    outcomes = [outcome_of(claim, result) for claim, result in results]
    return outcomes, {
        "delivery": [claim.delivery_id for claim, _ in results],
        "attempt": [claim.attempt_id for claim, _ in results],
        "number": [claim.number for claim, _ in results],
        "status": [str(outcome.status) for outcome in outcomes],
        "retry_in": [outcome.retry_in for outcome in outcomes],
        "code": [result.status_code for _, result in results],
        "duration": [result.duration_ms for _, result in results],
        "excerpt": [result.excerpt for _, result in results],
        "error": [result.error or ("" if result.ok else f"HTTP {result.status_code}") for _, result in results],
    }


def _after_finish(results: list[tuple[Claim, SendResult]], outcomes: list[Outcome]) -> None:
    """410 disables its endpoint (failing what waits for it); retries due soon get a wake-up;
    an endpoint that gave no answer at all gets fewer slots until it answers again."""
    for claim, result in results:
        if result.sent and result.status_code is None:
            unresponsive.add(claim.endpoint_id)
        elif result.sent:
            unresponsive.discard(claim.endpoint_id)
    gone = _gone(results)
    if gone:
        for endpoint in WebhookEndpoint.objects.filter(pk__in=gone, enabled=True).select_related("app"):
            disable_endpoint(
                actor=Actor.system("webhook-delivery"), endpoint=endpoint, reason="The receiver answered 410 Gone"
            )
    outbox.wake_later(
        KIND, [outcome.retry_in for outcome in outcomes if outcome.retry_in is not None], limit=PRECISE_WAKE_LIMIT
    )


def _request(claim: Claim) -> Request | SendResult:
    """The signed request, or the result that stands for an attempt that cannot be made."""
    if claim.attempt_number > len(settings.WEBHOOK_RETRY_SCHEDULE) + 1:
        # Attempts lost with dead workers used up the schedule: give up rather than loop.
        return SendResult(None, "", "no attempts left", 0, sent=False)
    try:
        body = encode_body(claim.payload)
        headers = signature_headers(msg_id=claim.msg_id, timestamp=timezone.now(), body=body, secrets=claim.secrets)
    except Exception as exc:
        logger.exception("cannot sign delivery %s", claim.delivery_id)
        return SendResult(None, "", f"cannot sign: {type(exc).__name__}", 0, sent=False)
    return Request(claim.url, body.encode(), headers)


def _settled(result: SendResult) -> concurrent.futures.Future:
    future = concurrent.futures.Future()
    future.set_result(result)
    return future


def dispatch(dispatcher: outbox.Dispatcher | None = None, *, pass_seconds: float = PASS_SECONDS) -> int:
    """Send everything due until nothing is; returns the number of attempts made. A wake-up
    that reaches `dispatcher` meanwhile makes it claim at once, even while it waits on slow
    receivers."""
    max_in_flight = settings.WEBHOOK_MAX_IN_FLIGHT
    in_flight: dict[concurrent.futures.Future, Claim] = {}
    per_endpoint: Counter = Counter()
    ends_at = time.monotonic() + pass_seconds
    attempts, claiming, invited, results = 0, True, False, []
    while True:
        if claiming and ((dispatcher is not None and dispatcher.stopping.is_set()) or time.monotonic() > ends_at):
            claiming = False
            outbox.wake(KIND, force=True)  # this or another process goes on where this pass stops
        room = min(MAX_CLAIM, max_in_flight - len(in_flight))
        outcomes, claims = [], []
        try:
            if claiming and room > 0:
                if dispatcher is not None:
                    dispatcher.take_wake()
                if results:
                    outcomes, claims = finish_and_claim(results, limit=room, in_flight=per_endpoint)
                else:
                    claims = claim(limit=room, in_flight=per_endpoint)
            elif results:
                outcomes = _record(results)
        except DatabaseError:
            # Record what is in flight if the database lets us; otherwise the leases run out
            # and the re-drive sends those deliveries again (at least once, never lost).
            logger.exception("webhook dispatch: database error; finishing what is in flight")
            connection.close()
            finish(results + _wait_all(in_flight))
            raise
        _send(claims, in_flight)
        per_endpoint.update(c.endpoint_id for c in claims)
        if results:
            _after_finish(results, outcomes)
        if not invited and claims and (len(claims) == room or _at_cap(per_endpoint, claims)):
            # A backlog this process cannot take alone: once per pass, invite another process
            # (which invites the next one in turn).
            outbox.wake(KIND)
            invited = True
        if not in_flight:
            return attempts
        waiting_on = list(in_flight)
        if dispatcher is not None and claiming and len(in_flight) < max_in_flight:
            waiting_on.append(dispatcher.next_nudge())
        # The timeout is a safety net: every attempt ends by its deadline, and wake-ups nudge.
        done, _ = concurrent.futures.wait(waiting_on, timeout=1, return_when=concurrent.futures.FIRST_COMPLETED)
        results = [(in_flight.pop(future), future.result()) for future in done if future in in_flight]
        per_endpoint.subtract(c.endpoint_id for c, _ in results)
        attempts += len(results)


def _wait_all(in_flight: dict) -> list[tuple[Claim, SendResult]]:
    concurrent.futures.wait(in_flight)
    results = [(claim, future.result()) for future, claim in in_flight.items()]
    in_flight.clear()
    return results


def _at_cap(per_endpoint: Counter, claims: list[Claim]) -> bool:
    return any(per_endpoint[c.endpoint_id] >= _cap(c.endpoint_id) for c in claims)


def _send(claims: list[Claim], in_flight: dict) -> None:
    """Start the claimed attempts; each future gives its SendResult."""
    requests = [(c, _request(c)) for c in claims]
    to_send = [(c, r) for c, r in requests if isinstance(r, Request)]
    futures = sender().send_many([r for _, r in to_send]) if to_send else []
    in_flight.update(zip(futures, (c for c, _ in to_send), strict=True))
    in_flight.update({_settled(r): c for c, r in requests if isinstance(r, SendResult)})


def redrive() -> bool:
    return outbox.redrive(KIND, DUE_SQL)


dispatcher = outbox.Dispatcher(KIND, dispatch)
