"""Webhook delivery under hostile receivers and several workers: real workers, real sockets.

The worker runs with WEBHOOK_TIMEOUT_SECONDS=2 and retries after 0.5 s (tests/support/worker.py).
"""

import random
import socket
import threading
import time

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conferences import webhook_events
from conferences.actors import Actor
from conferences.models import Delivery, DeliveryAttempt
from conferences.services.events import record_event
from conferences.services.locks import lock_live_room
from conferences.services.rooms import create_room, destroy_room
from tests.support.waiting import eventually
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker", "like_the_worker")]

SYSTEM = Actor.system("tests")


class TricklingReceiver:
    """Reads each request, then sends its response headers one byte every `pause` seconds."""

    def __init__(self, pause: float = 0.5):
        self.pause = pause
        self.requests = 0
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hooks"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection):
        with connection:
            connection.settimeout(30)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                received += chunk
            self.requests += 1
            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok":
                if self._stop.wait(self.pause):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return  # the sender gave up: its deadline

    def close(self):
        self._stop.set()
        self._server.close()


class SilentReceiver:
    """Accepts connections (the kernel does) and never answers."""

    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hooks"

    def close(self):
        self._server.close()


def _percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _create_rooms_timed(app, count: int, prefix: str) -> dict[str, float]:
    """room_id → when its conference.created was committed (monotonic)."""
    committed = {}
    for n in range(count):
        room = create_room(actor=SYSTEM, app=app, name=f"{prefix}{n}")
        committed[room.room_id] = time.monotonic()
    return committed


def test_a_trickling_receiver_is_cut_off_at_the_deadline_while_other_apps_flow(make_tenant, receiver):
    trickle = TricklingReceiver(pause=0.5)
    try:
        slow_app = make_tenant(webhook_url=trickle.url).app
        healthy_app = make_tenant(webhook_url=receiver.url).app
        for n in range(8):
            create_room(actor=SYSTEM, app=slow_app, name=f"slow{n}")
        eventually(lambda: trickle.requests >= 8, timeout=10)  # every slow attempt is in flight

        committed = _create_rooms_timed(healthy_app, 200, "healthy")
        received = receiver.wait_for(lambda r: len(r) >= 200, timeout=60)
        latencies = [request.at - committed[request.json["room_id"]] for request in received]
        assert _percentile(latencies, 0.99) < 1.0, sorted(latencies)[-5:]

        # The slow attempts ended at the 2 s deadline with a timeout, and were tried again.
        eventually(lambda: DeliveryAttempt.objects.filter(delivery__endpoint__app=slow_app, number=2).count() == 8)
        first_attempts = DeliveryAttempt.objects.filter(delivery__endpoint__app=slow_app, number=1)
        assert {attempt.error for attempt in first_attempts} == {"timeout after 2 s"}
        assert all(2000 <= attempt.duration_ms < 3000 for attempt in first_attempts)
        assert not Delivery.objects.filter(endpoint__app=slow_app, status="delivered").exists()
    finally:
        trickle.close()


def test_a_dead_endpoint_with_a_thousand_pending_deliveries_does_not_delay_another_app(make_tenant, receiver):
    silent = SilentReceiver()
    try:
        dead_app = make_tenant(webhook_url=silent.url).app
        healthy_app = make_tenant(webhook_url=receiver.url).app
        for n in range(1000):
            create_room(actor=SYSTEM, app=dead_app, name=f"dead{n}")
        assert Delivery.objects.filter(endpoint__app=dead_app, status="pending").count() == 1000

        committed = _create_rooms_timed(healthy_app, 50, "alive")
        received = receiver.wait_for(lambda r: len(r) >= 50, timeout=30)
        latencies = [request.at - committed[request.json["room_id"]] for request in received]
        assert max(latencies) < 1.0, " ".join(f"{x:.2f}" for x in latencies)
        # Meanwhile the dead endpoint had no more than its cap in flight.
        in_flight = Delivery.objects.filter(
            endpoint__app=dead_app, status="pending", lease_expires_at__gt=timezone.now()
        )
        assert in_flight.count() <= settings.WEBHOOK_ENDPOINT_CONCURRENCY
        finished = DeliveryAttempt.objects.filter(delivery__endpoint__app=dead_app, duration_ms__isnull=False)
        assert set(finished.values_list("error", flat=True)) == {"timeout after 2 s"}  # it held its slots
    finally:
        silent.close()


def test_per_room_order_holds_under_four_workers_and_random_failures(make_tenant, receiver, tmp_path):
    rooms_count, plays = 50, 3
    chance = random.Random(20261129)
    lock = threading.Lock()

    def flaky(request):
        with lock:
            return 500 if chance.random() < 0.3 else 200

    receiver.answer = flaky
    extra_workers = [WorkerProcess(tmp_path / f"worker{n}.log") for n in range(3)]
    try:
        app = make_tenant(webhook_url=receiver.url).app
        rooms = [create_room(actor=SYSTEM, app=app, name=f"ordered{n}") for n in range(rooms_count)]
        for round_number in range(plays):
            for room in rooms:
                with transaction.atomic():
                    locked = lock_live_room(app=app, room_id=room.room_id)
                    record_event(
                        app=app, room=locked, payload=webhook_events.play_stopped(locked, f"op-{round_number}")
                    )
        for room in rooms:
            destroy_room(actor=SYSTEM, app=app, room_id=room.room_id)
        total = rooms_count * (plays + 2)
        eventually(lambda: Delivery.objects.filter(status__in=["delivered", "failed"]).count() == total, timeout=120)
    finally:
        for worker in extra_workers:
            worker.stop()

    expected = ["created"] + [f"op-{n}" for n in range(plays)] + ["destroyed"]
    received = receiver.events()
    for room in rooms:
        arrivals = [_label(event) for event in received if event["room_id"] == room.room_id]
        # Arrival order follows commit order: a retry repeats an event, never jumps ahead of one.
        positions = [expected.index(label) for label in arrivals]
        assert positions == sorted(positions), (room.room_id, arrivals)
        assert set(arrivals) == set(expected)
    # Each event succeeded at most once: no duplicate sends by competing workers.
    delivered = Delivery.objects.filter(status="delivered").values_list("pk", flat=True)
    successes = DeliveryAttempt.objects.filter(delivery__in=delivered, status_code=200).count()
    assert successes == len(delivered)


def _label(event: dict) -> str:
    if event["event"] == "conference.created":
        return "created"
    if event["event"] == "conference.destroyed":
        return "destroyed"
    return event["operation_id"]
