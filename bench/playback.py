"""Playback watchdog: the sweep's cost against the number of rooms, and timeout lateness.

- sweep cost: `expire_due` with nothing due, at 1,000 stopped + 100 playing rooms (baseline)
  and at 100,000 stopped + 10,000 playing rooms; then with 100 of those plays due.
  Target: under 20 ms when nothing is due, growing with what is due, not with rooms.
- lateness: 1,000 plays whose engine never answers (`#hang`), started at 200/s, each failed by
  its precise timer in one worker process; lateness = failure time - deadline. Target p99 < 1 s.
  Run twice: quiet, then while the same worker (consuming every queue) drains a flood of
  20,000 webhooks; the flood must not add more than 100 ms to the p99.
"""

import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from . import receiver as bench_receiver
from .receiver import percentile
from .setup import start_worker, stop

HUNG_PLAYS, PLAY_RATE, TIMEOUT = 1000, 200, 3
FLOOD_EVENTS = 20_000


def fill(app, *, stopped: int, playing: int, offset: int) -> None:
    """Bulk rows straight in SQL: rooms, and one far-from-due playback per playing room."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO conferences_room (room_id, app_id, name, node, playback_status, playback_operation_id,
                                          playback_urls, volume, created_at)
            SELECT 'bench-room-' || n, %(app)s, 'r' || n, 'bench',
                   CASE WHEN n < %(offset)s + %(playing)s THEN 'playing' ELSE 'stopped' END,
                   CASE WHEN n < %(offset)s + %(playing)s THEN gen_random_uuid() END, '[]', 0, now()
            FROM generate_series(%(offset)s, %(offset)s + %(playing)s + %(stopped)s - 1) AS n
            """,
            {"app": app.pk, "offset": offset, "playing": playing, "stopped": stopped},
        )
        cursor.execute(
            """
            INSERT INTO conferences_playbackoperation (operation_id, room_id, urls, state, dispatched_at, deadline_at,
                                                       error)
            SELECT playback_operation_id, id, '[]', 'playing', now(), now() + interval '1 hour', ''
            FROM conferences_room WHERE playback_status = 'playing' AND room_id LIKE 'bench-room-%%'
              AND NOT EXISTS (SELECT 1 FROM conferences_playbackoperation p WHERE p.room_id = conferences_room.id)
            """
        )
        cursor.execute("ANALYZE")


def time_sweep(runs: int = 30) -> float:
    from conferences.actors import Actor
    from conferences.services import playback

    actor = Actor.system("bench")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        playback.expire_due(actor=actor)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def sweep_cost(app) -> None:
    from django.utils import timezone

    from conferences.actors import Actor
    from conferences.models import PlaybackOperation
    from conferences.services import playback

    fill(app, stopped=1_000, playing=100, offset=0)
    small = time_sweep()
    fill(app, stopped=99_000, playing=9_900, offset=1_100)
    large = time_sweep()
    due_ids = list(PlaybackOperation.objects.filter(state="playing").values_list("pk", flat=True)[:100])
    PlaybackOperation.objects.filter(pk__in=due_ids).update(deadline_at=timezone.now() - timedelta(seconds=1))
    started = time.perf_counter()
    fired = playback.expire_due(actor=Actor.system("bench"))
    with_due = (time.perf_counter() - started) * 1000
    after = time_sweep()
    print("playback watchdog sweep (expire_due), median of 30 runs")
    print(f"  nothing due,   1,100 rooms (baseline)   {small:7.2f} ms")
    print(
        f"  nothing due, 110,000 rooms              {large:7.2f} ms   = {large / small:.2f}x baseline (target < 20 ms)"
    )
    print(
        f"  100 due,     110,000 rooms              {with_due:7.2f} ms   ({fired} timeouts fired, "
        f"{with_due / max(fired, 1):.2f} ms each)"
    )
    print(f"  nothing due again                       {after:7.2f} ms")


def flood_outbox(receiver_url: str) -> int:
    """FLOOD_EVENTS webhooks, one per room, in the outbox with no wake-up published."""
    from django.db import connection

    from conferences import publish
    from conferences.actors import Actor
    from conferences.models import Delivery, Event, WebhookEndpoint
    from conferences.services.tenants import create_app

    app = create_app(actor=Actor.system("bench"), app_id="bench-flood", webhook_url=receiver_url).app
    endpoint = WebhookEndpoint.objects.get(app=app)
    publish._broker_down_until = float("inf")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH event AS (
                INSERT INTO {Event._meta.db_table} (uuid, app_id, event_type, ordering_key, payload, created_at)
                SELECT gen_random_uuid(), %(app)s, 'conference.destroyed', 'flood-' || n,
                       jsonb_build_object('event', 'conference.destroyed', 'app_id', %(app_id)s,
                                          'room_id', 'flood-' || n), now()
                FROM generate_series(1, %(count)s) AS n RETURNING id, ordering_key)
            INSERT INTO {Delivery._meta.db_table} (event_id, endpoint_id, ordering_key, status, attempts,
                                                   total_attempts, next_attempt_at, created_at, last_error)
            SELECT id, %(endpoint)s, ordering_key, 'pending', 0, 0, now(), now(), '' FROM event
            """,
            {"app": app.pk, "app_id": app.app_id, "endpoint": endpoint.pk, "count": FLOOD_EVENTS},
        )
    publish._broker_down_until = 0.0
    return FLOOD_EVENTS


def lateness(app, *, flood_url: str | None = None) -> list[float]:
    from conferences.actors import Actor
    from conferences.models import Delivery, PlaybackOperation
    from conferences.services import outbox, playback
    from conferences.services.rooms import create_room

    actor = Actor.system("bench")
    prefix = "flooded" if flood_url else "hung"
    rooms = [create_room(actor=actor, app=app, name=f"{prefix}{i}") for i in range(HUNG_PLAYS)]
    if flood_url:
        flood_outbox(flood_url)
    worker = start_worker(8, Path(tempfile.mkdtemp(prefix="bench-")) / "worker.log")
    try:
        time.sleep(3)
        if flood_url:
            outbox.wake("webhooks", force=True)
        begin = time.monotonic()
        for n, room in enumerate(rooms):
            pause = begin + n / PLAY_RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            playback.play(actor=actor, app=app, room_id=room.room_id, urls=["https://cdn.example.com/a.wav#hang"])
        hung = PlaybackOperation.objects.filter(room__in=rooms)
        deadline = time.monotonic() + TIMEOUT + 60
        while hung.filter(state="playing").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        late = [
            (ended - dispatched - timedelta(seconds=TIMEOUT)).total_seconds() * 1000
            for dispatched, ended in hung.filter(state="failed", error="playback_timeout").values_list(
                "dispatched_at", "ended_at"
            )
        ]
        flood_left = Delivery.objects.filter(status="pending").count() if flood_url else 0
    finally:
        stop(worker)
    label = (
        f"while draining {FLOOD_EVENTS:,} webhooks ({flood_left:,} still pending at the end)" if flood_url else "quiet"
    )
    print(
        f"playback timeouts, {label}: {len(late)} of {HUNG_PLAYS} hung plays failed by the watchdog "
        f"(one worker process consuming every queue, threads pool, concurrency 8)"
    )
    print(
        f"  lateness after the deadline: p50 {statistics.median(late):.0f} ms, p99 {percentile(late, 0.99):.0f} ms, "
        f"max {max(late):.0f} ms (target p99 < 1000 ms)"
    )
    return late


def main() -> None:
    import os

    os.environ["PLAYBACK_TIMEOUT_SECONDS"] = str(TIMEOUT)
    from django.conf import settings

    from conferences.actors import Actor
    from conferences.services.tenants import create_app

    settings.PLAYBACK_TIMEOUT_SECONDS = TIMEOUT
    app = create_app(actor=Actor.system("bench"), app_id="bench-playback").app
    sweep_cost(app)
    quiet = percentile(lateness(app), 0.99)
    receiver_process, base = bench_receiver.start()
    try:
        flooded = percentile(lateness(app, flood_url=f"{base}/hooks"), 0.99)
    finally:
        receiver_process.terminate()
    print(f"  a webhook flood added {flooded - quiet:.0f} ms to the p99 lateness (target <= 100 ms)")
