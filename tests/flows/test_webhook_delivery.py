"""Webhook delivery end to end: a real worker, a real receiver, the real broker."""

from datetime import timedelta

import pytest
from django.db import transaction
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conferences import publish, webhook_events
from conferences.actors import Actor
from conferences.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from conferences.services import delivery_dispatch, endpoints
from conferences.services.events import record_event
from conferences.services.locks import lock_live_room
from conferences.services.rooms import create_room, destroy_room
from project.celery import app as celery_app
from tests.conftest import assert_valid_event
from tests.support.waiting import eventually

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker", "like_the_worker")]

SYSTEM = Actor.system("tests")


@pytest.fixture
def hooked(make_tenant, receiver):
    tenant = make_tenant(webhook_url=receiver.url)
    tenant.endpoint = WebhookEndpoint.objects.get(app=tenant.app)
    tenant.client = APIClient()
    tenant.client.credentials(HTTP_X_APP_ID=tenant.app.app_id, HTTP_X_API_KEY=tenant.api_key)
    return tenant


def room_events(received, room_id):
    return [r for r in received if r.json.get("room_id") == room_id]


def test_events_arrive_signed_with_exact_bodies(hooked, receiver):
    room_id = hooked.client.post("/api/v1/conferences", {"name": "signed"}, format="json").json()["room_id"]
    assert hooked.client.delete(f"/api/v1/conferences/{room_id}").status_code == 204
    received = receiver.wait_for(lambda r: len(r) == 2)
    assert [r.json for r in received] == [
        {"event": "conference.created", "app_id": hooked.app.app_id, "room_id": room_id, "name": "signed"},
        {"event": "conference.destroyed", "app_id": hooked.app.app_id, "room_id": room_id},
    ]
    verifier = Webhook(hooked.endpoint.secret)
    for request in received:
        assert request.headers["content-type"] == "application/json"
        assert verifier.verify(request.body, request.headers) == request.json
        assert_valid_event(request.json)
    ids = [r.headers["webhook-id"] for r in received]
    assert ids == [e.webhook_id for e in Event.objects.order_by("id")]
    eventually(lambda: Delivery.objects.filter(status="delivered").count() == 2)


def test_a_wrong_secret_does_not_verify(hooked, receiver):
    create_room(actor=SYSTEM, app=hooked.app, name="forged")
    request = receiver.wait_for(lambda r: len(r) == 1)[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoints.mint_webhook_secret()).verify(request.body, request.headers)


def test_a_500_twice_gives_three_attempts_with_one_webhook_id(hooked, receiver):
    answers = iter([500, 500])
    receiver.answer = lambda request: next(answers, 200)
    room = create_room(actor=SYSTEM, app=hooked.app, name="flaky")
    received = receiver.wait_for(lambda r: len(r) == 3)
    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert all(r.json["room_id"] == room.room_id for r in received)
    for request in received:
        Webhook(hooked.endpoint.secret).verify(request.body, request.headers)
    delivery = Delivery.objects.get()
    eventually(lambda: Delivery.objects.get().status == "delivered")
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert all(a.duration_ms is not None for a in attempts)
    assert attempts[0].error == "HTTP 500" and attempts[2].error == ""
    assert attempts[2].response_excerpt == '{"ok": true}'


def test_a_stuck_room_holds_its_later_events_while_other_rooms_flow(hooked, receiver):
    stuck = create_room(actor=SYSTEM, app=hooked.app, name="stuck")
    failures = iter([500, 500, 500])

    def answer(request):
        if request.json["room_id"] == stuck.room_id and request.json["event"] == "conference.created":
            return next(failures, 200)
        return 200

    receiver.answer = answer
    destroy_room(actor=SYSTEM, app=hooked.app, room_id=stuck.room_id)
    flowing = [create_room(actor=SYSTEM, app=hooked.app, name=f"flowing{i}") for i in range(3)]
    for room in flowing:
        destroy_room(actor=SYSTEM, app=hooked.app, room_id=room.room_id)

    received = receiver.wait_for(lambda r: len(r) == 4 + 1 + 6)
    stuck_requests = room_events(received, stuck.room_id)
    assert [(r.json["event"]) for r in stuck_requests] == ["conference.created"] * 4 + ["conference.destroyed"]
    first_stuck_success = stuck_requests[3]
    other_rooms = [r for r in received if r.json["room_id"] != stuck.room_id]
    # Other rooms were delivered while the stuck head was still failing...
    assert any(r.at < first_stuck_success.at for r in other_rooms)
    # ...and the stuck room's later event only after its head got through.
    assert stuck_requests[4].at >= first_stuck_success.at
    for room in flowing:
        assert [r.json["event"] for r in room_events(received, room.room_id)] == [
            "conference.created",
            "conference.destroyed",
        ]


def test_a_finally_failed_head_lets_the_next_event_go(hooked, receiver):
    room = create_room(actor=SYSTEM, app=hooked.app, name="doomed")
    receiver.answer = lambda request: 503 if request.json["event"] == "conference.created" else 200
    destroy_room(actor=SYSTEM, app=hooked.app, room_id=room.room_id)
    received = receiver.wait_for(lambda r: any(x.json["event"] == "conference.destroyed" for x in r))
    schedule_length = 3  # WORKER_ENV: three retries after the first attempt
    assert [r.json["event"] for r in received] == ["conference.created"] * (1 + schedule_length) + [
        "conference.destroyed"
    ]
    head = Delivery.objects.get(event__event_type="conference.created")
    assert (head.status, head.attempts, head.last_status_code) == ("failed", 4, 503)


def test_410_disables_the_endpoint(hooked, receiver):
    receiver.answer = lambda request: 410
    room = create_room(actor=SYSTEM, app=hooked.app, name="gone")
    receiver.wait_for(lambda r: len(r) == 1)
    eventually(lambda: not WebhookEndpoint.objects.get(pk=hooked.endpoint.pk).enabled)
    endpoint = WebhookEndpoint.objects.get(pk=hooked.endpoint.pk)
    assert "410" in endpoint.disabled_reason
    assert Delivery.objects.get().status == "failed"
    destroy_room(actor=SYSTEM, app=hooked.app, room_id=room.room_id)
    assert Delivery.objects.count() == 1  # a disabled endpoint gets no new deliveries
    assert len(receiver.received) == 1


def test_events_of_one_room_arrive_in_order_across_many_rooms(hooked, receiver):
    rooms = [create_room(actor=SYSTEM, app=hooked.app, name=f"busy{i}") for i in range(5)]
    for round_number in range(8):
        for room in rooms:
            with transaction.atomic():
                locked = lock_live_room(app=hooked.app, room_id=room.room_id)
                record_event(
                    app=hooked.app, room=locked, payload=webhook_events.play_stopped(locked, f"op-{round_number}")
                )
    received = receiver.wait_for(lambda r: len(r) == 5 * 9)
    for room in rooms:
        ops = [r.json.get("operation_id") for r in room_events(received, room.room_id)]
        assert ops == [None] + [f"op-{n}" for n in range(8)]


def _broker_unreachable(monkeypatch) -> None:
    """This process publishes to a port where no broker listens (the worker keeps the real one)."""
    real_connection_for_write = celery_app.connection_for_write
    monkeypatch.setattr(publish, "_broker_down_until", 0.0)
    monkeypatch.setattr(celery_app, "connection_for_write", lambda: real_connection_for_write("redis://127.0.0.1:1/0"))
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)


def _broker_back(monkeypatch) -> None:
    monkeypatch.undo()
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    monkeypatch.setattr(publish, "_broker_down_until", 0.0)


def test_broker_down_while_the_api_creates_rooms_answers_fast_and_loses_nothing(hooked, receiver, monkeypatch):
    _broker_unreachable(monkeypatch)
    publishes = []  # whether each publish that reached the broker failed
    real_send_task = celery_app.send_task

    def send_task(*args, **kwargs):
        try:
            result = real_send_task(*args, **kwargs)
        except Exception:
            publishes.append("failed")
            raise
        publishes.append("sent")
        return result

    monkeypatch.setattr(celery_app, "send_task", send_task)
    rooms = [create_room(actor=SYSTEM, app=hooked.app, name=f"outage{i}") for i in range(5)]
    api_rooms = []
    for i in range(20):
        response = hooked.client.post("/api/v1/conferences", {"name": f"outage-api{i}"}, format="json")
        assert response.status_code == 201
        api_rooms.append(response.json()["room_id"])
    # The dead broker was tried once; the breaker skipped the 24 other wake-ups at once.
    assert publishes == ["failed"]
    assert Delivery.objects.filter(status="pending").count() == 25
    assert receiver.received == []

    # The broker is back: the periodic re-drive (what beat sends) wakes a dispatcher.
    _broker_back(monkeypatch)
    assert delivery_dispatch.redrive() is True
    received = receiver.wait_for(lambda r: len(r) == 25)
    assert {r.json["room_id"] for r in received} == {room.room_id for room in rooms} | set(api_rooms)


def test_a_delivery_held_by_a_dead_worker_is_re_driven(hooked, receiver, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(publish, "_broker_down_until", float("inf"))  # no wake-up reaches a worker
    create_room(actor=SYSTEM, app=hooked.app, name="orphaned")
    # A worker claims the head, writes its attempt, and dies before sending; its lease runs out.
    [claim] = delivery_dispatch.claim(limit=10)
    assert delivery_dispatch.claim(limit=10) == []
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    monkeypatch.undo()

    assert delivery_dispatch.redrive() is True
    received = receiver.wait_for(lambda r: len(r) == 1)
    assert received[0].headers["webhook-id"] == claim.msg_id
    eventually(lambda: Delivery.objects.get().status == "delivered")
    attempts = list(DeliveryAttempt.objects.order_by("number").values_list("number", "status_code"))
    assert attempts == [(1, None), (2, 200)]  # the dead worker's attempt stays on record


def test_redelivery_sends_a_failed_delivery_again(hooked, receiver):
    receiver.answer = lambda request: 500
    create_room(actor=SYSTEM, app=hooked.app, name="redo")
    eventually(lambda: Delivery.objects.get().status == "failed")
    receiver.answer = lambda request: 200
    endpoints.redeliver(actor=Actor.staff("support"), delivery=Delivery.objects.get())
    received = receiver.wait_for(lambda r: len(r) == 5)
    assert len({r.headers["webhook-id"] for r in received}) == 1
    eventually(lambda: Delivery.objects.get().status == "delivered")


def test_redeliver_failed_since_a_time(hooked, receiver):
    from django.utils import timezone

    receiver.answer = lambda request: 500
    for i in range(3):
        create_room(actor=SYSTEM, app=hooked.app, name=f"bulk{i}")
    eventually(lambda: Delivery.objects.filter(status="failed").count() == 3)
    receiver.answer = lambda request: 200
    count = endpoints.redeliver_failed(
        actor=Actor.staff("support"), endpoint=hooked.endpoint, since=timezone.now() - timedelta(minutes=5)
    )
    assert count == 3
    eventually(lambda: Delivery.objects.filter(status="delivered").count() == 3)


def test_rotated_secret_signs_with_both_secrets(hooked, receiver):
    old_secret = hooked.endpoint.secret
    new_secret = endpoints.rotate_secret(actor=Actor.staff("support"), endpoint=hooked.endpoint)
    create_room(actor=SYSTEM, app=hooked.app, name="rotated")
    request = receiver.wait_for(lambda r: len(r) == 1)[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(request.body, request.headers)
    Webhook(new_secret).verify(request.body, request.headers)
