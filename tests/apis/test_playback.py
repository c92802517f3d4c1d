import threading
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from conferences.actors import Actor
from conferences.models import Event, PlaybackOperation
from conferences.services import playback
from tests.conftest import assert_error, assert_valid_event

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")
URLS = ["https://cdn.example.com/a.wav", "https://cdn.example.com/b.wav"]


@pytest.fixture
def room_id(api):
    return api.post("/api/v1/conferences", {"name": "music"}, format="json").json()["room_id"]


def post(api, room_id, action, body=None):
    return api.post(f"/api/v1/conferences/{room_id}/{action}", body, format="json")


def play_events(room_id):
    payloads = [
        e.payload
        for e in Event.objects.filter(ordering_key=room_id, event_type__startswith="conference.play").order_by("id")
    ]
    for payload in payloads:
        assert_valid_event(payload)
    return payloads


def test_play_starts_playback(api, room_id):
    response = post(api, room_id, "play", {"urls": URLS})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"operation_id", "playback_status", "volume"}
    assert (body["playback_status"], body["volume"]) == ("playing", 0)
    room = api.get(f"/api/v1/conferences/{room_id}").json()
    assert (room["playback_status"], room["playback_operation_id"], room["playback_urls"]) == (
        "playing",
        body["operation_id"],
        URLS,
    )
    assert play_events(room_id) == [
        {"event": "conference.play.started", "room_id": room_id, "urls": URLS, "operation_id": body["operation_id"]}
    ]


def test_play_while_active_answers_409(api, room_id):
    post(api, room_id, "play", {"urls": URLS})
    assert_error(post(api, room_id, "play", {"urls": URLS}), 409, "playback_active")
    post(api, room_id, "pause")
    assert_error(post(api, room_id, "play", {"urls": URLS}), 409, "playback_active")


@pytest.mark.parametrize("action", ["pause", "stop"])
def test_pause_and_stop_without_playback_answer_409(api, room_id, action):
    assert_error(post(api, room_id, action), 409, "no_playback")


def test_pause_toggles_and_stop_ends(api, tenant, room_id):
    play_id = post(api, room_id, "play", {"urls": URLS}).json()["operation_id"]
    paused = post(api, room_id, "pause").json()
    resumed = post(api, room_id, "pause").json()
    stopped = post(api, room_id, "stop").json()
    assert [paused["playback_status"], resumed["playback_status"], stopped["playback_status"]] == [
        "paused",
        "playing",
        "stopped",
    ]
    ids = {play_id, paused["operation_id"], resumed["operation_id"], stopped["operation_id"]}
    assert len(ids) == 4  # a new operation_id per call
    assert play_events(room_id)[1:] == [
        {"event": "conference.play.paused", "room_id": room_id, "operation_id": paused["operation_id"]},
        {
            "event": "conference.play.resumed",
            "app_id": tenant.app.app_id,
            "room_id": room_id,
            "operation_id": resumed["operation_id"],
        },
        {"event": "conference.play.stopped", "room_id": room_id, "operation_id": stopped["operation_id"]},
    ]
    room = api.get(f"/api/v1/conferences/{room_id}").json()
    assert (room["playback_status"], room["playback_operation_id"], room["playback_urls"]) == ("stopped", None, [])
    assert post(api, room_id, "play", {"urls": URLS}).status_code == 200  # stopped rooms play again


def test_stop_while_paused(api, room_id):
    post(api, room_id, "play", {"urls": URLS})
    post(api, room_id, "pause")
    assert post(api, room_id, "stop").json()["playback_status"] == "stopped"


@pytest.mark.parametrize("volume", [-50, 0, 7])
def test_volume_in_any_state(api, room_id, volume):
    body = post(api, room_id, "volume", {"volume": volume}).json()
    assert (body["playback_status"], body["volume"]) == ("stopped", volume)
    post(api, room_id, "play", {"urls": URLS})
    assert post(api, room_id, "volume", {"volume": volume}).json()["playback_status"] == "playing"
    assert api.get(f"/api/v1/conferences/{room_id}").json()["volume"] == volume
    changed = [e for e in play_events(room_id) if e["event"] == "conference.play.volume_changed"]
    assert [e["volume"] for e in changed] == [volume, volume]


@pytest.mark.parametrize("volume", [True, False, 1.5, 2.0, "3", None, -51, 8, [1], {"v": 1}])
def test_volume_validation(api, room_id, volume):
    body = assert_error(post(api, room_id, "volume", {"volume": volume}), 400, "invalid")
    assert "volume" in body["detail"]


def test_volume_is_required(api, room_id):
    assert "volume" in assert_error(post(api, room_id, "volume", {}), 400, "invalid")["detail"]


@pytest.mark.parametrize(
    "urls",
    [
        [],
        "https://x/a.wav",
        None,
        [5],
        ["ftp://x/a.wav"],
        ["not a url"],
        ["https://"],
        ["https://x/" + "a" * 2040],
        ["https://x/a.wav"] * 129,
        [["https://x/a.wav"]],
        ["https://x/a b.wav"],
        ["http://%31%32%37.0.0.1/a.wav"],
    ],
    ids=[
        "empty",
        "string",
        "null",
        "number",
        "ftp",
        "no-scheme",
        "no-host",
        "too-long",
        "too-many",
        "nested",
        "space",
        "percent-encoded-host",
    ],
)
def test_play_validation(api, room_id, urls):
    body = assert_error(post(api, room_id, "play", {"urls": urls}), 400, "invalid")
    assert "urls" in body["detail"]
    assert api.get(f"/api/v1/conferences/{room_id}").json()["playback_status"] == "stopped"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:8000/a.wav",
        "http://localhost/a.wav",
        "http://10.0.0.1/a.wav",
        "https://[::1]/a.wav",
        "http://[::ffff:192.168.1.1]/a.wav",
        "http://0.0.0.0/a.wav",
    ],
)
def test_play_refuses_media_urls_that_reach_private_addresses(api, room_id, url):
    body = assert_error(post(api, room_id, "play", {"urls": ["https://cdn.example.com/a.wav", url]}), 400, "invalid")
    [problem] = body["detail"]["urls"]
    assert "may only reach public addresses" in problem
    assert api.get(f"/api/v1/conferences/{room_id}").json()["playback_status"] == "stopped"
    with override_settings(MEDIA_ALLOW_PRIVATE=True):
        assert post(api, room_id, "play", {"urls": [url]}).status_code == 200


def test_play_refuses_a_media_host_that_cannot_be_checked_in_time(api, room_id, monkeypatch):
    import socket
    import time

    from conferences import ssrf

    monkeypatch.setattr(ssrf, "MEDIA_LOOKUP_SECONDS", 0.2)
    real_lookup = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *args, **kwargs: (
            time.sleep(1) or [] if host == "slow.example.com" else real_lookup(host, *args, **kwargs)
        ),
    )
    body = assert_error(post(api, room_id, "play", {"urls": ["https://slow.example.com/a.wav"]}), 400, "invalid")
    assert "could not be checked in time" in body["detail"]["urls"][0]


def test_play_accepts_128_urls_of_2048_characters(api, room_id):
    url = "https://x.example/" + "a" * (2048 - len("https://x.example/"))
    assert post(api, room_id, "play", {"urls": [url] * 128}).status_code == 200


def test_another_apps_room_answers_404(api, client_for, other_tenant, room_id):
    theirs = client_for(other_tenant)
    for action, body in (("play", {"urls": URLS}), ("pause", None), ("stop", None), ("volume", {"volume": 1})):
        assert_error(post(theirs, room_id, action, body), 404, "not_found")
    assert play_events(room_id) == []


def test_engine_finish_and_error_end_the_play_once(api, room_id):
    play_id = post(api, room_id, "play", {"urls": URLS}).json()["operation_id"]
    assert playback.engine_finished(actor=SYSTEM, room_id=room_id, operation_id=play_id, url=URLS[1]) is True
    assert playback.engine_finished(actor=SYSTEM, room_id=room_id, operation_id=play_id, url=URLS[1]) is False
    assert playback.engine_error(actor=SYSTEM, room_id=room_id, operation_id=play_id, url=URLS[1]) is False
    assert play_events(room_id)[-1] == {
        "event": "conference.play.finished",
        "room_id": room_id,
        "operation_id": play_id,
        "urls": [URLS[1]],
    }
    second = post(api, room_id, "play", {"urls": URLS}).json()["operation_id"]
    assert playback.engine_error(actor=SYSTEM, room_id=room_id, operation_id=second, url=URLS[0], message="404")
    assert play_events(room_id)[-1] == {
        "event": "conference.play.failed",
        "room_id": room_id,
        "operation_id": second,
        "urls": [URLS[0]],
        "error": "playback_error",
    }
    assert api.get(f"/api/v1/conferences/{room_id}").json()["playback_status"] == "stopped"


def test_a_report_for_another_room_or_a_bad_id_is_ignored(api, room_id):
    play_id = post(api, room_id, "play", {"urls": URLS}).json()["operation_id"]
    assert playback.engine_finished(actor=SYSTEM, room_id="other", operation_id=play_id, url=URLS[0]) is False
    assert playback.engine_finished(actor=SYSTEM, room_id=room_id, operation_id="nope", url=URLS[0]) is False
    assert api.get(f"/api/v1/conferences/{room_id}").json()["playback_status"] == "playing"


def test_watchdog_fails_a_play_past_its_deadline_once(api, room_id):
    play_id = post(api, room_id, "play", {"urls": URLS}).json()["operation_id"]
    assert playback.expire_due(actor=SYSTEM) == 0
    later = timezone.now() + timedelta(seconds=11)
    assert playback.expire_due(actor=SYSTEM, now=later) == 1
    assert playback.expire_due(actor=SYSTEM, now=later) == 0
    assert play_events(room_id)[-1] == {
        "event": "conference.play.failed",
        "room_id": room_id,
        "operation_id": play_id,
        "urls": URLS,
        "error": "playback_timeout",
    }
    # A finish arriving after the timeout only reaches the history.
    assert playback.engine_finished(actor=SYSTEM, room_id=room_id, operation_id=play_id, url=URLS[1]) is False
    assert (
        len([e for e in play_events(room_id) if e["event"] in ("conference.play.finished", "conference.play.failed")])
        == 1
    )


def test_paused_time_does_not_count(api, room_id):
    play_id = post(api, room_id, "play", {"urls": URLS}).json()["operation_id"]
    PlaybackOperation.objects.update(deadline_at=timezone.now() + timedelta(seconds=4))
    post(api, room_id, "pause")
    remaining = PlaybackOperation.objects.get().remaining_ms
    assert 3000 < remaining <= 4000
    assert playback.expire_due(actor=SYSTEM, now=timezone.now() + timedelta(hours=1)) == 0
    post(api, room_id, "pause")  # resume: the clock goes on from what was left
    deadline = PlaybackOperation.objects.get().deadline_at
    assert timedelta(seconds=3) < deadline - timezone.now() <= timedelta(seconds=4)
    assert playback.expire(operation_id=play_id, actor=SYSTEM, now=deadline - timedelta(milliseconds=1)) is False
    assert playback.expire(operation_id=play_id, actor=SYSTEM, now=deadline) is True


def test_progress_restarts_the_clock(api, room_id):
    play_id = post(api, room_id, "play", {"urls": URLS}).json()["operation_id"]
    PlaybackOperation.objects.update(deadline_at=timezone.now() + timedelta(seconds=1))
    assert playback.engine_progress(actor=SYSTEM, room_id=room_id, operation_id=play_id)
    deadline = PlaybackOperation.objects.get().deadline_at
    assert deadline - timezone.now() > timedelta(seconds=9)


def test_room_deletion_stops_playback_first(api, tenant, room_id):
    post(api, room_id, "play", {"urls": URLS})
    api.delete(f"/api/v1/conferences/{room_id}")
    kinds = [e.payload["event"] for e in Event.objects.filter(ordering_key=room_id).order_by("id")]
    assert kinds == ["conference.created", "conference.play.started", "conference.play.stopped", "conference.destroyed"]
    assert PlaybackOperation.objects.get().state == "stopped"


@pytest.mark.django_db(transaction=True)
def test_21_concurrent_pauses_alternate(live_server, tenant):
    headers = tenant.headers
    room_id = httpx.post(f"{live_server.url}/api/v1/conferences", json={"name": "toggle"}, headers=headers).json()[
        "room_id"
    ]
    httpx.post(f"{live_server.url}/api/v1/conferences/{room_id}/play", json={"urls": URLS}, headers=headers)
    barrier = threading.Barrier(21)
    statuses = []

    def pause():
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
            barrier.wait()
            statuses.append(client.post(f"/api/v1/conferences/{room_id}/pause").status_code)

    threads = [threading.Thread(target=pause) for _ in range(21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * 21
    toggles = [e["event"] for e in play_events(room_id)[1:]]
    assert toggles == ["conference.play.paused", "conference.play.resumed"] * 10 + ["conference.play.paused"]
    assert (
        httpx.get(f"{live_server.url}/api/v1/conferences/{room_id}", headers=headers).json()["playback_status"]
        == "paused"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rival", ["engine_finished", "expire"])
def test_stop_racing_a_terminal_report_gives_one_terminal_event(live_server, tenant, rival):
    headers = tenant.headers
    room_id = httpx.post(
        f"{live_server.url}/api/v1/conferences", json={"name": f"race-{rival}"}, headers=headers, timeout=30
    ).json()["room_id"]
    for _ in range(10):
        play_id = httpx.post(
            f"{live_server.url}/api/v1/conferences/{room_id}/play", json={"urls": URLS}, headers=headers, timeout=30
        ).json()["operation_id"]
        PlaybackOperation.objects.filter(state="playing").update(deadline_at=timezone.now())
        barrier = threading.Barrier(2)

        def stop():
            barrier.wait()
            httpx.post(f"{live_server.url}/api/v1/conferences/{room_id}/stop", headers=headers, timeout=30)

        def report():
            barrier.wait()
            try:
                if rival == "expire":
                    playback.expire(operation_id=play_id, actor=SYSTEM)
                else:
                    playback.engine_finished(actor=SYSTEM, room_id=room_id, operation_id=play_id, url=URLS[1])
            finally:
                connection.close()  # this thread's own, so the test database can be dropped

        threads = [threading.Thread(target=stop), threading.Thread(target=report)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        terminal = [
            e
            for e in play_events(room_id)
            if e["event"] in ("conference.play.finished", "conference.play.failed", "conference.play.stopped")
        ]
        assert len(terminal) == _plays(room_id)  # exactly one terminal event per play so far
    assert PlaybackOperation.objects.filter(state__in=["playing", "paused"]).count() == 0


def _plays(room_id):
    return Event.objects.filter(ordering_key=room_id, event_type="conference.play.started").count()
