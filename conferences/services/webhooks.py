import base64
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..actors import Actor
from ..errors import ServiceError
from ..event_schema import event_schemas
from ..models import App, WebhookEndpoint
from ..webhooks.ssrf import check_webhook_url
from . import audit

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
