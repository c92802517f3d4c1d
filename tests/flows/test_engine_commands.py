"""The engine outbox end to end, against a real HTTP engine: commands accepted while no worker
runs, or while the broker is down, reach the engine in order, once each; a worker killed
mid-command; an engine that fails and recovers; reconciliation of drift both ways."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from conferences.actors import Actor
from conferences.engine.base import _engine
from conferences.models import AuditEntry, CallSession, EngineCommand, Member
from conferences.services import engine_dispatch, members, playback, reconcile
from conferences.services.rooms import create_room, destroy_room
from conferences.services.sessions import create_session
from tests.conftest import pending_join
from tests.support.private_redis import PrivateRedis
from tests.support.receiver import Receiver
from tests.support.waiting import eventually
from tests.support.worker import BeatProcess, WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "engine-command-key"
SYSTEM = Actor.system("tests")
URL = "https://cdn.example.com/a.wav"


@pytest.fixture
def engine():
    """The media engine: a real HTTP server that records the commands it gets."""
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def engine_env(engine) -> dict:
    return {
        "ENGINE": "http",
        "ENGINE_URL": engine.url,
        "ENGINE_TOKEN": "ingress-token",
        "ENGINE_SECRET": SECRET,
        "ENGINE_TIMEOUT_SECONDS": "1",
        "ENGINE_RETRY_SCHEDULE": "0.2,0.2,0.2,0.2,0.2",
        "JOIN_TIMEOUT_SECONDS": "30",
    }


@pytest.fixture(autouse=True)
def like_the_worker(engine):
    with override_settings(
        ENGINE="http",
        ENGINE_URL=engine.url,
        ENGINE_SECRET=SECRET,
        ENGINE_TIMEOUT_SECONDS=1,
        ENGINE_RETRY_SCHEDULE=[0.2] * 5,
        JOIN_TIMEOUT_SECONDS=30,
    ):
        _engine.cache_clear()
        yield
        _engine.cache_clear()


@pytest.fixture
def start_worker(tmp_path, engine_env):
    """Workers started by the test, when it wants them; all stopped at the end."""
    started = []

    def start(**env) -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker{len(started)}.log", {**engine_env, **env})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def commands_of(received, room_id: str) -> list[tuple]:
    return [(r.json["command"], r.json.get("session_uuid")) for r in received if r.json["room_id"] == room_id]


def accept_burst(tenant, rooms_and_sessions) -> dict[str, list[tuple]]:
    """Join, mute, unmute, kick and play on each room, interleaved across rooms, as the API
    and the engine's join confirmation would; returns what each room's engine must get."""
    steps = [
        lambda room, session: members.join(
            actor=SYSTEM,
            app=tenant.app,
            session_uuid=session.session_uuid,
            room_id=room.room_id,
            muted=False,
            command_uid="join",
        ),
        lambda room, session: members.confirm_join(
            actor=Actor.engine(session.node), session_uuid=session.session_uuid, room_id=room.room_id
        ),
        lambda room, session: members.set_muted(
            actor=SYSTEM, app=tenant.app, session_uuid=session.session_uuid, muted=True, command_uid="mute"
        ),
        lambda room, session: members.set_muted(
            actor=SYSTEM, app=tenant.app, session_uuid=session.session_uuid, muted=False, command_uid="unmute"
        ),
        lambda room, session: members.kick(
            actor=SYSTEM, app=tenant.app, room_id=room.room_id, session_uuid=session.session_uuid
        ),
        lambda room, session: playback.play(actor=SYSTEM, app=tenant.app, room_id=room.room_id, urls=[URL]),
    ]
    for step in steps:
        for room, session in rooms_and_sessions:
            with transaction.atomic():
                step(room, session)
    return {
        room.room_id: [(name, session.session_uuid) for name in ("join", "mute", "unmute", "kick")] + [("play", None)]
        for room, session in rooms_and_sessions
    }


@pytest.fixture
def rooms_and_sessions(tenant):
    return [
        (
            create_room(actor=SYSTEM, app=tenant.app, name=f"burst{n}"),
            create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id=f"+{n}", session_uuid=None),
        )
        for n in range(3)
    ]


def assert_each_room_got_its_commands_in_order_once(engine, expected: dict) -> None:
    total = sum(len(commands) for commands in expected.values())
    eventually(lambda: not EngineCommand.objects.filter(status="pending").exists(), timeout=30)
    received = engine.wait_for(lambda r: len(r) >= total)
    for room_id, commands in expected.items():
        assert commands_of(received, room_id) == commands
    assert len(received) == total  # once each
    assert set(EngineCommand.objects.values_list("status", flat=True)) == {"sent"}


def test_a_burst_accepted_while_no_worker_runs_reaches_the_engine_in_order_once_each(
    tenant, rooms_and_sessions, engine, start_worker
):
    expected = accept_burst(tenant, rooms_and_sessions)
    assert engine.received == [] and EngineCommand.objects.filter(status="pending").count() == 15

    start_worker()
    assert_each_room_got_its_commands_in_order_once(engine, expected)
    ids = [int(r.headers["x-engine-command-id"]) for r in engine.received]
    assert len(set(ids)) == 15


def test_an_engine_that_fails_three_times_then_recovers_gets_everything_in_order(
    tenant, rooms_and_sessions, engine, start_worker
):
    failures = {"left": 3}
    lock = threading.Lock()

    def answer(request):
        with lock:
            if failures["left"]:
                failures["left"] -= 1
                return 500
        return 200

    engine.answer = answer
    room, session = rooms_and_sessions[0]
    expected = accept_burst(tenant, [(room, session)])
    start_worker()
    eventually(lambda: not EngineCommand.objects.filter(status="pending").exists(), timeout=30)
    received = engine.wait_for(lambda r: len(r) == 8)
    # The join was tried four times (one command id) before anything after it went.
    assert commands_of(received, room.room_id) == [expected[room.room_id][0]] * 4 + expected[room.room_id][1:]
    assert len({r.headers["x-engine-command-id"] for r in received[:4]}) == 1
    assert EngineCommand.objects.get(command="join").attempts == 4
    assert set(EngineCommand.objects.values_list("status", flat=True)) == {"sent"}


def test_a_burst_during_a_broker_outage_reaches_the_engine_once_the_broker_returns(
    tenant, rooms_and_sessions, engine, engine_env, start_worker, tmp_path, monkeypatch
):
    broker = PrivateRedis(tmp_path)
    try:
        broker.publish_here(monkeypatch)
        broker.stop()
        expected = accept_burst(tenant, rooms_and_sessions)  # every wake-up is lost
        assert EngineCommand.objects.filter(status="pending").count() == 15

        broker.start()
        broker.reconnect(monkeypatch)
        start_worker(CELERY_BROKER_URL=broker.url)
        beat = BeatProcess(tmp_path / "beat.log", {**engine_env, "CELERY_BROKER_URL": broker.url})
        try:
            # Nothing wakes the worker but beat's periodic re-drive.
            assert_each_room_got_its_commands_in_order_once(engine, expected)
        finally:
            beat.stop()
    finally:
        broker.stop()


def test_a_command_cut_off_by_a_killed_worker_completes_once_and_its_room_waits_for_it(tenant, engine, start_worker):
    arrived, release = threading.Event(), threading.Event()

    def answer(request):
        if request.json["command"] == "play" and not arrived.is_set():
            arrived.set()
            release.wait(20)  # the engine is slow to answer; the worker dies meanwhile
        return 200

    engine.answer = answer
    room = create_room(actor=SYSTEM, app=tenant.app, name="killed")
    worker = start_worker()
    playback.play(actor=SYSTEM, app=tenant.app, room_id=room.room_id, urls=[URL])
    playback.stop(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    assert arrived.wait(20)
    worker.process.kill()
    worker.process.wait()
    release.set()

    play = EngineCommand.objects.get(command="play")
    assert (play.status, play.attempts, play.lease_expires_at is not None) == ("pending", 1, True)
    assert [r.json["command"] for r in engine.wait_for(lambda r: len(r) == 1)] == ["play"]  # the stop waits
    # Its lease runs out, as it would after 3 × ENGINE_TIMEOUT_SECONDS + 10 s.
    EngineCommand.objects.filter(pk=play.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    start_worker()
    assert engine_dispatch.redrive() is True  # what beat runs every 2 s

    received = engine.wait_for(lambda r: len(r) == 3)
    assert [r.json["command"] for r in received] == ["play", "play", "stop"]
    assert received[0].headers["x-engine-command-id"] == received[1].headers["x-engine-command-id"]
    eventually(lambda: not EngineCommand.objects.filter(status="pending").exists())
    play.refresh_from_db()
    assert (play.status, play.attempts) == ("sent", 2)


# --- Reconciliation (the engine's live state against the database) --------------------------


def live_sessions_answer(engine, body_for):
    def answer(request):
        if request.json["command"] != "live_sessions":
            return 200
        try:
            return 200, json.dumps(body_for()).encode()
        finally:
            connection.close()  # body_for may use this server thread's own connection

    engine.answer = answer


def send_queued_commands() -> list[str]:
    claims = engine_dispatch.claim(limit=100)
    engine_dispatch.finish([(claim, engine_dispatch.execute(claim)) for claim in claims])
    return [claim.command for claim in claims]


def long_ago():
    return timezone.now() - timedelta(minutes=5)


def test_reconciliation_repairs_drift_both_ways(tenant, engine):
    from django.conf import settings

    room = create_room(actor=SYSTEM, app=tenant.app, name="drift")
    lost = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+1", session_uuid=None)
    lingering = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+2", session_uuid=None)
    for session in (lost, lingering):
        pending_join(tenant.app, session.session_uuid, room.room_id)
        members.confirm_join(actor=SYSTEM, session_uuid=session.session_uuid, room_id=room.room_id)
    members.kick(actor=SYSTEM, app=tenant.app, room_id=room.room_id, session_uuid=lingering.session_uuid)
    assert send_queued_commands() == ["join"]  # one at a time per room
    while send_queued_commands():
        pass
    # All of that was long ago; the engine then lost one call and kept the one we kicked.
    CallSession.objects.update(created_at=long_ago(), last_seen_at=long_ago())
    Member.objects.filter(state="left").update(ended_at=long_ago())
    EngineCommand.objects.update(completed_at=long_ago())
    live_sessions_answer(
        engine,
        lambda: {
            "node": settings.NODE_HASH,
            "sessions": [{"session_uuid": lingering.session_uuid, "room_id": room.room_id}],
        },
    )

    assert reconcile.reconcile() == {"orphaned": 1, "kicked": 1, "destroyed": 0}

    lost.refresh_from_db()
    assert lost.state == "ended"
    assert Member.objects.get(session=lost).end_reason == "orphan"
    repair = AuditEntry.objects.get(action="reconcile.kick")
    assert (repair.actor, repair.room_id, repair.session_uuid) == (
        "reconciliation",
        room.room_id,
        lingering.session_uuid,
    )
    # Asked again before the repair is sent: the engine's answer predates it, nothing twice.
    assert reconcile.reconcile() == {"orphaned": 0, "kicked": 0, "destroyed": 0}

    engine.received.clear()
    while send_queued_commands():
        pass
    # The orphan's own kick (in case the engine finds the call again), then the repair.
    assert [r.json for r in engine.received] == [
        {"command": "kick", "session_uuid": session.session_uuid, "room_id": room.room_id}
        for session in (lost, lingering)
    ]
    # The engine carried out the kick: the call is still up, in no room. Nothing left to repair.
    live_sessions_answer(
        engine,
        lambda: {"node": settings.NODE_HASH, "sessions": [{"session_uuid": lingering.session_uuid, "room_id": None}]},
    )
    assert reconcile.reconcile() == {"orphaned": 0, "kicked": 0, "destroyed": 0}


def test_reconciliation_destroys_again_a_room_the_engine_still_holds(tenant, engine):
    from django.conf import settings

    room = create_room(actor=SYSTEM, app=tenant.app, name="held")
    destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    send_queued_commands()
    EngineCommand.objects.update(completed_at=long_ago())
    type(room).objects.filter(pk=room.pk).update(destroyed_at=long_ago())
    live_sessions_answer(engine, lambda: {"node": settings.NODE_HASH, "sessions": [], "rooms": [room.room_id]})

    assert reconcile.reconcile()["destroyed"] == 1
    assert send_queued_commands() == ["destroy_room"]


def test_a_session_created_while_reconciliation_runs_survives_it(tenant, engine):
    from django.conf import settings

    old = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+1", session_uuid=None)
    CallSession.objects.update(created_at=long_ago(), last_seen_at=long_ago())
    created = []

    def body():
        # A call starts after the engine composed its answer, before the service reads it.
        created.append(create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+2", session_uuid=None))
        return {"node": settings.NODE_HASH, "sessions": [old.session_uuid]}

    live_sessions_answer(engine, body)
    assert reconcile.reconcile()["orphaned"] == 0
    [new] = created
    assert CallSession.objects.get(pk=new.pk).state == "active"
    assert CallSession.objects.get(pk=old.pk).state == "active"
