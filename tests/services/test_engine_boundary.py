"""The engine boundary in one process: the outbox's claim and finish rules, the http adapter's
contract, the sim adapter, and start-up without a command key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from conferences.actors import Actor
from conferences.engine.base import EngineState
from conferences.engine.http import parse_live_state
from conferences.engine.sim import SimEngine, file_behaviour
from conferences.models import AuditEntry, EngineCommand, Event
from conferences.services import engine_dispatch, members, playback
from conferences.services.engine_dispatch import Result
from conferences.services.rooms import create_room
from conferences.services.sessions import create_session
from tests.conftest import pending_join

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def room(tenant):
    return create_room(actor=SYSTEM, app=tenant.app, name="boundary")


def play(tenant, room):
    return playback.play(actor=SYSTEM, app=tenant.app, room_id=room.room_id, urls=["https://cdn.example.com/a.wav"])


def test_a_room_has_one_command_in_flight_and_a_retry_holds_its_queue(tenant, room):
    other = create_room(actor=SYSTEM, app=tenant.app, name="other")
    play(tenant, room)
    playback.stop(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    play(tenant, other)

    claims = engine_dispatch.claim(limit=10)
    assert [(c.command, c.arguments["room_id"]) for c in claims] == [("play", room.room_id), ("play", other.room_id)]
    assert engine_dispatch.claim(limit=10) == []  # each room's head is leased; its stop waits

    with override_settings(ENGINE_RETRY_SCHEDULE=[3]):  # due before the play's own deadline
        engine_dispatch.finish([(claims[0], Result("engine answered 503")), (claims[1], Result())])
    first = EngineCommand.objects.get(pk=claims[0].command_id)
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "engine answered 503")
    assert engine_dispatch.claim(limit=10) == []  # the retry, due later, still holds its room


def test_a_late_finish_of_a_command_taken_over_changes_nothing(tenant, room):
    play(tenant, room)
    [stale] = engine_dispatch.claim(limit=1)
    EngineCommand.objects.update(lease_expires_at=None)  # its lease ran out; another worker took it
    [current] = engine_dispatch.claim(limit=1)
    assert current.attempts == 2
    engine_dispatch.finish([(stale, Result("too late", final=True))])
    assert EngineCommand.objects.get().status == "pending"
    engine_dispatch.finish([(current, Result())])
    assert EngineCommand.objects.get().status == "sent"


def test_a_refused_play_fails_at_once_with_playback_error(tenant, room):
    started = play(tenant, room)
    [claim] = engine_dispatch.claim(limit=1)
    assert engine_dispatch.finish([(claim, Result("engine refused: 422", final=True))]) == 1
    failed = Event.objects.filter(payload__event="conference.play.failed").get().payload
    assert (failed["operation_id"], failed["error"]) == (started["operation_id"], "playback_error")
    entry = AuditEntry.objects.get(action="engine.play")
    assert (entry.outcome, entry.detail["error"]) == ("engine_unavailable", "engine refused: 422")


def test_a_join_is_not_retried_past_its_own_deadline(tenant, room):
    session = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+1", session_uuid=None)
    with override_settings(JOIN_TIMEOUT_SECONDS=1):
        pending_join(tenant.app, session.session_uuid, room.room_id)
    [claim] = engine_dispatch.claim(limit=1)
    with override_settings(ENGINE_RETRY_SCHEDULE=[5]):  # the retry would come after the join's timeout
        assert engine_dispatch.finish([(claim, Result("engine answered 503"))]) == 1
    result = Event.objects.get(payload__event="command.result").payload
    assert (result["success"], result["error"]) == (False, "engine_unavailable")


def test_other_commands_that_finally_fail_are_recorded_in_the_history(tenant, room):
    playback.set_volume(actor=SYSTEM, app=tenant.app, room_id=room.room_id, volume=3)
    with override_settings(ENGINE_RETRY_SCHEDULE=[]):
        [claim] = engine_dispatch.claim(limit=1)
        assert engine_dispatch.finish([(claim, Result("ConnectError: refused"))]) == 1
    entry = AuditEntry.objects.get(action="engine.set_volume")
    assert (entry.outcome, entry.room_id, entry.detail["attempts"]) == ("engine_unavailable", room.room_id, 1)


def test_live_sessions_answers_are_read_strictly():
    state = parse_live_state(
        {
            "node": "abCDE",
            "sessions": [{"session_uuid": "s1", "room_id": "r1"}, {"session_uuid": "s2", "room_id": None}],
            "rooms": ["r1"],
        }
    )
    assert state == EngineState(node="abCDE", sessions={"s1": "r1", "s2": None}, rooms=frozenset({"r1"}))
    bare = parse_live_state({"node": "abCDE", "sessions": ["s1"]})
    assert (bare.sessions, bare.rooms) == ({"s1": None}, None)
    for body in (
        [],
        {"node": "abc", "sessions": []},
        {"node": "abCDE"},
        {"node": "abCDE", "sessions": [5]},
        {"node": "abCDE", "sessions": [{"session_uuid": "s", "room_id": 5}]},
        {"node": "abCDE", "sessions": [], "rooms": "r1"},
    ):
        with pytest.raises(ValueError):
            parse_live_state(body)


def test_the_sim_reports_its_nodes_sessions_in_their_rooms(tenant, room, settings):
    idle = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+1", session_uuid=None)
    joining = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+2", session_uuid=None)
    create_session(
        actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+3", session_uuid="zzZZZ-" + idle.session_uuid[6:]
    )
    pending_join(tenant.app, joining.session_uuid, room.room_id)
    state = SimEngine().live_state()
    assert state == EngineState(
        node=settings.NODE_HASH, sessions={idle.session_uuid: None, joining.session_uuid: room.room_id}
    )


def test_the_sim_caps_a_files_duration():
    assert file_behaviour("https://x/a.wav#duration=100000000000") == (3600.0, "finish")
    assert file_behaviour("https://x/a.wav#duration=1.5&error") == (1.5, "error")


def test_engine_http_without_a_command_key_fails_at_start_up():
    env = {key: value for key, value in os.environ.items() if key != "ENGINE_SECRET"}
    env.update(ENGINE="http", ENGINE_URL="http://127.0.0.1:9/engine", ENGINE_TOKEN="ingress-token")
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode != 0
    assert "ENGINE=http needs ENGINE_URL and ENGINE_SECRET" in completed.stderr


def test_a_play_the_engine_may_have_started_is_stopped_when_it_fails(tenant, room):
    play(tenant, room)
    [claim] = engine_dispatch.claim(limit=1)
    with override_settings(ENGINE_RETRY_SCHEDULE=[]):
        assert engine_dispatch.finish([(claim, Result("ReadTimeout: no answer"))]) == 1
    assert Event.objects.filter(payload__event="conference.play.failed").count() == 1
    assert [c.command for c in engine_dispatch.claim(limit=10)] == ["stop"]


def test_a_command_past_its_deadline_is_not_sent_and_nothing_is_undone(tenant, room):
    from django.utils import timezone

    play(tenant, room)
    EngineCommand.objects.update(give_up_at=timezone.now())
    [claim] = engine_dispatch.claim(limit=1)
    assert claim.overdue
    result = engine_dispatch.execute(claim)  # the engine is never called
    assert (result.sent, result.final) == (False, True)
    assert engine_dispatch.finish([(claim, result)]) == 1
    assert Event.objects.filter(payload__event="conference.play.failed").count() == 1
    assert engine_dispatch.claim(limit=10) == []  # no stop for a play the engine never got


def test_a_join_waits_for_its_sessions_earlier_commands_in_another_room(tenant, room):
    other = create_room(actor=SYSTEM, app=tenant.app, name="next")
    session = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+1", session_uuid=None)
    pending_join(tenant.app, session.session_uuid, room.room_id, command_uid="first")
    members.confirm_join(actor=SYSTEM, session_uuid=session.session_uuid, room_id=room.room_id)
    members.kick(actor=SYSTEM, app=tenant.app, room_id=room.room_id, session_uuid=session.session_uuid)
    pending_join(tenant.app, session.session_uuid, other.room_id, command_uid="second")

    sent = []
    while claims := engine_dispatch.claim(limit=10):
        sent.append([(c.command, c.arguments["room_id"]) for c in claims])
        engine_dispatch.finish([(c, Result()) for c in claims])
    # The next room's join is the head of its own queue from the start, yet goes last.
    assert sent == [[("join", room.room_id)], [("kick", room.room_id)], [("join", other.room_id)]]


def test_one_wake_up_per_transaction_however_many_commands(tenant, room):
    from django.db import connection, transaction

    with transaction.atomic():
        for volume in (1, 2, 3):
            playback.set_volume(actor=SYSTEM, app=tenant.app, room_id=room.room_id, volume=volume)
        wake_ups = [getattr(callback, "outbox_kinds", None) for _, callback, _ in connection.run_on_commit]
    assert EngineCommand.objects.count() == 3
    assert [kinds for kinds in wake_ups if kinds] == [{"engine"}]


def test_the_sim_reports_a_command_it_cannot_carry_out(monkeypatch, tenant, room):
    from conferences import publish
    from conferences.engine.base import EngineUnavailable

    monkeypatch.setattr(publish, "_broker_down_until", float("inf"))
    with pytest.raises(EngineUnavailable):
        SimEngine().join(session_uuid="s", room_id=room.room_id, muted=False, operation_id="o")
    with pytest.raises(EngineUnavailable):
        SimEngine().play(room_id=room.room_id, operation_id="o", urls=["https://x/a.wav"], volume=0)
