"""Webhook endpoints and what staff or apps do with them and their deliveries: create, change,
delete, rotate the secret, disable, enable, redeliver one delivery, recover the failures since
a time. The API and the admin call these alike."""

import base64
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from ..actors import Actor
from ..errors import Conflict, NotFound, ServiceError
from ..event_schema import event_schemas
from ..models import App, Delivery, WebhookEndpoint
from ..models.webhooks import QUEUE_POSITION_SEQUENCE, DeliveryStatus, url_without_query
from ..ssrf import MAX_URL_LENGTH, check_webhook_url
from . import audit, outbox
from .fan_out import PENDING, held_until

ROTATION_GRACE = timedelta(hours=24)
MAX_ENDPOINTS = 10  # per app (SPEC 8a)
MAX_DESCRIPTION = 200


def mint_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def validate_endpoint(*, url: str | None = None, event_types: list[str] | None = None) -> None:
    """The rules of an endpoint's URL (scheme, length, the SSRF rule) and event filter (distinct
    names of the schema's events); ServiceError (400) naming each field that breaks them."""
    problems = {}
    if url is not None:
        if len(url) > MAX_URL_LENGTH:
            problems["url"] = [f"Ensure this field has no more than {MAX_URL_LENGTH} characters."]
        elif reason := check_webhook_url(url):
            problems["url"] = [reason]
    if event_types is not None:
        if unknown := sorted(set(event_types) - set(event_schemas())):
            problems["event_types"] = [f"Unknown event types: {', '.join(unknown)}"]
        elif len(set(event_types)) != len(event_types):
            problems["event_types"] = ["Event types must be distinct."]
    if problems:
        raise ServiceError(f"Invalid webhook endpoint: {next(iter(problems.values()))[0]}", detail=problems)


def create_endpoint(
    *, actor: Actor, app: App, url: str, event_types: list[str] | None = None, description: str = ""
) -> WebhookEndpoint:
    """A new endpoint with a new secret; at most MAX_ENDPOINTS per app (409 endpoint_limit)."""
    event_types = event_types or []
    validate_endpoint(url=url, event_types=event_types)
    with transaction.atomic():
        App.objects.select_for_update().filter(pk=app.pk).first()  # one count at a time per app
        if WebhookEndpoint.objects.current().filter(app=app).count() >= MAX_ENDPOINTS:
            raise Conflict(f"An app has at most {MAX_ENDPOINTS} webhook endpoints", code="endpoint_limit")
        endpoint = WebhookEndpoint.objects.create(
            app=app, url=url, secret=mint_webhook_secret(), event_types=event_types, description=description
        )
        audit.record(
            actor=actor,
            action="webhook_endpoint.create",
            app_id=app.app_id,
            request={"url": url_without_query(url), "event_types": event_types, "description": description},
            detail={"endpoint_id": endpoint.endpoint_id},
        )
    return endpoint


def update_endpoint(
    *,
    actor: Actor,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given. Disabling stops new events from being queued for it and holds what
    waits; enabling clears the disabled reason and resumes its queues."""
    validate_endpoint(url=url, event_types=event_types)
    with transaction.atomic():
        endpoint = lock_current(endpoint)
        changes = {
            name: value
            for name, value in (("url", url), ("event_types", event_types), ("description", description))
            if value is not None
        }
        for name, value in changes.items():
            setattr(endpoint, name, value)
        if changes:
            endpoint.save(update_fields=list(changes))
        if enabled is True and not endpoint.enabled:
            enable_endpoint(actor=actor, endpoint=endpoint)
        elif enabled is False and endpoint.enabled:
            # Held, not failed (unlike a staff disable): enabling resumes the queues.
            endpoint.enabled, endpoint.disabled_reason = False, "disabled by the app"
            endpoint.save(update_fields=["enabled", "disabled_reason"])
        audit.record(
            actor=actor,
            action="webhook_endpoint.update",
            app_id=endpoint.app.app_id,
            request={
                **changes,
                **({"url": url_without_query(url)} if url else {}),
                **({} if enabled is None else {"enabled": enabled}),
            },
            detail={"endpoint_id": endpoint.endpoint_id},
        )
    return endpoint


def delete_endpoint(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Gone for the app: disabled, what waits fails ("endpoint deleted"), its delivery history
    kept for staff."""
    with transaction.atomic():
        endpoint = lock_current(endpoint)
        endpoint.enabled, endpoint.disabled_reason, endpoint.deleted_at = False, "deleted", timezone.now()
        endpoint.save(update_fields=["enabled", "disabled_reason", "deleted_at"])
        failed = _fail_waiting(endpoint, "endpoint deleted")
        audit.record(
            actor=actor,
            action="webhook_endpoint.delete",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.endpoint_id, "deliveries_failed": failed},
        )


def lock_current(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """The endpoint under its row lock, unless it was deleted meanwhile (NotFound)."""
    locked = (
        WebhookEndpoint.objects.current()
        .select_for_update(of=("self",))
        .select_related("app")
        .filter(pk=endpoint.pk)
        .first()
    )
    if locked is None:
        raise NotFound("Webhook endpoint not found")
    return locked


def _fail_waiting(endpoint: WebhookEndpoint, error: str) -> int:
    return Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, completed_at=Now(), last_error=error
    )


def rotate_secret(*, actor: Actor, endpoint: WebhookEndpoint, grace: timedelta = ROTATION_GRACE) -> str:
    """A new secret; the previous one keeps signing too (a second signature) until `grace` ends."""
    with transaction.atomic():
        endpoint = lock_current(endpoint)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + grace
        endpoint.secret = mint_webhook_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        audit.record(
            actor=actor,
            action="webhook_endpoint.rotate_secret",
            app_id=endpoint.app.app_id,
            detail={
                "endpoint_id": endpoint.endpoint_id,
                "previous_valid_until": endpoint.previous_secret_expires_at.isoformat(),
            },
        )
    return endpoint.secret


def disable_endpoint(*, actor: Actor, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Stop sending to an endpoint; its waiting deliveries fail (they can be redelivered).
    Returns False when it was deleted or already disabled for the same reason."""
    with transaction.atomic():
        changed = (
            WebhookEndpoint.objects.current()
            .filter(pk=endpoint.pk)
            .exclude(enabled=False, disabled_reason=reason)
            .update(enabled=False, disabled_reason=reason)
        )
        if not changed:
            return False  # deleted (off already, its reason kept) or disabled already
        failed = _fail_waiting(endpoint, "endpoint disabled")
        audit.record(
            actor=actor,
            action="webhook_endpoint.disable",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.endpoint_id, "reason": reason, "deliveries_failed": failed},
        )
    endpoint.enabled, endpoint.disabled_reason = False, reason
    return True


def enable_endpoint(*, actor: Actor, endpoint: WebhookEndpoint) -> bool:
    """Send to it again, what waited first; returns False when it was enabled already."""
    with transaction.atomic():
        current = WebhookEndpoint.objects.current().filter(pk=endpoint.pk)
        if not current.filter(enabled=False).update(enabled=True, disabled_reason=""):
            if not current.exists():
                raise Conflict("The endpoint was deleted", code="endpoint_deleted")
            return False
        outbox.wake_on_commit("webhooks")  # what waited for it goes now
        audit.record(
            actor=actor,
            action="webhook_endpoint.enable",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.endpoint_id},
        )
    endpoint.enabled, endpoint.disabled_reason = True, ""
    return True


def _lock_enabled(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """The endpoint under its row lock (so no disable or delete commits meanwhile), if enabled."""
    locked = lock_current(endpoint)
    if not locked.enabled:
        raise Conflict("The endpoint is disabled; enable it first", code="endpoint_disabled")
    return locked


_DELIVERY = Delivery._meta.db_table
# New places at the tails of their queues, in the order given; held like a new delivery.
REOPEN_SQL = f"""
UPDATE {_DELIVERY} AS d
SET status = {PENDING}, attempts = 0, completed_at = NULL, lease_expires_at = NULL, queue_position = r.position,
    next_attempt_at = {held_until("d.endpoint_id", "d.ordering_key")}
FROM unnest(%(ids)s::bigint[], %(positions)s::bigint[]) AS r(id, position)
WHERE d.id = r.id
"""


def _reopen(deliveries) -> int:
    """Pending again with a new round of retries, each after whatever of its queue is pending
    now, in their original order; the dispatcher is woken after commit."""
    # The order the events happened in (an earlier redelivery may have moved one's position).
    ids = list(deliveries.select_for_update().order_by("event_id", "id").values_list("pk", flat=True))
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval('{QUEUE_POSITION_SEQUENCE}') FROM generate_series(1, %s)", [len(ids)])
        positions = sorted(position for (position,) in cursor.fetchall())
        cursor.execute(REOPEN_SQL, {"ids": ids, "positions": positions})
    outbox.wake_on_commit("webhooks")
    return len(ids)


def redeliver(*, actor: Actor, delivery: Delivery) -> None:
    """Send a delivered or failed delivery again, under the same webhook-id, with a new round of
    retries, after whatever of its queue is pending now; a pending one is 409."""
    with transaction.atomic():
        _lock_enabled(delivery.endpoint)
        if not _reopen(Delivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.PENDING)):
            raise Conflict("The delivery is pending already", code="delivery_pending")
        audit.record(
            actor=actor,
            action="webhook_delivery.redeliver",
            app_id=delivery.endpoint.app.app_id,
            # On its room's (or, for command.result, its session's) timeline.
            **(
                {"room_id": delivery.ordering_key}
                if delivery.event.room_id
                else {"session_uuid": delivery.ordering_key}
            ),
            detail={"delivery_id": delivery.pk, "endpoint_id": delivery.endpoint.endpoint_id},
        )


def redeliver_failed(*, actor: Actor, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every failed delivery of an endpoint created since `since`, in their original
    order, after whatever of their queues is pending now."""
    now = timezone.now()
    if since > now or since < now - timedelta(days=settings.WEBHOOK_ATTEMPT_RETENTION_DAYS):
        raise ServiceError(
            "`since` must be in the past, within the retention period",
            detail={"since": [f"Must be in the past and within {settings.WEBHOOK_ATTEMPT_RETENTION_DAYS:g} days."]},
        )
    with transaction.atomic():
        _lock_enabled(endpoint)
        count = _reopen(Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.FAILED, created_at__gte=since))
        audit.record(
            actor=actor,
            action="webhook_delivery.redeliver_failed",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.endpoint_id, "since": since.isoformat(), "count": count},
        )
    return count
