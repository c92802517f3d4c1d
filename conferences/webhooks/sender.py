"""Sending webhooks: one asyncio loop per worker process, with one pooled keep-alive client,
sending many requests at once for the thread that dispatches deliveries.

Every attempt has one absolute deadline (WEBHOOK_TIMEOUT_SECONDS) covering DNS, connect, the
request, the response headers and the body excerpt, so a receiver that trickles bytes is cut
off. Connections go only to addresses the SSRF guard checked (the client's resolver is the
guard; IP literals are checked before the request). Redirects are not followed.
"""

import asyncio
import atexit
import concurrent.futures
import contextlib
import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp.abc import AbstractResolver
from django.conf import settings
from yarl import URL

from ..ssrf import BlockedAddress, check_addresses, resolve_public

EXCERPT_BYTES = 2048
USER_AGENT = "conference-control-plane-webhooks/1"
# Name resolution runs in threads (getaddrinfo blocks); enough of them that a slow resolver
# for one tenant's host does not queue every other lookup behind it.
DNS_THREADS = 16


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    excerpt: str
    error: str
    duration_ms: int
    sent: bool = True  # False: no request was made (nothing to learn about the receiver)

    @property
    def ok(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


class _GuardedResolver(AbstractResolver):
    """Resolves through the SSRF guard: only checked public addresses, at most MAX_ADDRESSES.
    Concurrent lookups of one name share one thread, so a name whose nameserver hangs holds
    one of the lookup threads, not all of them."""

    def __init__(self, executor: concurrent.futures.Executor):
        self._executor = executor
        self._lookups: dict[tuple[str, int], asyncio.Future] = {}

    async def resolve(self, host, port=0, family=socket.AF_INET):
        key = (host, port)
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.get_running_loop().run_in_executor(self._executor, resolve_public, host, port)
            self._lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(key, None))
        addresses = await asyncio.shield(lookup)  # one waiter's deadline does not cancel the others'
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self):
        pass


class Sender:
    """A daemon thread running an asyncio loop and one aiohttp session for this process."""

    def __init__(self):
        self._dns = concurrent.futures.ThreadPoolExecutor(DNS_THREADS, thread_name_prefix="webhook-dns")
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="webhook-sender", daemon=True).start()
        self._session = asyncio.run_coroutine_threadsafe(self._open_session(), self._loop).result()
        atexit.register(self.close)

    def close(self) -> None:
        """Close the pooled connections (at exit: no warnings about unclosed sessions)."""
        if not self._session.closed:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(timeout=2)

    async def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            resolver=_GuardedResolver(self._dns),
            use_dns_cache=False,  # re-resolved (and re-checked) for every new connection
            limit=0,  # the dispatcher bounds what is in flight, per endpoint and in all
            keepalive_timeout=30,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),  # the per-attempt deadline is ours
            headers={"user-agent": USER_AGENT},
            auto_decompress=False,
            trust_env=False,
            skip_auto_headers=("accept-encoding",),
        )

    def send_many(self, requests: list[Request]) -> list[concurrent.futures.Future]:
        """Start every request now; each future gives its SendResult (it never raises)."""
        futures = [concurrent.futures.Future() for _ in requests]
        deadline = settings.WEBHOOK_TIMEOUT_SECONDS

        def start():
            for request, future in zip(requests, futures, strict=True):
                task = self._loop.create_task(self._attempt(request, deadline))
                task.add_done_callback(lambda task, future=future: future.set_result(_result_of(task)))

        self._loop.call_soon_threadsafe(start)
        return futures

    async def _attempt(self, request: Request, deadline: float) -> SendResult:
        started = time.monotonic()
        status_code, excerpt, error = None, b"", ""
        try:
            async with asyncio.timeout(deadline):
                _check_ip_literal(request.url)
                async with self._session.post(
                    request.url, data=request.body, headers=request.headers, allow_redirects=False
                ) as response:
                    status_code = response.status
                    while len(excerpt) < EXCERPT_BYTES:
                        chunk = await response.content.read(EXCERPT_BYTES - len(excerpt))
                        if not chunk:
                            break
                        excerpt += chunk
        except TimeoutError:
            error = f"timeout after {deadline:g} s"
        except BlockedAddress as exc:
            error = f"blocked: {exc}"
        except aiohttp.ClientConnectorError as exc:
            cause = exc.__cause__
            error = f"blocked: {cause}" if isinstance(cause, BlockedAddress) else f"connect error: {exc}"
        except Exception as exc:  # any failure of one send is that attempt's error, never the worker's
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - started
        # PostgreSQL text cannot hold NUL; a receiver must not be able to break the bookkeeping.
        text = excerpt.decode("utf-8", "replace").replace("\x00", "")
        return SendResult(status_code, text, error.replace("\x00", ""), int(elapsed * 1000))


def _result_of(task: asyncio.Task) -> SendResult:
    if task.cancelled():  # the loop is shutting down with the process
        return SendResult(None, "", "cancelled", 0, sent=False)
    return task.result()  # _attempt turns every failure into a result


def _check_ip_literal(url: str) -> None:
    """The client resolves names through the guard but connects to IP literals directly. The
    host is taken as the client sees it (yarl normalises Unicode forms such as 127。0。0。1)."""
    host = URL(url).host or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    check_addresses(host, [host])


_sender: Sender | None = None
_sender_pid = 0
_sender_lock = threading.Lock()


def sender() -> Sender:
    """This process's sender (a forked child builds its own)."""
    global _sender, _sender_pid
    with _sender_lock:
        if _sender is None or _sender_pid != os.getpid():
            _sender, _sender_pid = Sender(), os.getpid()
        return _sender
