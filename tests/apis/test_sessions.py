import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from conferences.actors import Actor
from conferences.models import AuditEntry, CallSession, Event, Member
from conferences.services import members
from conferences.services.sessions import create_session
from tests.conftest import assert_error, assert_valid_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("engine_token")]

ENGINE_TOKEN = "test-engine-token"
SYSTEM = Actor.system("tests")


@pytest.fixture
def engine_token():
    with override_settings(ENGINE_TOKEN=ENGINE_TOKEN):
        yield


@pytest.fixture
def engine(client_for):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ENGINE_TOKEN}")

    def report(**body):
        return client.post("/api/v1/engine/events", body, format="json")

    return report


@pytest.fixture
def room_id(api):
    return api.post("/api/v1/conferences", {"name": "standup"}, format="json").json()["room_id"]


@pytest.fixture
def session_uuid(tenant):
    return create_session(
        actor=SYSTEM, app_id=tenant.app.app_id, caller_id="+15551234567", session_uuid=None
    ).session_uuid


def command(api, session_uuid, name, **body):
    return api.post(f"/api/v1/sessions/{session_uuid}/commands/conference/{name}", body, format="json")


def joined(api, engine, session_uuid, room_id, **extra):
    assert command(api, session_uuid, "join", room_id=room_id, **extra).status_code == 202
    assert engine(type="member.joined", session_uuid=session_uuid, room_id=room_id).status_code == 200


def events(event_type=None):
    found = Event.objects.order_by("id")
    if event_type:
        found = found.filter(event_type=event_type)
    payloads = [e.payload for e in found]
    for payload in payloads:
        assert_valid_event(payload)
    return payloads


# --- join ------------------------------------------------------------------------------------


def test_join_is_accepted_and_pending_until_the_engine_confirms(api, engine, session_uuid, room_id):
    response = command(api, session_uuid, "join", room_id=room_id)
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"operation_id", "status", "timeout_ms"}
    assert body["status"] == "in_progress" and body["timeout_ms"] == 2000
    assert re.fullmatch(r"[0-9a-f-]{36}", body["operation_id"])
    detail = api.get(f"/api/v1/conferences/{room_id}").json()
    assert detail["member_count"] == 1
    assert detail["members"][0]["state"] == "joining"
    assert detail["members"][0]["joined_at"] is None
    assert events("conference.member.joined") == []

    assert engine(type="member.joined", session_uuid=session_uuid, room_id=room_id).status_code == 200
    member = api.get(f"/api/v1/conferences/{room_id}/members").json()[0]
    assert (member["session_uuid"], member["caller_id"], member["state"], member["muted"]) == (
        session_uuid,
        "+15551234567",
        "joined",
        False,
    )
    assert member["joined_at"] is not None
    assert events("conference.member.joined") == [
        {
            "event": "conference.member.joined",
            "session_uuid": session_uuid,
            "room_id": room_id,
            "caller_id": "+15551234567",
        }
    ]
    result = events("command.result")
    assert len(result) == 1
    assert result[0]["operation_id"] == body["operation_id"]
    assert result[0]["success"] is True and result[0]["error"] is None
    assert result[0]["command"] == "conference/join"
    assert re.fullmatch(r"[0-9a-f-]{36}", result[0]["command_uid"])  # minted when none was sent


def test_a_second_confirmation_changes_nothing(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    response = engine(type="member.joined", session_uuid=session_uuid, room_id=room_id)
    assert response.status_code == 200 and response.json()["changed"] is False
    assert len(events("conference.member.joined")) == 1
    assert len(events("command.result")) == 1


def test_join_muted(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id, muted=True)
    assert api.get(f"/api/v1/sessions/{session_uuid}").json()["muted"] is True


def test_join_while_in_a_room_answers_409_naming_it(api, session_uuid, room_id):
    other = api.post("/api/v1/conferences", {"name": "other"}, format="json").json()["room_id"]
    command(api, session_uuid, "join", room_id=room_id)
    body = assert_error(command(api, session_uuid, "join", room_id=other), 409, "already_in_conference")
    assert body["detail"] == {"room_id": room_id}
    assert Member.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"room_id": 5},
        {"room_id": "r", "muted": "true"},
        {"room_id": "r", "muted": 1},
        {"room_id": "r", "muted": None},
        {"room_id": "r", "command_uid": "has space"},
        {"room_id": "r", "command_uid": ""},
        {"room_id": "r", "command_uid": "x" * 129},
        {"room_id": "r", "command_uid": 7},
    ],
)
def test_join_validation(api, session_uuid, body):
    assert_error(command(api, session_uuid, "join", **body), 400, "invalid")


def test_unknown_session_or_room_answers_404(api, session_uuid, room_id):
    assert_error(command(api, "nope-" + session_uuid, "join", room_id=room_id), 404, "not_found")
    assert_error(command(api, session_uuid, "join", room_id="x-room-nope"), 404, "not_found")
    assert_error(api.get("/api/v1/sessions/nope"), 404, "not_found")


def test_another_apps_session_and_room_answer_404(api, client_for, other_tenant, session_uuid, room_id):
    theirs = client_for(other_tenant)
    their_room = theirs.post("/api/v1/conferences", {"name": "theirs"}, format="json").json()["room_id"]
    their_session = create_session(actor=SYSTEM, app_id=other_tenant.app.app_id, caller_id="1", session_uuid=None)
    for name in ("join", "leave", "mute", "unmute"):
        assert_error(command(theirs, session_uuid, name, room_id=their_room), 404, "not_found")
    assert_error(theirs.get(f"/api/v1/sessions/{session_uuid}"), 404, "not_found")
    assert_error(command(api, session_uuid, "join", room_id=their_room), 404, "not_found")
    assert_error(command(api, their_session.session_uuid, "join", room_id=room_id), 404, "not_found")
    assert_error(theirs.get(f"/api/v1/conferences/{room_id}/members"), 404, "not_found")
    assert_error(theirs.delete(f"/api/v1/conferences/{room_id}/members/{session_uuid}"), 404, "not_found")
    assert Member.objects.count() == 0


def test_an_ended_session_takes_no_commands(api, engine, session_uuid, room_id):
    engine(type="session.ended", session_uuid=session_uuid)
    assert_error(command(api, session_uuid, "join", room_id=room_id), 404, "not_found")
    assert api.get(f"/api/v1/sessions/{session_uuid}").json()["state"] == "ended"


# --- leave, mute, unmute --------------------------------------------------------------------


def test_leave_emits_left_removed_and_a_result(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    response = command(api, session_uuid, "leave", command_uid="leave-1")
    assert response.status_code == 202
    assert events("conference.member.left") == [
        {
            "event": "conference.member.left",
            "session_uuid": session_uuid,
            "room_id": room_id,
            "reason": "removed",
            "caller_id": "+15551234567",
        }
    ]
    result = events("command.result")[-1]
    assert (result["command"], result["command_uid"], result["success"]) == ("conference/leave", "leave-1", True)
    assert result["operation_id"] == response.json()["operation_id"]
    assert api.get(f"/api/v1/sessions/{session_uuid}").json() == {
        "session_uuid": session_uuid,
        "caller_id": "+15551234567",
        "state": "active",
        "room_id": None,
        "muted": False,
    }
    assert api.get(f"/api/v1/conferences/{room_id}").json()["member_count"] == 0


@pytest.mark.parametrize("name", ["leave", "mute", "unmute"])
def test_commands_that_need_a_joined_member_answer_409(api, session_uuid, room_id, name):
    assert_error(command(api, session_uuid, name), 409, "not_in_conference")
    command(api, session_uuid, "join", room_id=room_id)  # joining is not joined
    assert_error(command(api, session_uuid, name), 409, "not_in_conference")


def test_mute_and_unmute_emit_only_on_change(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    for name in ("mute", "mute", "unmute", "unmute"):
        assert command(api, session_uuid, name).status_code == 202
    member_events = [e["event"] for e in events() if e["event"].startswith("conference.member.")]
    assert member_events == ["conference.member.joined", "conference.member.muted", "conference.member.unmuted"]
    results = [e["command"] for e in events("command.result")]
    assert results == ["conference/join"] + ["conference/mute"] * 2 + ["conference/unmute"] * 2


def test_a_repeated_command_uid_returns_the_first_response_and_runs_nothing(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    first = command(api, session_uuid, "mute", command_uid="m-1")
    before = Event.objects.count()
    again = command(api, session_uuid, "mute", command_uid="m-1")
    assert again.status_code == 202 and again.json() == first.json()
    assert Event.objects.count() == before
    other = command(api, session_uuid, "mute", command_uid="m-2")
    assert other.json()["operation_id"] != first.json()["operation_id"]


def test_a_command_uid_expires_after_24_hours(api, engine, session_uuid, room_id):
    from conferences.models import CommandRecord

    joined(api, engine, session_uuid, room_id)
    first = command(api, session_uuid, "mute", command_uid="m-1")
    CommandRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = command(api, session_uuid, "mute", command_uid="m-1")
    assert again.json()["operation_id"] != first.json()["operation_id"]


def test_a_command_uid_of_another_app_does_not_leak(api, client_for, other_tenant, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    command(api, session_uuid, "mute", command_uid="secret-uid")
    assert_error(command(client_for(other_tenant), session_uuid, "mute", command_uid="secret-uid"), 404, "not_found")


# --- kick, hang-up, room deletion, timeouts -----------------------------------------------


def test_kick_removes_a_member(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    assert api.delete(f"/api/v1/conferences/{room_id}/members/{session_uuid}").status_code == 204
    assert events("conference.member.left")[0]["reason"] == "removed"
    assert_error(api.delete(f"/api/v1/conferences/{room_id}/members/{session_uuid}"), 404, "not_found")


def test_kicking_a_pending_join_cancels_it(api, session_uuid, room_id):
    operation_id = command(api, session_uuid, "join", room_id=room_id, command_uid="j-1").json()["operation_id"]
    assert api.delete(f"/api/v1/conferences/{room_id}/members/{session_uuid}").status_code == 204
    assert events("conference.member.left") == []
    assert events("command.result") == [
        {
            "event": "command.result",
            "operation_id": operation_id,
            "command_uid": "j-1",
            "session_uuid": session_uuid,
            "command": "conference/join",
            "success": False,
            "error": "cancelled",
        }
    ]


def test_hang_up_removes_the_member_with_reason_hangup(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    assert engine(type="session.ended", session_uuid=session_uuid).status_code == 200
    assert events("conference.member.left")[0]["reason"] == "hangup"
    assert CallSession.objects.get(session_uuid=session_uuid).state == "ended"
    assert engine(type="session.ended", session_uuid=session_uuid).json()["changed"] is False
    assert len(events("conference.member.left")) == 1


def test_hang_up_during_a_join_cancels_it(api, engine, session_uuid, room_id):
    command(api, session_uuid, "join", room_id=room_id)
    engine(type="session.ended", session_uuid=session_uuid)
    assert events("conference.member.left") == []
    assert events("command.result")[0]["error"] == "cancelled"


def test_room_deletion_removes_members_in_order(api, engine, tenant, room_id):
    first = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="a", session_uuid=None).session_uuid
    second = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="b", session_uuid=None).session_uuid
    pending = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="c", session_uuid=None).session_uuid
    joined(api, engine, first, room_id)
    joined(api, engine, second, room_id)
    command(api, pending, "join", room_id=room_id)
    Event.objects.all().delete()
    assert api.delete(f"/api/v1/conferences/{room_id}").status_code == 204
    summary = [(e["event"], e.get("session_uuid"), e.get("reason") or e.get("error")) for e in events()]
    assert summary == [
        ("conference.member.left", first, "removed"),
        ("conference.member.left", second, "removed"),
        ("command.result", pending, "cancelled"),
        ("conference.destroyed", None, None),
    ]
    assert api.get(f"/api/v1/sessions/{first}").json()["room_id"] is None


def test_a_join_past_its_deadline_times_out_once(api, engine, session_uuid, room_id):
    command(api, session_uuid, "join", room_id=room_id, command_uid="slow")
    assert members.expire_due_joins(actor=SYSTEM) == 0  # not due yet
    later = timezone.now() + timedelta(seconds=3)
    assert members.expire_due_joins(actor=SYSTEM, now=later) == 1
    assert members.expire_due_joins(actor=SYSTEM, now=later) == 0
    result = events("command.result")
    assert [(r["command_uid"], r["success"], r["error"]) for r in result] == [("slow", False, "timeout")]
    # A confirmation arriving after the timeout changes nothing.
    assert engine(type="member.joined", session_uuid=session_uuid, room_id=room_id).json()["changed"] is False
    assert events("conference.member.joined") == []
    assert api.get(f"/api/v1/sessions/{session_uuid}").json()["room_id"] is None


# --- engine ingress --------------------------------------------------------------------------


def test_ingress_refuses_a_wrong_or_missing_token(client_for):
    client = client_for(None)
    assert_error(
        client.post("/api/v1/engine/events", {"type": "heartbeat"}, format="json"), 401, "authentication_failed"
    )
    client.credentials(HTTP_AUTHORIZATION="Bearer wrong")
    assert_error(
        client.post("/api/v1/engine/events", {"type": "heartbeat"}, format="json"), 401, "authentication_failed"
    )


@override_settings(ENGINE_TOKEN="")
def test_ingress_is_closed_without_a_configured_token(client_for):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer ")
    assert_error(
        client.post("/api/v1/engine/events", {"type": "heartbeat"}, format="json"), 401, "authentication_failed"
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "nope"},
        {"type": 3},
        {"type": "session.ended"},
        {"type": "session.ended", "session_uuid": 5},
        {"type": "member.joined", "session_uuid": "x"},
        {"type": "heartbeat", "node": "abc", "sessions": []},
        {"type": "heartbeat", "node": "abcde", "sessions": "x"},
        {"type": "session.created", "app_id": "Bad App", "caller_id": "1"},
        {"type": "session.created", "app_id": "nobody", "caller_id": "1"},
        {"type": "session.created", "app_id": "nobody", "caller_id": "1", "session_uuid": "not-a-session"},
    ],
)
def test_ingress_answers_400_to_malformed_reports(engine, body):
    assert_error(engine(**body), 400, "invalid")


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "heartbeat", "node": "%s", "sessions": []}' % ("n" * 151),  # oversized
        '{"type": "session.ended", "session_uuid": "abCDE-\\u0000"}',  # NUL
        '{"type": "member.joined", "session_uuid": "\\ud800", "room_id": "r"}',  # a lone surrogate
        '{"type": "heartbeat", "node": "abCDE", "sessions": ["\\udfff"]}',
        '[{"type": "heartbeat"}]',  # not an object
    ],
)
def test_ingress_answers_400_to_fields_no_database_could_hold(client_for, raw):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ENGINE_TOKEN}")
    assert_error(client.post("/api/v1/engine/events", raw, content_type="application/json"), 400, "invalid")


def test_ingress_records_only_validated_fields(client_for, session_uuid):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ENGINE_TOKEN}")
    # Unknown fields (an oversized node, a number no JSON column holds) are dropped, not stored.
    node = "n" * 300
    raw = (
        f'{{"type": "member.left", "session_uuid": "{session_uuid}", "room_id": "nowhere", '
        f'"node": "{node}", "extra": 1e400}}'
    )
    response = client.post("/api/v1/engine/events", raw, content_type="application/json")
    assert response.status_code == 200 and response.json()["changed"] is False
    entry = AuditEntry.objects.get(action="engine.member.left")
    assert (entry.actor, entry.outcome) == ("engine", "ignored")
    assert entry.request == {"type": "member.left", "session_uuid": session_uuid, "room_id": "nowhere"}


def test_session_created_mints_a_uuid_of_this_node(engine, tenant, settings):
    response = engine(type="session.created", app_id=tenant.app.app_id, caller_id="+1555")
    assert response.status_code == 201
    session_uuid = response.json()["session_uuid"]
    assert re.fullmatch(rf"{settings.NODE_HASH}-[0-9a-f-]{{36}}", session_uuid)
    again = engine(type="session.created", app_id=tenant.app.app_id, caller_id="+1555", session_uuid=session_uuid)
    assert again.status_code == 201 and again.json() == {"session_uuid": session_uuid}
    assert CallSession.objects.count() == 1
    given = "abCDE-6a1b0c52-8d0e-4c7f-9a3b-2f1e0d9c8b7a"
    assert engine(type="session.created", app_id=tenant.app.app_id, caller_id="", session_uuid=given).json() == {
        "session_uuid": given
    }
    assert CallSession.objects.get(session_uuid=given).node == "abCDE"


def test_heartbeat_that_no_longer_lists_a_session_orphans_it(api, engine, tenant, room_id):
    kept = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="k", session_uuid=None)
    lost = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="l", session_uuid=None)
    joined(api, engine, lost.session_uuid, room_id)
    CallSession.objects.update(
        created_at=timezone.now() - timedelta(seconds=5), last_seen_at=timezone.now() - timedelta(seconds=5)
    )
    # A call that started a moment ago may be newer than the list: the heartbeat spares it.
    newest = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="n", session_uuid=None)
    response = engine(type="heartbeat", node=kept.node, sessions=[kept.session_uuid])
    assert response.status_code == 200
    assert events("conference.member.left") == [
        {
            "event": "conference.member.left",
            "session_uuid": lost.session_uuid,
            "room_id": room_id,
            "reason": "orphan",
            "caller_id": "l",
        }
    ]
    assert CallSession.objects.get(pk=lost.pk).state == "ended"
    assert CallSession.objects.get(pk=kept.pk).state == "active"
    assert CallSession.objects.get(pk=newest.pk).state == "active"


def test_sessions_not_seen_for_too_long_are_orphaned(tenant):
    from conferences.services.sessions import expire_orphans

    stale = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="s", session_uuid=None)
    fresh = create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id="f", session_uuid=None)
    CallSession.objects.filter(pk=stale.pk).update(last_seen_at=timezone.now() - timedelta(seconds=121))
    assert expire_orphans(actor=SYSTEM) == 1
    assert CallSession.objects.get(pk=stale.pk).state == "ended"
    assert CallSession.objects.get(pk=fresh.pk).state == "active"


def test_engine_member_left_for_a_removed_member_is_ignored(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    command(api, session_uuid, "leave")
    assert engine(type="member.left", session_uuid=session_uuid, room_id=room_id).json()["changed"] is False
    assert len(events("conference.member.left")) == 1


def test_late_playback_reports_are_accepted_and_change_nothing(engine, room_id):
    late = "6a1b0c52-8d0e-4c7f-9a3b-2f1e0d9c8b7a"
    response = engine(type="playback.finished", room_id=room_id, operation_id=late, url="https://x/a.wav")
    assert response.status_code == 200 and response.json()["changed"] is False
    assert events("conference.play.finished") == []
    assert_error(
        engine(type="playback.finished", room_id=room_id, operation_id="op", url="https://x/a.wav"), 400, "invalid"
    )


def test_a_session_id_longer_than_any_answers_404(api):
    assert_error(command(api, "x" * 200, "mute", command_uid="u1"), 404, "not_found")


def test_a_command_uid_reused_for_another_command_answers_409(api, engine, session_uuid, room_id):
    joined(api, engine, session_uuid, room_id)
    command(api, session_uuid, "mute", command_uid="same")
    body = assert_error(command(api, session_uuid, "unmute", command_uid="same"), 409, "command_uid_reused")
    assert body["detail"] == {"command": "conference/mute"}


def test_a_body_over_the_limit_answers_413(engine):
    huge = ["abCDE-6a1b0c52-8d0e-4c7f-9a3b-2f1e0d9c8b7a"] * 200_000
    assert_error(engine(type="heartbeat", node="abCDE", sessions=huge), 413, "payload_too_large")


def test_an_engine_that_fails_in_any_way_fails_the_join(api, session_uuid, room_id):
    from conferences.engine.base import _engine
    from conferences.services import engine_dispatch

    command(api, session_uuid, "join", room_id=room_id)
    with override_settings(ENGINE="http", ENGINE_URL="http://bad host/", ENGINE_SECRET="s", ENGINE_RETRY_SCHEDULE=[]):
        _engine.cache_clear()
        try:
            claims = engine_dispatch.claim(limit=10)
            assert [c.command for c in claims] == ["join"]
            assert engine_dispatch.finish([(c, engine_dispatch.execute(c)) for c in claims]) == 1
        finally:
            _engine.cache_clear()
    assert events("command.result")[0]["error"] == "engine_unavailable"


def test_destroying_a_room_costs_the_same_statements_whatever_its_members(api, engine, tenant):
    """Members end together: the events, their deliveries and the history in a few statements
    however many calls the room holds; joined ones leave, pending joins are cancelled."""
    from bench.round_trips import round_trips

    def room_with(joined_calls: int, joining_calls: int) -> tuple[str, list[str]]:
        room = api.post("/api/v1/conferences", {"name": f"r{joined_calls}"}, format="json").json()["room_id"]
        calls = [
            create_session(actor=SYSTEM, app_id=tenant.app.app_id, caller_id=str(n), session_uuid=None).session_uuid
            for n in range(joined_calls + joining_calls)
        ]
        for n, call in enumerate(calls):
            if n < joined_calls:
                joined(api, engine, call, room)
            else:
                assert command(api, call, "join", room_id=room).status_code == 202
        return room, calls

    statements = []
    for joined_calls, joining_calls in ((1, 0), (3, 2)):
        room, calls = room_with(joined_calls, joining_calls)
        first_event = Event.objects.order_by("-id").values_list("id", flat=True).first()
        with round_trips() as sent:
            assert api.delete(f"/api/v1/conferences/{room}").status_code == 204
        statements.append(sent["statements"])
        written = [e.payload for e in Event.objects.filter(id__gt=first_event).order_by("id")]
        assert [(p["event"], p.get("session_uuid"), p.get("error")) for p in written] == [
            *(("conference.member.left", call, None) for call in calls[:joined_calls]),
            *(("command.result", call, "cancelled") for call in calls[joined_calls:]),
            ("conference.destroyed", None, None),
        ]
    assert statements[0] == statements[1]
