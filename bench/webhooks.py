"""Webhook delivery: throughput against the raw limit, and latency at a steady 200 events/s.

- raw limit: the receiver driven by a bare keep-alive aiohttp client, 16 requests in flight;
- throughput: 5,000 events over 100 rooms already in the outbox, one worker process
  (threads pool), from the wake-up to the last receipt;
- latency: events committed at 200/s over 100 rooms for 10 s; commit → receipt p50/p99.
Targets: p50 <= 10 ms and p99 <= 50 ms at 200 events/s; throughput is reported as a share of the raw
limit (the comparison with the same-stack peer is ../shared/bench/run_drain.sh).
"""

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from project.celery import app as celery_app

from . import receiver as bench_receiver
from .receiver import percentile, wait_for_receipts
from .setup import start_worker, stop

EVENTS, ROOMS, CONCURRENCY = 5000, 100, 16
PACED_RATE, PACED_SECONDS = 200, 10


def raw_limit(url: str, body: str) -> float:
    """Requests/s of a bare keep-alive aiohttp client with CONCURRENCY requests in flight."""

    async def run() -> float:
        headers = {"content-type": "application/json", "webhook-id": "raw"}
        per_task = EVENTS // CONCURRENCY
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

            async def worker():
                for _ in range(per_task):
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            return per_task * CONCURRENCY / (time.perf_counter() - started)

    return asyncio.run(run())


def main() -> None:
    from django.db import transaction

    from conferences import publish, webhook_events
    from conferences.actors import Actor
    from conferences.models import Delivery
    from conferences.services import outbox
    from conferences.services.events import record_event
    from conferences.services.locks import lock_live_room
    from conferences.services.rooms import create_room
    from conferences.services.tenants import create_app

    receiver_process, base = bench_receiver.start()
    actor = Actor.system("bench")
    app = create_app(actor=actor, app_id="bench", webhook_url=f"{base}/hooks").app
    rooms = [create_room(actor=actor, app=app, name=f"room{i}") for i in range(ROOMS)]
    sample_body = json.dumps(webhook_events.play_stopped(rooms[0], "00000000-0000-4000-8000-000000000000"))

    def write_event(room, n):
        with transaction.atomic():
            locked = lock_live_room(app=app, room_id=room.room_id)
            event = record_event(app=app, room=locked, payload=webhook_events.play_stopped(locked, f"op-{n}"))
        return event

    raw_before = raw_limit(f"{base}/hooks", sample_body)
    httpx.post(f"{base}/reset")

    # Throughput: fill the outbox with no worker running, then wake every queue at once.
    publish._broker_down_until = float("inf")  # keep the on-commit wake-ups from publishing
    Delivery.objects.all().delete()
    for n in range(EVENTS):
        write_event(rooms[n % ROOMS], n)
    publish._broker_down_until = 0.0
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    celery_app.control.purge()  # no wake-up left over from an earlier run starts the clock early
    worker = start_worker(8, workdir / "worker.log")
    try:
        time.sleep(3)  # let the worker connect before the clock starts
        started = time.time()
        outbox.wake("webhooks", force=True)
        got = wait_for_receipts(base, EVENTS, timeout=300)
        throughput = EVENTS / (max(t for t, _ in got) - started)

        # Latency at a steady rate.
        httpx.post(f"{base}/reset")
        committed = {}
        total = PACED_RATE * PACED_SECONDS
        begin = time.monotonic()
        for n in range(total):
            target = begin + n / PACED_RATE
            pause = target - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            event = write_event(rooms[n % ROOMS], EVENTS + n)
            committed[event.webhook_id] = time.time()
        got = wait_for_receipts(base, total, timeout=120)
        latencies = [(t - committed[msg_id]) * 1000 for t, msg_id in got if msg_id in committed]
    finally:
        stop(worker)
    # The raw limit is measured before and after; the ratio is taken against the higher one.
    raw_after = raw_limit(f"{base}/hooks", sample_body)
    receiver_process.terminate()
    raw = max(raw_before, raw_after)

    ratio = throughput / raw
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print("webhook delivery (one worker process, threads pool, concurrency 8)")
    print(
        f"  raw limit (bare aiohttp, keep-alive) {raw:8.0f} requests/s (before {raw_before:.0f}, after {raw_after:.0f})"
    )
    print(f"  delivery throughput, {EVENTS} events  {throughput:8.0f} events/s   = {ratio:.0%} of raw")
    print(
        f"  latency at {PACED_RATE} events/s, commit -> receipt: p50 {p50:.1f} ms (target <= 10), "
        f"p99 {p99:.1f} ms (target <= 50)"
    )
