"""A webhook receiver for `make run` (setting DEV_INBOX): the demo app's endpoint points at
POST /dev/inbox, and GET /dev/inbox/ shows what arrived, so a newcomer sees signed webhooks
without running a receiver of their own.

Arrivals are kept in this process's memory only: `make run` serves the web with
`runserver --noreload`, a single process, so the request that receives a webhook and the one
that shows the page see the same list. Under several processes each would see its own.
"""

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .models import WebhookEndpoint

KEPT_ARRIVALS = 200
SHOWN_BODY_CHARACTERS = 64 * 1024
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True)
class Arrival:
    received_at: datetime
    webhook_id: str
    event: str
    verified: bool
    body: str  # indented JSON, or the text as it came when it is not JSON


_arrivals: deque[Arrival] = deque(maxlen=KEPT_ARRIVALS)
_arrivals_lock = threading.Lock()  # runserver answers each request on its own thread


def signing_secrets(url: str) -> list[str]:
    """The secrets that may sign a delivery to `url`: those of the endpoints with that URL,
    and their previous ones while a rotation's grace period lasts."""
    now = timezone.now()
    secrets = []
    rows = (
        WebhookEndpoint.objects.current()
        .filter(url=url)
        .values_list("secret", "previous_secret", "previous_secret_expires_at")
    )
    for secret, previous_secret, previous_expires_at in rows:
        secrets.append(secret)
        if previous_secret and previous_expires_at and previous_expires_at > now:
            secrets.append(previous_secret)
    return secrets


def _verified(body: bytes, headers: dict[str, str], secrets: list[str]) -> bool:
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return True
        except (WebhookVerificationError, ValueError):  # ValueError: a malformed signature or body
            continue
    return False


def _arrival(request: HttpRequest, verified: bool) -> Arrival:
    text = request.body.decode(errors="replace")
    try:
        payload = json.loads(text)
        body = json.dumps(payload, indent=2)
    except ValueError:
        payload, body = None, text
    event = payload.get("event") if isinstance(payload, dict) else None
    return Arrival(
        received_at=timezone.now(),
        webhook_id=request.headers.get("webhook-id", ""),
        event=str(event or ""),
        verified=verified,
        body=body[:SHOWN_BODY_CHARACTERS],
    )


@csrf_exempt  # posted by the webhook workers, not by a form of ours
@require_http_methods(["GET", "POST"])
def inbox(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        with _arrivals_lock:
            arrivals = list(reversed(_arrivals))
        inbox_url = request.build_absolute_uri("/dev/inbox")
        return render(request, "dev_inbox/inbox.html", {"arrivals": arrivals, "inbox_url": inbox_url})

    missing = [name for name in SIGNATURE_HEADERS if not request.headers.get(name)]
    secrets = signing_secrets(request.build_absolute_uri(request.path))
    verified = not missing and _verified(request.body, dict(request.headers), secrets)
    with _arrivals_lock:
        _arrivals.append(_arrival(request, verified))
    if missing:
        return JsonResponse({"error": f"Missing headers: {', '.join(missing)}"}, status=400)
    if not verified:
        return JsonResponse({"error": "No signature verified with the secrets of this URL's endpoints"}, status=401)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("inbox", inbox),  # where endpoints point (the API has no trailing slashes)
    path("inbox/", inbox),  # the page, as a browser is likely to type it
]
