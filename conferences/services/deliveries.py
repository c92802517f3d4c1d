"""Webhook delivery: fan-out into the outbox, per-queue claims, outcomes, re-drive, redelivery.

A queue is the deliveries of one (endpoint, ordering key); only its head (lowest open id) is
sent, so a room's events reach an endpoint in order while other rooms proceed in parallel.
Claims are conditional UPDATEs: whatever the number of workers, one of them sends a head.
"""

import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from ..actors import Actor
from ..errors import Conflict
from ..models import AuditEntry, Delivery, DeliveryAttempt, Event, WebhookEndpoint
from ..models.webhooks import DeliveryStatus
from ..webhooks import sender
from ..webhooks.signing import encode_body, signature_headers
from . import audit

logger = logging.getLogger(__name__)

# httpx limits each phase (connect, write, read) by WEBHOOK_TIMEOUT_SECONDS, not the whole send;
# the lease covers all phases and a margin, so a slow send is not taken over while it runs.
LEASE_PHASES = 4
LEASE_MARGIN = timedelta(seconds=30)
REDRIVE_GRACE = timedelta(seconds=5)  # leave fresh deliveries to their on-commit wake-up
PRECISE_WAKE_LIMIT = 60  # retries due sooner than this also get a countdown task
BROKER_BACKOFF_SECONDS = 5

_broker_down_until = 0.0


# --- Fan-out (inside the state change's transaction) ---------------------------------------


def fan_out(events: list[Event]) -> None:
    """One delivery per event and enabled endpoint of its app that wants it."""
    endpoints_by_app = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.filter(app_id__in={event.app_id for event in events}, enabled=True):
        endpoints_by_app[endpoint.app_id].append(endpoint)
    pairs = [
        (event, endpoint)
        for event in events
        for endpoint in endpoints_by_app[event.app_id]
        if endpoint.wants(event.event_type)
    ]
    if not pairs:
        return
    # Behind a head that waits for a retry, a new delivery is not due before it: the re-drive
    # then only sees queues that can move.
    waiting_until = {
        (endpoint_id, key): until
        for endpoint_id, key, until in Delivery.objects.filter(
            endpoint__in={endpoint.pk for _, endpoint in pairs},
            ordering_key__in={event.ordering_key for event, _ in pairs},
            status=DeliveryStatus.PENDING,
        )
        .values("endpoint_id", "ordering_key")
        .annotate(until=Max("next_attempt_at"))
        .values_list("endpoint_id", "ordering_key", "until")
    }
    Delivery.objects.bulk_create(
        Delivery(
            event=event,
            endpoint=endpoint,
            ordering_key=event.ordering_key,
            next_attempt_at=max(event.created_at, waiting_until.get((endpoint.pk, event.ordering_key), event.created_at)),
        )
        for event, endpoint in pairs
    )
    queues = sorted({(endpoint.pk, event.ordering_key) for event, endpoint in pairs})
    transaction.on_commit(lambda: wake_queues(queues))


def wake_queues(queues, countdown: float | None = None) -> None:
    """Ask a worker to deliver these queues. Best effort: when the broker is down the rows wait
    for the re-drive, and for a few seconds no request pays for another failed publish."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return
    from ..tasks import deliver_queue

    for endpoint_id, ordering_key in queues:
        try:
            deliver_queue.apply_async((endpoint_id, ordering_key), countdown=countdown, retry=False)
        except Exception:  # broker unreachable: nothing is lost, the re-drive will send it
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
            logger.warning("broker unavailable; deliveries wait for the re-drive", exc_info=True)
            return


# --- Sending one queue ---------------------------------------------------------------------


def _execute_prepared(sql: str, params: dict):
    """Run one of the hot delivery statements as a server-side prepared statement: planning
    these CTEs costs more than running them (1.2 ms against 0.5 ms), and Django's cursors bind
    on the client and cannot prepare. It shares Django's connection and transaction."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone() if cursor.description else None


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt_id: int
    attempt_number: int
    msg_id: str
    payload: dict
    endpoint_id: int
    ordering_key: str
    url: str
    secrets: list[str] = field(repr=False)


# The head of a queue (other than a delivery that this same statement completes), claimed
# with a lease, and its attempt recorded before any I/O.
_CLAIM_CTES = """
head AS (
    SELECT id FROM conferences_delivery
    WHERE endpoint_id = %(endpoint)s AND ordering_key = %(key)s AND status = 'pending' AND id <> %(done)s
    ORDER BY id LIMIT 1
), claimed AS (
    UPDATE conferences_delivery AS d
    SET attempts = d.attempts + 1, total_attempts = d.total_attempts + 1, lease_expires_at = %(lease)s
    -- Every index the planner may pick finds the one row at once: the queue key and id serve
    -- the queue index and the primary key, and the due check is written so no index serves it
    -- (a scan of the due index would grow with the backlog).
    WHERE d.endpoint_id = %(endpoint)s AND d.ordering_key = %(key)s AND d.id = (SELECT id FROM head)
      AND d.status = 'pending'
      AND (d.next_attempt_at <= %(now)s) IS TRUE
      AND (d.lease_expires_at IS NULL OR d.lease_expires_at < %(now)s)
      AND EXISTS (SELECT 1 FROM conferences_webhookendpoint AS ep WHERE ep.id = d.endpoint_id AND ep.enabled)
      AND {guard}
    RETURNING d.id, d.event_id, d.attempts, d.total_attempts
), attempt AS (
    INSERT INTO conferences_deliveryattempt (delivery_id, number, started_at, response_excerpt, error)
    SELECT id, total_attempts, %(now)s, '', '' FROM claimed
    RETURNING id
)
SELECT claimed.id, attempt.id, claimed.attempts, e.uuid, e.payload, ep.url, ep.secret, ep.previous_secret,
       ep.previous_secret_expires_at
FROM claimed, attempt, conferences_event AS e, conferences_webhookendpoint AS ep
WHERE e.id = claimed.event_id AND ep.id = %(endpoint)s
"""

CLAIM_HEAD_SQL = "WITH " + _CLAIM_CTES.format(guard="TRUE")


def _claim_parameters(endpoint_id: int, ordering_key: str, now: datetime, done: int = 0) -> dict:
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * LEASE_PHASES) + LEASE_MARGIN
    return {"endpoint": endpoint_id, "key": ordering_key, "now": now, "lease": lease, "done": done}


def claim_head(*, endpoint_id: int, ordering_key: str, now: datetime) -> Claim | None:
    """Take the queue's head when it is due and nobody holds it; record the attempt first."""
    row = _execute_prepared(CLAIM_HEAD_SQL, _claim_parameters(endpoint_id, ordering_key, now))
    return _claim_from_row(row, endpoint_id, ordering_key, now)


def _claim_from_row(row, endpoint_id: int, ordering_key: str, now: datetime) -> Claim | None:
    if row is None:
        return None
    delivery_id, attempt_id, attempts, event_uuid, payload, url, secret, previous, previous_expires = row
    secrets = [secret] + ([previous] if previous and previous_expires and previous_expires > now else [])
    return Claim(
        delivery_id=delivery_id,
        attempt_id=attempt_id,
        attempt_number=attempts,
        msg_id=f"msg_{event_uuid.hex}",
        payload=payload if isinstance(payload, dict) else json.loads(payload),
        endpoint_id=endpoint_id,
        ordering_key=ordering_key,
        url=url,
        secrets=secrets,
    )


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next try after `attempts` failed ones (±20% jitter); None: give up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    return schedule[attempts - 1] * random.uniform(0.8, 1.2)


_FINISH_CTES = """
attempt_done AS (
    UPDATE conferences_deliveryattempt
    SET duration_ms = %(duration)s, status_code = %(code)s, response_excerpt = %(excerpt)s, error = %(error)s
    WHERE id = %(attempt)s
), finished AS (
    UPDATE conferences_delivery
    SET status = %(status)s, next_attempt_at = %(next)s, lease_expires_at = NULL, completed_at = %(completed)s,
        last_status_code = %(code)s, last_error = %(error)s
    WHERE id = %(delivery)s AND status = 'pending' AND attempts = %(attempts)s
    RETURNING endpoint_id, ordering_key
)"""

FINISH_SQL = "WITH " + _FINISH_CTES + " SELECT endpoint_id, ordering_key FROM finished"

# A delivery that ends (delivered or failed) and the claim of its queue's next head, in one
# statement and one commit: the hot path costs one round trip per event.
FINISH_AND_CLAIM_SQL = "WITH " + _FINISH_CTES + ", " + _CLAIM_CTES.format(guard="EXISTS (SELECT 1 FROM finished)")

# The deliveries behind a head that waits for a retry are not due before it.
HOLD_QUEUE_SQL = """
UPDATE conferences_delivery SET next_attempt_at = %(until)s
WHERE endpoint_id = %(endpoint)s AND ordering_key = %(key)s AND status = 'pending' AND id > %(head)s
  AND next_attempt_at < %(until)s
"""


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None  # seconds, when status is pending


def finish_attempt(
    claim: Claim, result: sender.SendResult, *, now: datetime, claim_next: bool = False
) -> tuple[Outcome, Claim | None]:
    """Record the outcome: delivered, retry (pending again) or failed. 410 disables the endpoint.
    With `claim_next`, a delivery that ended also claims the queue's next head (returned)."""
    retry_in = None
    if result.ok:
        status = DeliveryStatus.DELIVERED
    elif result.status_code == 410:
        status = DeliveryStatus.FAILED
    else:
        retry_in = retry_delay(claim.attempt_number)
        status = DeliveryStatus.FAILED if retry_in is None else DeliveryStatus.PENDING
    error = result.error or ("" if result.ok else f"HTTP {result.status_code}")
    parameters = {
        "duration": result.duration_ms,
        "code": result.status_code,
        "excerpt": result.excerpt,
        "error": error,
        "attempt": claim.attempt_id,
        "status": str(status),
        "next": now + timedelta(seconds=retry_in or 0),
        "completed": None if status == DeliveryStatus.PENDING else now,
        "delivery": claim.delivery_id,
        "attempts": claim.attempt_number,
    }
    if claim_next and status != DeliveryStatus.PENDING and result.status_code != 410:
        row = _execute_prepared(
            FINISH_AND_CLAIM_SQL,
            {**parameters, **_claim_parameters(claim.endpoint_id, claim.ordering_key, now, done=claim.delivery_id)},
        )
        return Outcome(status, None), _claim_from_row(row, claim.endpoint_id, claim.ordering_key, now)
    updated = _execute_prepared(FINISH_SQL, parameters)
    if updated is not None and status == DeliveryStatus.PENDING:
        _execute_prepared(HOLD_QUEUE_SQL, {"until": now + timedelta(seconds=retry_in), "endpoint": updated[0],
                                           "key": updated[1], "head": claim.delivery_id})
    if result.status_code == 410:
        endpoint = WebhookEndpoint.objects.select_related("app").get(pk=claim.endpoint_id)
        disable_endpoint(
            actor=Actor.system("webhook-delivery"), endpoint=endpoint, reason="The receiver answered 410 Gone"
        )
    return Outcome(status, retry_in), None


def deliver_queue(*, endpoint_id: int, ordering_key: str, limit: int = 100) -> int:
    """Send the queue's due heads one after another; returns how many attempts were made."""
    claim = claim_head(endpoint_id=endpoint_id, ordering_key=ordering_key, now=timezone.now())
    sent = 0
    while claim is not None:
        sent += 1
        outcome, claim = finish_attempt(claim, _send(claim), now=timezone.now(), claim_next=sent < limit)
        if outcome.status == DeliveryStatus.PENDING:
            # The head waits for its retry, and the rest of the queue behind it.
            if outcome.retry_in <= PRECISE_WAKE_LIMIT:
                wake_queues([(endpoint_id, ordering_key)], countdown=outcome.retry_in)
            return sent
        if sent >= limit:
            wake_queues([(endpoint_id, ordering_key)])  # more to send: let other queues have a turn first
            return sent
    return sent


def _send(claim: Claim) -> sender.SendResult:
    """One attempt; whatever goes wrong becomes that attempt's error, so it is always recorded."""
    if claim.attempt_number > len(settings.WEBHOOK_RETRY_SCHEDULE) + 1:
        # Attempts lost with dead workers used up the schedule: give up rather than loop.
        return sender.SendResult(None, "", "no attempts left", 0)
    try:
        body = encode_body(claim.payload)
        headers = signature_headers(msg_id=claim.msg_id, timestamp=timezone.now(), body=body, secrets=claim.secrets)
    except Exception as exc:
        logger.exception("cannot sign delivery %s", claim.delivery_id)
        return sender.SendResult(None, "", f"cannot sign: {type(exc).__name__}", 0)
    return sender.post(claim.url, body=body, headers=headers)


# --- Safety net and staff actions ----------------------------------------------------------

REDRIVE_SQL = """
SELECT DISTINCT d.endpoint_id, d.ordering_key
FROM conferences_delivery AS d JOIN conferences_webhookendpoint AS ep ON ep.id = d.endpoint_id
WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s AND ep.enabled
  AND ((d.lease_expires_at IS NULL AND d.next_attempt_at <= %(due_before)s)
       OR d.lease_expires_at < %(now)s)  -- claimed by a worker that never finished
LIMIT %(limit)s
"""


def redrive(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Wake every queue with a due delivery that is not in flight (a lost broker message, a
    worker killed mid-send). Deliveries behind a retrying head are held until its retry, so the
    cost follows what is due. Duplicated wake-ups are harmless: claims are atomic."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(REDRIVE_SQL, {"due_before": now - REDRIVE_GRACE, "now": now, "limit": limit})
        queues = cursor.fetchall()
    wake_queues(queues)
    return len(queues)


def disable_endpoint(*, actor: Actor, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop sending to an endpoint; its waiting deliveries fail (they can be redelivered)."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason)
        failed = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, completed_at=timezone.now(), last_error="endpoint disabled"
        )
        audit.record(
            actor=actor,
            action="webhook_endpoint.disable",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.pk, "reason": reason, "deliveries_failed": failed},
        )
    endpoint.enabled, endpoint.disabled_reason = False, reason


def enable_endpoint(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=True, disabled_reason="")
        audit.record(
            actor=actor, action="webhook_endpoint.enable", app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.pk},
        )
    endpoint.enabled, endpoint.disabled_reason = True, ""


def _refuse_disabled(endpoint: WebhookEndpoint) -> None:
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).exists():
        raise Conflict("The endpoint is disabled; enable it first", code="endpoint_disabled")


def _reopen(deliveries) -> list[tuple[int, str]]:
    rows = list(deliveries.select_for_update().values_list("pk", "endpoint_id", "ordering_key"))
    Delivery.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), completed_at=None,
        lease_expires_at=None,
    )
    return sorted({(endpoint_id, key) for _, endpoint_id, key in rows})


def redeliver(*, actor: Actor, delivery: Delivery) -> None:
    """Send a delivered or failed delivery again, with a new round of retries."""
    _refuse_disabled(delivery.endpoint)
    with transaction.atomic():
        queues = _reopen(Delivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.PENDING))
        audit.record(
            actor=actor,
            action="webhook_delivery.redeliver",
            outcome="ok" if queues else "already_open",
            app_id=delivery.endpoint.app.app_id,
            detail={"delivery_id": delivery.pk, "endpoint_id": delivery.endpoint_id},
        )
        transaction.on_commit(lambda: wake_queues(queues))


def redeliver_failed(*, actor: Actor, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every failed delivery of an endpoint created since `since`."""
    _refuse_disabled(endpoint)
    with transaction.atomic():
        deliveries = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.FAILED, created_at__gte=since)
        count = deliveries.count()
        queues = _reopen(deliveries)
        audit.record(
            actor=actor,
            action="webhook_delivery.redeliver_failed",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.pk, "since": since.isoformat(), "count": count},
        )
        transaction.on_commit(lambda: wake_queues(queues))
    return count


def prune(*, now: datetime | None = None, batch: int = 10_000) -> dict[str, int]:
    """Delete delivery attempts and audit entries older than their retention, in batches."""
    now = now or timezone.now()
    removed = {}
    for name, model, timestamp, days in (
        ("attempts", DeliveryAttempt, "started_at", settings.WEBHOOK_ATTEMPT_RETENTION_DAYS),
        ("audit", AuditEntry, "occurred_at", settings.AUDIT_RETENTION_DAYS),
    ):
        cutoff = now - timedelta(days=days)
        removed[name] = 0
        while True:
            ids = list(model.objects.filter(**{f"{timestamp}__lt": cutoff}).values_list("pk", flat=True)[:batch])
            if not ids:
                break
            removed[name] += model.objects.filter(pk__in=ids).delete()[0]
    return removed
