"""Room playback end to end: the sim engine in a real worker, real beat, real webhooks."""

import time
from datetime import timedelta

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from conferences.models import Event, PlaybackOperation
from conferences.services import playback

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker", "celery_beat", "like_the_worker", "short_timeout"),
]

TIMEOUT = 4  # seconds; the sim reports progress every 3 s, so long files outlive it


@pytest.fixture(scope="module")
def worker_env():
    return {"PLAYBACK_TIMEOUT_SECONDS": str(TIMEOUT)}


@pytest.fixture
def short_timeout():
    with override_settings(PLAYBACK_TIMEOUT_SECONDS=TIMEOUT):
        yield


@pytest.fixture
def http(live_server, make_tenant, receiver):
    tenant = make_tenant(webhook_url=receiver.url)
    api = httpx.Client(base_url=live_server.url, headers=tenant.headers, timeout=30)
    room_id = api.post("/api/v1/conferences", json={"name": "music"}).json()["room_id"]
    yield api, room_id
    api.close()


def play(api, room_id, *urls):
    response = api.post(f"/api/v1/conferences/{room_id}/play", json={"urls": list(urls)})
    assert response.status_code == 200, response.text
    return response.json()["operation_id"]


def terminal(received):
    return [
        r.json
        for r in received
        if r.json["event"] in ("conference.play.finished", "conference.play.failed", "conference.play.stopped")
    ]


def test_files_play_one_after_another_and_finish(http, receiver):
    api, room_id = http
    urls = ["https://cdn.example.com/a.wav#duration=0.3", "https://cdn.example.com/b.wav#duration=0.3"]
    operation_id = play(api, room_id, *urls)
    received = receiver.wait_for(lambda r: terminal(r), timeout=10)
    assert terminal(received) == [
        {"event": "conference.play.finished", "room_id": room_id, "operation_id": operation_id, "urls": [urls[1]]}
    ]
    assert api.get(f"/api/v1/conferences/{room_id}").json()["playback_status"] == "stopped"


def test_a_file_failure_fails_the_play(http, receiver):
    api, room_id = http
    url = "https://cdn.example.com/broken.wav#error&duration=0.2"
    operation_id = play(api, room_id, url)
    received = receiver.wait_for(lambda r: terminal(r), timeout=10)
    assert terminal(received) == [
        {
            "event": "conference.play.failed",
            "room_id": room_id,
            "operation_id": operation_id,
            "urls": [url],
            "error": "playback_error",
        }
    ]


def test_a_long_file_is_kept_alive_by_progress(http, receiver):
    api, room_id = http
    url = "https://cdn.example.com/long.wav#duration=7"
    operation_id = play(api, room_id, url)
    received = receiver.wait_for(lambda r: terminal(r), timeout=15)
    assert terminal(received) == [
        {"event": "conference.play.finished", "room_id": room_id, "operation_id": operation_id, "urls": [url]}
    ]


def test_a_hung_play_times_out_at_its_deadline(http, receiver):
    api, room_id = http
    urls = ["https://cdn.example.com/a.wav#hang", "https://cdn.example.com/b.wav"]
    operation_id = play(api, room_id, *urls)
    deadline = PlaybackOperation.objects.get().deadline_at
    received = receiver.wait_for(lambda r: terminal(r), timeout=TIMEOUT + 5)
    assert terminal(received) == [
        {
            "event": "conference.play.failed",
            "room_id": room_id,
            "operation_id": operation_id,
            "urls": urls,
            "error": "playback_timeout",
        }
    ]
    fired_at = Event.objects.get(event_type="conference.play.failed").created_at
    assert fired_at >= deadline  # never early; how late is measured by `make bench BENCH=playback`


def test_the_beat_sweep_fires_a_timeout_whose_timer_was_lost(http, receiver, monkeypatch):
    api, room_id = http
    monkeypatch.setattr(playback, "_arm_watchdog_on_commit", lambda operation: None)  # the timer is lost
    operation_id = play(api, room_id, "https://cdn.example.com/a.wav#hang")
    deadline = PlaybackOperation.objects.get().deadline_at
    received = receiver.wait_for(lambda r: terminal(r), timeout=TIMEOUT + 5)
    assert terminal(received)[0]["operation_id"] == operation_id
    fired_at = Event.objects.get(event_type="conference.play.failed").created_at
    assert fired_at >= deadline  # never early; how late is measured by `make bench BENCH=playback`


def test_paused_time_does_not_count_towards_the_timeout(http, receiver):
    api, room_id = http
    play(api, room_id, "https://cdn.example.com/a.wav#hang")
    time.sleep(1)
    api.post(f"/api/v1/conferences/{room_id}/pause")
    time.sleep(TIMEOUT + 1)  # well past the original deadline
    assert terminal(receiver.received) == []
    resumed_at = timezone.now()
    api.post(f"/api/v1/conferences/{room_id}/pause")
    receiver.wait_for(lambda r: terminal(r), timeout=TIMEOUT + 5)
    fired_at = Event.objects.get(event_type="conference.play.failed").created_at
    # About TIMEOUT - 1 s were left when it was paused.
    assert timedelta(seconds=TIMEOUT - 1.5) < fired_at - resumed_at < timedelta(seconds=TIMEOUT)
