"""Engine commands: the outbox drained to an HTTP engine, against the raw limit of the same
kind of client, and latency at a steady rate.

- raw limit: the engine (a loopback receiver) driven by a bare keep-alive aiohttp client with
  16 requests in flight (the http adapter sends with aiohttp, at most ENGINE_MAX_IN_FLIGHT at
  once);
- throughput: 2,000 volume changes over 200 rooms already in the outbox (10 commands per
  room, each room's in order, one in flight per room), one worker process, from the wake-up
  to the last receipt; every room's commands must arrive in the order they were written;
- latency: volume changes committed at 100/s over 200 rooms for 10 s; commit -> receipt.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from project.celery import app as celery_app

from . import receiver as bench_receiver
from .receiver import percentile, wait_for_receipts
from .setup import start_worker, stop
from .webhooks import raw_limit

COMMANDS, ROOMS, IN_FLIGHT = 2000, 200, 16
PACED_RATE, PACED_SECONDS = 100, 10


def main() -> None:
    from django.test import override_settings

    from conferences import publish
    from conferences.actors import Actor
    from conferences.models import EngineCommand
    from conferences.services import outbox, playback
    from conferences.services.rooms import create_room
    from conferences.services.tenants import create_app

    receiver_process, base = bench_receiver.start()
    os.environ.update(
        ENGINE="http",
        ENGINE_URL=f"{base}/engine",
        ENGINE_SECRET="bench-engine-key",
        ENGINE_MAX_IN_FLIGHT=str(IN_FLIGHT),
    )
    actor = Actor.system("bench")
    app = create_app(actor=actor, app_id="bench-engine").app
    rooms = [create_room(actor=actor, app=app, name=f"engine{i}") for i in range(ROOMS)]

    def change_volume(room, n) -> None:
        playback.set_volume(actor=actor, app=app, room_id=room.room_id, volume=n % 8)

    sample = '{"command":"set_volume","room_id":"raw","volume":1}'
    raw_before = raw_limit(f"{base}/engine", sample)
    httpx.post(f"{base}/reset")

    with override_settings(ENGINE="http", ENGINE_URL=f"{base}/engine", ENGINE_SECRET="bench-engine-key"):
        # Throughput: fill the outbox with no worker running, then wake it.
        publish._broker_down_until = float("inf")  # keep the on-commit wake-ups from publishing
        EngineCommand.objects.all().delete()
        for n in range(COMMANDS):
            change_volume(rooms[n % ROOMS], n)
        publish._broker_down_until = 0.0
        room_of = dict(EngineCommand.objects.values_list("id", "room_id"))
        workdir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
        celery_app.control.purge()
        worker = start_worker(8, workdir / "worker.log")
        try:
            time.sleep(3)  # let the worker connect before the clock starts
            started = time.time()
            outbox.wake("engine", force=True)
            got = wait_for_receipts(base, COMMANDS, timeout=300)
            throughput = COMMANDS / (max(t for t, _ in got) - started)
            arrived = [int(command_id) for _, command_id in sorted(got)]
            per_room: dict[int, list[int]] = {}
            for command_id in arrived:
                per_room.setdefault(room_of[command_id], []).append(command_id)
            in_order = all(ids == sorted(ids) for ids in per_room.values()) and len(arrived) == len(set(arrived))

            # Latency at a steady rate.
            httpx.post(f"{base}/reset")
            first_id = EngineCommand.objects.order_by("-id").values_list("id", flat=True).first() + 1
            committed = []
            total = PACED_RATE * PACED_SECONDS
            begin = time.monotonic()
            for n in range(total):
                pause = begin + n / PACED_RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                change_volume(rooms[n % ROOMS], n)
                committed.append(time.time())
            got = wait_for_receipts(base, total, timeout=120)
            ids = dict(EngineCommand.objects.filter(id__gte=first_id).order_by("id").values_list("id", "id"))
            order = {command_id: index for index, command_id in enumerate(sorted(ids))}
            latencies = [(t - committed[order[int(command_id)]]) * 1000 for t, command_id in got]
        finally:
            stop(worker)
    raw_after = raw_limit(f"{base}/engine", sample)
    receiver_process.terminate()
    raw = max(raw_before, raw_after)

    print(f"engine commands (one worker process, ENGINE=http, {IN_FLIGHT} in flight)")
    print(
        f"  raw limit (bare aiohttp, keep-alive, 16 in flight) {raw:8.0f} requests/s "
        f"(before {raw_before:.0f}, after {raw_after:.0f})"
    )
    print(
        f"  drain, {COMMANDS} commands over {ROOMS} rooms  {throughput:8.0f} commands/s = {throughput / raw:.0%} "
        f"of raw; per-room order {'kept' if in_order else 'BROKEN'}"
    )
    print(
        f"  latency at {PACED_RATE} commands/s, commit -> engine: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms"
    )
