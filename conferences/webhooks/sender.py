"""The one pooled HTTP client of a worker process, and a single POST with its outcome."""

import threading
import time
from dataclasses import dataclass

import httpcore
import httpx
from django.conf import settings

from .ssrf import BlockedAddress, GuardedBackend

EXCERPT_BYTES = 2048

_client: httpx.Client | None = None
_client_lock = threading.Lock()


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, limits: httpx.Limits):
        super().__init__(limits=limits)
        # httpx takes no network backend, its pool (httpcore) does: rebuild the pool with the guard.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(),
        )


def client() -> httpx.Client:
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                limits = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30)
                _client = httpx.Client(
                    transport=GuardedTransport(limits),
                    timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS),
                    follow_redirects=False,  # a redirect could point anywhere; 3xx is a failure
                    trust_env=False,
                    headers={"user-agent": "conference-control-plane-webhooks/1"},
                )
    return _client


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    excerpt: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


def post(url: str, *, body: str, headers: dict[str, str]) -> SendResult:
    started = time.monotonic()
    status_code, excerpt, error = None, "", ""
    deadline = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        with client().stream("POST", url, content=body.encode(), headers=headers) as response:
            status_code = response.status_code
            received = b""
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= EXCERPT_BYTES or time.monotonic() - started > deadline:
                    break
            excerpt = received[:EXCERPT_BYTES].decode("utf-8", "replace")
    except httpx.TimeoutException:
        error = f"timeout after {deadline:g} s"
    except httpx.ConnectError as exc:
        error = f"blocked: {exc}" if isinstance(exc.__cause__, BlockedAddress) else f"connect error: {exc}"
    except Exception as exc:  # any failure of one send is that attempt's error, never the worker's
        error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    if not error and elapsed > deadline:
        error = f"timeout: answered after {elapsed:.1f} s"
    # PostgreSQL text cannot hold NUL; a receiver must not be able to break the bookkeeping.
    return SendResult(status_code, excerpt.replace("\x00", ""), error.replace("\x00", ""), int(elapsed * 1000))
