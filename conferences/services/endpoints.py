"""Webhook endpoints and what staff or apps do with their deliveries: create, rotate the
secret, disable, enable, redeliver one delivery, recover the failures since a time."""

import base64
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from ..actors import Actor
from ..errors import Conflict, ServiceError
from ..event_schema import event_schemas
from ..models import App, Delivery, WebhookEndpoint
from ..models.webhooks import DeliveryStatus
from ..ssrf import check_webhook_url
from . import audit, outbox

ROTATION_GRACE = timedelta(hours=24)


def mint_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def validate_endpoint(*, url: str, event_types: list[str]) -> None:
    problems = {}
    if reason := check_webhook_url(url):
        problems["url"] = [reason]
    unknown = sorted(set(event_types) - set(event_schemas()))
    if unknown:
        problems["event_types"] = [f"Unknown event types: {', '.join(unknown)}"]
    if problems:
        raise ServiceError(f"Invalid webhook endpoint: {next(iter(problems.values()))[0]}", detail=problems)


def create_endpoint(*, actor: Actor, app: App, url: str, event_types: list[str] | None = None) -> WebhookEndpoint:
    event_types = event_types or []
    validate_endpoint(url=url, event_types=event_types)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            app=app, url=url, secret=mint_webhook_secret(), event_types=event_types
        )
        audit.record(
            actor=actor,
            action="webhook_endpoint.create",
            app_id=app.app_id,
            request={"url": url.split("?", 1)[0], "event_types": event_types},  # a query may hold a token
            detail={"endpoint_id": endpoint.pk},
        )
    return endpoint


def rotate_secret(*, actor: Actor, endpoint: WebhookEndpoint, grace: timedelta = ROTATION_GRACE) -> str:
    """A new secret; the previous one keeps signing too (a second signature) until `grace` ends."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update(of=("self",)).select_related("app").get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + grace
        endpoint.secret = mint_webhook_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        audit.record(
            actor=actor,
            action="webhook_endpoint.rotate_secret",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.pk, "previous_valid_until": endpoint.previous_secret_expires_at.isoformat()},
        )
    return endpoint.secret


def disable_endpoint(*, actor: Actor, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop sending to an endpoint; its waiting deliveries fail (they can be redelivered)."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason)
        failed = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, completed_at=Now(), last_error="endpoint disabled"
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


def _reopen(deliveries) -> int:
    """Pending again with a new round of retries; the dispatcher is woken after commit."""
    ids = list(deliveries.select_for_update().values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=Now(), completed_at=None, lease_expires_at=None,
    )
    if ids:
        outbox.wake_on_commit("webhooks")
    return len(ids)


def redeliver(*, actor: Actor, delivery: Delivery) -> None:
    """Send a delivered or failed delivery again, with a new round of retries."""
    _refuse_disabled(delivery.endpoint)
    with transaction.atomic():
        reopened = _reopen(Delivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.PENDING))
        audit.record(
            actor=actor,
            action="webhook_delivery.redeliver",
            outcome="ok" if reopened else "already_open",
            app_id=delivery.endpoint.app.app_id,
            detail={"delivery_id": delivery.pk, "endpoint_id": delivery.endpoint_id},
        )


def redeliver_failed(*, actor: Actor, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every failed delivery of an endpoint created since `since`."""
    _refuse_disabled(endpoint)
    with transaction.atomic():
        count = _reopen(Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.FAILED, created_at__gte=since))
        audit.record(
            actor=actor,
            action="webhook_delivery.redeliver_failed",
            app_id=endpoint.app.app_id,
            detail={"endpoint_id": endpoint.pk, "since": since.isoformat(), "count": count},
        )
    return count
