"""An app manages its webhooks through the API, end to end: a real worker, a real receiver."""

import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from conferences.models import Delivery
from tests.support.waiting import eventually

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker", "like_the_worker")]


def test_an_endpoints_whole_life_through_the_api(tenant, receiver):
    api = APIClient()
    api.credentials(HTTP_X_APP_ID=tenant.app.app_id, HTTP_X_API_KEY=tenant.api_key)
    started = timezone.now()

    def room(name):
        return api.post("/api/v1/conferences", {"name": name}, format="json").json()["room_id"]

    # Create: the receiver gets signed events.
    created = api.post("/api/v1/webhooks/endpoints", {"url": receiver.url}, format="json")
    assert created.status_code == 201
    endpoint = created.json()
    path = f"/api/v1/webhooks/endpoints/{endpoint['endpoint_id']}"
    first = room("first")
    [request] = receiver.wait_for(lambda r: len(r) == 1)
    assert Webhook(endpoint["secret"]).verify(request.body, request.headers)["room_id"] == first

    # Filter by event type: only destructions from now on.
    api.patch(path, {"event_types": ["conference.destroyed"]}, format="json")
    second = room("second")
    assert api.delete(f"/api/v1/conferences/{second}").status_code == 204
    received = receiver.wait_for(lambda r: len(r) == 2)
    assert received[1].json["event"] == "conference.destroyed" and received[1].json["room_id"] == second

    # Rotate: both secrets verify while the old one's grace runs.
    new_secret = api.post(f"{path}/rotate-secret").json()["secret"]
    api.patch(path, {"event_types": []}, format="json")
    third = room("third")
    request = receiver.wait_for(lambda r: len(r) == 3)[2]
    for secret in (endpoint["secret"], new_secret):
        assert Webhook(secret).verify(request.body, request.headers)["room_id"] == third

    # The receiver fails until the deliveries give up (3 quick retries in the test worker).
    receiver.answer = lambda request: 500
    rooms = [room(f"down{n}") for n in range(3)]
    for room_id in rooms:
        for n in range(2):
            api.post(f"/api/v1/conferences/{room_id}/volume", {"volume": n}, format="json")
    eventually(lambda: Delivery.objects.filter(status="failed").count() == 9, timeout=30)
    failed = api.get("/api/v1/webhooks/deliveries?status=failed&limit=200").json()["results"]
    assert len(failed) == 9 and all(d["attempts"] == 4 for d in failed)

    # Recover since the start: everything arrives, each room's events in order.
    receiver.answer = lambda request: 200
    receiver.received.clear()
    recovered = api.post(f"{path}/recover", {"since": started.isoformat()}, format="json")
    assert (recovered.status_code, recovered.json()) == (202, {"queued": 9})
    received = receiver.wait_for(lambda r: len(r) == 9)
    for room_id in rooms:
        assert [(r.json["event"], r.json.get("volume")) for r in received if r.json["room_id"] == room_id] == [
            ("conference.created", None),
            ("conference.play.volume_changed", 0),
            ("conference.play.volume_changed", 1),
        ]
    eventually(lambda: Delivery.objects.filter(status="delivered").count() == 12)
    detail = api.get(f"/api/v1/webhooks/deliveries/{failed[0]['delivery_id']}").json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 500, 500, 200]

    # Delete: nothing more arrives.
    assert api.delete(path).status_code == 204
    receiver.received.clear()
    room("after")
    time.sleep(1.5)  # what would have been sent by now
    assert receiver.received == []
