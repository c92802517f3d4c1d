"""The `http` engine adapter with a real worker: signed commands, a join that is never
confirmed timing out, and an engine that refuses or cannot take a command."""

import hashlib
import hmac

import pytest
from django.test import override_settings

from conferences.actors import Actor
from conferences.models import EngineCommand, Member, WebhookEndpoint
from conferences.services import members
from conferences.services.commands import run_command
from conferences.services.rooms import create_room
from conferences.services.sessions import create_session
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker", "like_the_worker")]

TOKEN = "http-engine-token"
SECRET = "http-engine-command-key"
SYSTEM = Actor.system("tests")


@pytest.fixture(scope="module")
def engine_receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def worker_env(engine_receiver):
    return {
        "ENGINE": "http",
        "ENGINE_URL": engine_receiver.url,
        "ENGINE_TOKEN": TOKEN,
        "ENGINE_SECRET": SECRET,
        "JOIN_TIMEOUT_SECONDS": "1",
        "PLAYBACK_TIMEOUT_SECONDS": "1",
    }


@pytest.fixture(autouse=True)
def like_the_engine_worker(engine_receiver):
    engine_receiver.received.clear()
    engine_receiver.answer = lambda request: 200
    with override_settings(
        JOIN_TIMEOUT_SECONDS=1,
        PLAYBACK_TIMEOUT_SECONDS=1,
        ENGINE="http",
        ENGINE_URL=engine_receiver.url,
        ENGINE_TOKEN=TOKEN,
        ENGINE_SECRET=SECRET,
    ):
        yield


def join(tenant, session_uuid, room_id, command_uid):
    return run_command(
        actor=SYSTEM,
        app=tenant.app,
        session_uuid=session_uuid,
        command="conference/join",
        command_uid=command_uid,
        request={},
        perform=lambda uid: members.join(
            actor=SYSTEM, app=tenant.app, session_uuid=session_uuid, room_id=room_id, muted=False, command_uid=uid
        ),
    )


@pytest.fixture
def setup(make_tenant, receiver):
    tenant = make_tenant(webhook_url=receiver.url)
    tenant.endpoint = WebhookEndpoint.objects.get(app=tenant.app)
    room = create_room(actor=SYSTEM, app=tenant.app, name="http-engine")
    session = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+1", session_uuid=None)
    return tenant, room, session


def test_a_join_the_engine_never_confirms_times_out(setup, receiver, engine_receiver):
    tenant, room, session = setup
    accepted = join(tenant, session.session_uuid, room.room_id, "never-confirmed")
    assert accepted["timeout_ms"] == 1000

    command = engine_receiver.wait_for(lambda r: len(r) == 1)[0]
    assert command.json == {
        "command": "join",
        "session_uuid": session.session_uuid,
        "room_id": room.room_id,
        "muted": False,
        "operation_id": accepted["operation_id"],
    }
    signed = f"{command.headers['x-engine-command-id']}.{command.headers['x-engine-timestamp']}.".encode()
    expected = hmac.new(SECRET.encode(), signed + command.body, hashlib.sha256).hexdigest()
    assert command.headers["x-engine-signature"] == f"sha256={expected}"  # signed with ENGINE_SECRET
    assert command.headers["x-engine-command-id"] == str(EngineCommand.objects.get(command="join").pk)

    received = receiver.wait_for(lambda r: any(x.json["event"] == "command.result" for x in r), timeout=10)
    result = next(r.json for r in received if r.json["event"] == "command.result")
    assert result == {
        "event": "command.result",
        "operation_id": accepted["operation_id"],
        "command_uid": "never-confirmed",
        "session_uuid": session.session_uuid,
        "command": "conference/join",
        "success": False,
        "error": "timeout",
    }
    assert Member.objects.get().state == "failed"


def test_an_engine_that_refuses_a_join_fails_it_at_once(setup, receiver, engine_receiver):
    tenant, room, session = setup
    engine_receiver.answer = lambda request: 422
    accepted = join(tenant, session.session_uuid, room.room_id, "refused")
    received = receiver.wait_for(lambda r: any(x.json["event"] == "command.result" for x in r), timeout=10)
    result = next(r.json for r in received if r.json["event"] == "command.result")
    assert (result["operation_id"], result["success"], result["error"]) == (
        accepted["operation_id"],
        False,
        "engine_unavailable",
    )
    assert len(engine_receiver.received) == 1  # a refusal is final: not tried again


def test_a_join_the_engine_cannot_take_is_retried_then_fails_before_its_timeout(setup, receiver, engine_receiver):
    tenant, room, session = setup
    engine_receiver.answer = lambda request: 503
    accepted = join(tenant, session.session_uuid, room.room_id, "unavailable")
    received = receiver.wait_for(lambda r: any(x.json["event"] == "command.result" for x in r), timeout=10)
    result = next(r.json for r in received if r.json["event"] == "command.result")
    assert (result["operation_id"], result["success"], result["error"]) == (
        accepted["operation_id"],
        False,
        "engine_unavailable",
    )  # not "timeout": it gave up first
    # The engine may have joined the call without answering: it is told to drop it.
    received = engine_receiver.wait_for(lambda r: r[-1].json["command"] == "kick")
    tries = received[:-1]
    assert len(tries) >= 2 and {t.json["command"] for t in tries} == {"join"}
    assert len({t.headers["x-engine-command-id"] for t in tries}) == 1
    assert received[-1].json == {"command": "kick", "session_uuid": session.session_uuid, "room_id": room.room_id}


def test_the_engine_is_told_to_stop_a_timed_out_play(setup, receiver, engine_receiver):
    from conferences.services import playback

    tenant, room, _ = setup
    started = playback.play(actor=SYSTEM, app=tenant.app, room_id=room.room_id, urls=["https://cdn.example.com/a.wav"])
    commands = engine_receiver.wait_for(lambda r: any(x.json["command"] == "stop" for x in r), timeout=10)
    assert [c.json["command"] for c in commands] == ["play", "stop"]
    assert commands[0].json == {
        "command": "play",
        "room_id": room.room_id,
        "operation_id": started["operation_id"],
        "urls": ["https://cdn.example.com/a.wav"],
        "volume": 0,
    }
    assert commands[1].json == {"command": "stop", "room_id": room.room_id, "operation_id": started["operation_id"]}
    received = receiver.wait_for(lambda r: any(x.json["event"] == "conference.play.failed" for x in r))
    failed = next(r.json for r in received if r.json["event"] == "conference.play.failed")
    assert failed["error"] == "playback_timeout"


def test_an_engine_that_refuses_a_play_fails_it(setup, receiver, engine_receiver):
    from conferences.services import playback

    tenant, room, _ = setup
    engine_receiver.answer = lambda request: 500
    started = playback.play(actor=SYSTEM, app=tenant.app, room_id=room.room_id, urls=["https://cdn.example.com/a.wav"])
    received = receiver.wait_for(lambda r: any(x.json["event"] == "conference.play.failed" for x in r))
    failed = next(r.json for r in received if r.json["event"] == "conference.play.failed")
    assert failed == {
        "event": "conference.play.failed",
        "room_id": room.room_id,
        "operation_id": started["operation_id"],
        "urls": ["https://cdn.example.com/a.wav"],
        "error": "playback_error",
    }
