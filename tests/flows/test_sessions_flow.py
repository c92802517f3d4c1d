"""Sessions end to end: the real ingress, the sim engine in a real worker, real webhooks."""

import threading

import httpx
import pytest
from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from conferences.models import Event, Member, WebhookEndpoint
from tests.conftest import assert_valid_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker", "like_the_worker")]

ENGINE_TOKEN = "flow-engine-token"


@pytest.fixture(autouse=True)
def engine_token():
    with override_settings(ENGINE_TOKEN=ENGINE_TOKEN):
        yield


@pytest.fixture
def http(live_server, make_tenant, receiver):
    tenant = make_tenant(webhook_url=receiver.url)
    tenant.endpoint = WebhookEndpoint.objects.get(app=tenant.app)
    api = httpx.Client(base_url=live_server.url, headers=tenant.headers, timeout=30)
    engine = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {ENGINE_TOKEN}"}, timeout=30)
    yield tenant, api, engine
    api.close()
    engine.close()


def new_session(engine, tenant, caller_id="+15550001111") -> str:
    response = engine.post(
        "/api/v1/engine/events", json={"type": "session.created", "app_id": tenant.app.app_id, "caller_id": caller_id}
    )
    assert response.status_code == 201
    return response.json()["session_uuid"]


def new_room(api, name) -> str:
    return api.post("/api/v1/conferences", json={"name": name}).json()["room_id"]


def command(api, session_uuid, name, **body):
    return api.post(f"/api/v1/sessions/{session_uuid}/commands/conference/{name}", json=body)


def test_join_mute_leave_through_the_sim_engine(http, receiver):
    tenant, api, engine = http
    room_id = new_room(api, "flow")
    session_uuid = new_session(engine, tenant)
    join = command(api, session_uuid, "join", room_id=room_id, command_uid="join-1")
    assert join.status_code == 202

    # The sim engine confirms through a Celery task; the webhooks follow.
    received = receiver.wait_for(
        lambda r: (
            any(x.json["event"] == "conference.member.joined" for x in r)
            and any(x.json["event"] == "command.result" for x in r)
        )
    )
    assert api.get(f"/api/v1/sessions/{session_uuid}").json()["room_id"] == room_id
    result = next(r.json for r in received if r.json["event"] == "command.result")
    assert result == {
        "event": "command.result",
        "operation_id": join.json()["operation_id"],
        "command_uid": "join-1",
        "session_uuid": session_uuid,
        "command": "conference/join",
        "success": True,
        "error": None,
    }

    assert command(api, session_uuid, "mute").status_code == 202
    assert command(api, session_uuid, "leave").status_code == 202
    received = receiver.wait_for(lambda r: len(r) == 7)
    for request in received:
        Webhook(tenant.endpoint.secret).verify(request.body, request.headers)
        assert_valid_event(request.json)
    room_events = [r.json["event"] for r in received if r.json.get("room_id") == room_id]
    assert room_events == [
        "conference.created",
        "conference.member.joined",
        "conference.member.muted",
        "conference.member.left",
    ]
    session_results = [r.json["command"] for r in received if r.json["event"] == "command.result"]
    assert session_results == ["conference/join", "conference/mute", "conference/leave"]


def test_ten_concurrent_joins_into_two_rooms_leave_one_membership(http):
    tenant, api, engine = http
    rooms = [new_room(api, "left"), new_room(api, "right")]
    session_uuid = new_session(engine, tenant)
    barrier = threading.Barrier(10)
    statuses = []

    def join(room_id):
        with httpx.Client(base_url=api.base_url, headers=tenant.headers, timeout=30) as client:
            barrier.wait()
            response = command(client, session_uuid, "join", room_id=room_id)
            statuses.append((response.status_code, response.json()))

    threads = [threading.Thread(target=join, args=(rooms[i % 2],)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(code for code, _ in statuses) == [202] + [409] * 9
    member = Member.objects.get()
    assert all(
        body["code"] == "already_in_conference" and body["detail"] == {"room_id": member.room.room_id}
        for code, body in statuses
        if code == 409
    )


def test_a_hang_up_racing_a_leave_gives_one_left_event(http):
    tenant, api, engine = http
    room_id = new_room(api, "race")
    for _ in range(8):
        session_uuid = new_session(engine, tenant)
        assert command(api, session_uuid, "join", room_id=room_id).status_code == 202
        engine.post(
            "/api/v1/engine/events", json={"type": "member.joined", "session_uuid": session_uuid, "room_id": room_id}
        )
        barrier = threading.Barrier(2)
        outcomes = {}

        def leave():
            with httpx.Client(base_url=api.base_url, headers=tenant.headers, timeout=30) as client:
                barrier.wait()
                outcomes["leave"] = command(client, session_uuid, "leave").status_code

        def hang_up():
            with httpx.Client(base_url=engine.base_url, headers=engine.headers, timeout=30) as client:
                barrier.wait()
                outcomes["hangup"] = client.post(
                    "/api/v1/engine/events", json={"type": "session.ended", "session_uuid": session_uuid}
                ).status_code

        threads = [threading.Thread(target=leave), threading.Thread(target=hang_up)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert outcomes["hangup"] == 200
        assert outcomes["leave"] in (202, 404, 409)  # 404 once the session has ended
        left = [
            e.payload
            for e in Event.objects.filter(event_type="conference.member.left")
            if e.payload["session_uuid"] == session_uuid
        ]
        assert len(left) == 1, left
        assert left[0]["reason"] == ("removed" if outcomes["leave"] == 202 else "hangup")
