"""Playback watchdog: the sweep's cost against the number of rooms, and timeout lateness.

- sweep cost: `expire_due` with nothing due, at 1,000 stopped + 100 playing rooms (baseline)
  and at 100,000 stopped + 10,000 playing rooms; then with 100 of those plays due.
  Target: under 20 ms when nothing is due, growing with what is due, not with rooms.
- lateness: 1,000 plays whose engine never answers (`#hang`), started at 200/s, each failed by
  its precise timer in one worker process; lateness = failure time - deadline. Target p99 < 1 s.
"""

import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from .setup import start_worker, stop

HUNG_PLAYS, PLAY_RATE, TIMEOUT = 1000, 200, 3


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


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
    print(f"  nothing due, 110,000 rooms              {large:7.2f} ms   = {large / small:.2f}x baseline (target < 20 ms)")
    print(f"  100 due,     110,000 rooms              {with_due:7.2f} ms   ({fired} timeouts fired, "
          f"{with_due / max(fired, 1):.2f} ms each)")
    print(f"  nothing due again                       {after:7.2f} ms")


def lateness(app) -> None:

    from conferences.actors import Actor
    from conferences.models import PlaybackOperation
    from conferences.services import playback
    from conferences.services.rooms import create_room

    actor = Actor.system("bench")
    rooms = [create_room(actor=actor, app=app, name=f"hung{i}") for i in range(HUNG_PLAYS)]
    worker = start_worker(8, Path(tempfile.mkdtemp(prefix="bench-")) / "worker.log")
    try:
        time.sleep(3)
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
            for dispatched, ended in hung.filter(state="failed", error="playback_timeout")
            .values_list("dispatched_at", "ended_at")
        ]
    finally:
        stop(worker)
    print(f"playback timeouts: {len(late)} of {HUNG_PLAYS} hung plays failed by the watchdog "
          f"(one worker process, threads pool, concurrency 8)")
    print(f"  lateness after the deadline: p50 {statistics.median(late):.0f} ms, p99 {percentile(late, 0.99):.0f} ms, "
          f"max {max(late):.0f} ms (target p99 < 1000 ms)")


def main() -> None:
    import os

    os.environ["PLAYBACK_TIMEOUT_SECONDS"] = str(TIMEOUT)
    from django.conf import settings

    from conferences.actors import Actor
    from conferences.services.tenants import create_app

    settings.PLAYBACK_TIMEOUT_SECONDS = TIMEOUT
    app = create_app(actor=Actor.system("bench"), app_id="bench-playback").app
    sweep_cost(app)
    lateness(app)
