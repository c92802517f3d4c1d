"""Standard Webhooks headers and the exact body of an event."""

import json
from datetime import datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

from ..event_schema import event_schemas


def encode_body(payload: dict) -> str:
    """The body as sent: the schema's keys in the schema's order, compact JSON."""
    order = event_schemas()[payload["event"]]["properties"]
    return json.dumps({key: payload[key] for key in order if key in payload}, separators=(",", ":"))


def signature_headers(*, msg_id: str, timestamp: datetime, body: str, secrets: list[str]) -> dict[str, str]:
    """One `v1,` signature per secret (several while a secret is being rotated)."""
    signatures = " ".join(_signer(secret).sign(msg_id, timestamp, body) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the secret once, not per delivery
