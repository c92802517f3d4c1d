import threading

import httpx
import pytest

from conferences.models import Event, Room

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_concurrent_creates_of_one_name_give_one_201(live_server, tenant):
    """Twenty threads, each with its own HTTP connection and database connection."""
    barrier = threading.Barrier(20)
    responses = []
    lock = threading.Lock()

    def create():
        with httpx.Client(base_url=live_server.url, headers=tenant.headers, timeout=30) as client:
            barrier.wait()
            response = client.post("/api/v1/conferences", json={"name": "contested"})
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19
    winner = next(r for r in responses if r.status_code == 201).json()["room_id"]
    for response in responses:
        if response.status_code == 409:
            assert response.json() == {
                "success": False,
                "error": "Conference name already taken for this application",
                "code": "name_taken",
                "detail": {"room_id": winner},
            }
    assert Room.objects.filter(name="contested").count() == 1
    assert Event.objects.filter(event_type="conference.created").count() == 1
