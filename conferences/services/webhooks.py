import base64
import secrets

from django.db import transaction

from ..actors import Actor
from ..models import App, WebhookEndpoint
from . import audit


def mint_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(*, actor: Actor, app: App, url: str, event_types: list[str] | None = None) -> WebhookEndpoint:
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            app=app, url=url, secret=mint_webhook_secret(), event_types=event_types or []
        )
        audit.record(
            actor=actor,
            action="webhook_endpoint.create",
            app_id=app.app_id,
            request={"url": url, "event_types": event_types or []},
        )
    return endpoint
