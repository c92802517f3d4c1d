"""Each console action fires the same webhooks and history entries as its API (or engine) twin,
with the staff user as the actor, and reports per object what it did or why not."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from conferences.actors import Actor
from conferences.models import (
    AuditEntry,
    CallSession,
    Delivery,
    EngineCommand,
    Event,
    Member,
    PlaybackOperation,
    Room,
    WebhookEndpoint,
)
from conferences.services import members
from conferences.services.endpoints import create_endpoint
from conferences.services.sessions import create_session
from tests.conftest import assert_valid_event

pytestmark = pytest.mark.django_db
ENGINE_TOKEN = "console-engine-token"
ENGINE = Actor.engine("tests")
NAMED = ("room_id", "session_uuid", "operation_id", "command_uid", "app_id")


class Scene:
    """One app's room "standup" with a joined call; marks where its effects start."""

    def __init__(self, tenant, api, *, muted=False):
        self.tenant, self.api = tenant, api
        self.room_id = api.post("/api/v1/conferences", {"name": "standup"}, format="json").json()["room_id"]
        self.session_uuid = create_session(
            actor=ENGINE, app_id=tenant.app.app_id, caller_id="+15550001", session_uuid=None
        ).session_uuid
        joined = api.post(
            f"/api/v1/sessions/{self.session_uuid}/commands/conference/join",
            {"room_id": self.room_id, "muted": muted},
            format="json",
        )
        assert joined.status_code == 202, joined.content
        assert members.confirm_join(actor=ENGINE, session_uuid=self.session_uuid, room_id=self.room_id)
        self.mark()

    def mark(self):
        self.last_event = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self.last_entry = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0

    @property
    def room(self) -> Room:
        return Room.objects.get(room_id=self.room_id)

    @property
    def member(self) -> Member:
        return Member.objects.get(session__session_uuid=self.session_uuid, room__room_id=self.room_id)

    @property
    def session(self) -> CallSession:
        return CallSession.objects.get(session_uuid=self.session_uuid)

    def webhooks(self) -> list[dict]:
        """The bodies of the events since the mark, with this scene's ids named, not valued."""
        payloads = Event.objects.filter(app=self.tenant.app, id__gt=self.last_event).order_by("id")
        bodies = []
        for event in payloads:
            assert_valid_event(event.payload)
            bodies.append({key: f"<{key}>" if key in NAMED else value for key, value in event.payload.items()})
        return bodies

    def history(self) -> list[AuditEntry]:
        return list(AuditEntry.objects.filter(app_id=self.tenant.app.app_id, id__gt=self.last_entry).order_by("id"))


def assert_twins(by_api: Scene, by_staff: Scene, *, api_actor_kind="app") -> list[dict]:
    webhooks = by_api.webhooks()
    assert webhooks and webhooks == by_staff.webhooks()
    api_history, staff_history = by_api.history(), by_staff.history()
    assert [(e.action, e.outcome) for e in api_history] == [(e.action, e.outcome) for e in staff_history]
    assert {e.actor_kind for e in api_history} == {api_actor_kind}
    assert {(e.actor_kind, e.actor) for e in staff_history} == {("staff", "sam-support")}
    return webhooks


def act(client, model: str, action: str, *objects, **extra) -> list[str]:
    response = client.post(
        f"/admin/conferences/{model}/",
        {"action": action, "_selected_action": [o.pk for o in objects], **extra},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def scenes(make_tenant, client_for):
    def make(**kwargs) -> tuple[Scene, Scene]:
        first, second = make_tenant(), make_tenant()
        return Scene(first, client_for(first), **kwargs), Scene(second, client_for(second), **kwargs)

    return make


def test_kick(support, scenes):
    by_api, by_staff = scenes()
    assert by_api.api.delete(f"/api/v1/conferences/{by_api.room_id}/members/{by_api.session_uuid}").status_code == 204
    messages = act(support, "member", "kick", by_staff.member)
    assert messages == [f"{by_staff.session_uuid} in {by_staff.room_id}: kicked from {by_staff.room_id}."]
    webhooks = assert_twins(by_api, by_staff)
    assert [w["event"] for w in webhooks] == ["conference.member.left"] and webhooks[0]["reason"] == "removed"
    assert EngineCommand.objects.filter(room=by_staff.room, command="kick").exists()
    # Again: the member is gone, and the report says so.
    assert act(support, "member", "kick", by_staff.member) == [
        f"{by_staff.member}: not done, not in the conference (any more)."
    ]


@pytest.mark.parametrize("model", ["member", "callsession"])
def test_mute_and_unmute(support, scenes, model):
    by_api, by_staff = scenes()
    target = by_staff.member if model == "member" else by_staff.session
    for command in ("mute", "unmute"):
        by_api.mark(), by_staff.mark()
        assert (
            by_api.api.post(
                f"/api/v1/sessions/{by_api.session_uuid}/commands/conference/{command}", {}, format="json"
            ).status_code
            == 202
        )
        assert act(support, model, command, target) == [f"{by_staff.session_uuid}: {command}d."]
        webhooks = assert_twins(by_api, by_staff)
        assert [w["event"] for w in webhooks] == [f"conference.member.{command}d", "command.result"]
    assert by_staff.member.muted is False


def test_mute_of_a_call_in_no_room_says_why_not(support, scenes):
    _, by_staff = scenes()
    members.end_session(actor=ENGINE, session_uuid=by_staff.session_uuid, reason="hangup", tell_engine=False)
    session = by_staff.session
    assert act(support, "callsession", "mute", session) == [f"{session}: not done, session not found."]


def test_hang_up_is_the_engine_reporting_a_hang_up(support, scenes, client_for):
    by_api, by_staff = scenes()
    engine = client_for(None)
    with override_settings(ENGINE_TOKEN=ENGINE_TOKEN):
        reported = engine.post(
            "/api/v1/engine/events",
            {"type": "session.ended", "session_uuid": by_api.session_uuid},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {ENGINE_TOKEN}",
        )
    assert reported.status_code == 200
    assert act(support, "callsession", "hang_up", by_staff.session) == [f"{by_staff.session_uuid}: hung up."]
    webhooks = assert_twins(by_api, by_staff, api_actor_kind="engine")
    assert webhooks == [
        {
            "event": "conference.member.left",
            "room_id": "<room_id>",
            "session_uuid": "<session_uuid>",
            "caller_id": "+15550001",
            "reason": "hangup",
        }
    ]
    # The engine reported its own hang-up; staff's leaves a call to drop from the room.
    assert not EngineCommand.objects.filter(room=by_api.room, command="kick").exists()
    assert EngineCommand.objects.filter(room=by_staff.room, command="kick").exists()
    assert act(support, "callsession", "hang_up", by_staff.session) == [
        f"{by_staff.session_uuid}: not done, already ended."
    ]


def test_stop_playback(support, scenes):
    by_api, by_staff = scenes()
    for scene in (by_api, by_staff):
        assert (
            scene.api.post(
                f"/api/v1/conferences/{scene.room_id}/play", {"urls": ["https://cdn.example.com/a.wav"]}, format="json"
            ).status_code
            == 200
        )
        scene.mark()
    assert by_api.api.post(f"/api/v1/conferences/{by_api.room_id}/stop").status_code == 200
    assert act(support, "room", "stop_playback", by_staff.room) == [f"{by_staff.room_id}: playback stopped."]
    webhooks = assert_twins(by_api, by_staff)
    assert [w["event"] for w in webhooks] == ["conference.play.stopped"]
    assert act(support, "room", "stop_playback", by_staff.room) == [
        f"{by_staff.room_id}: not done, no playback in this conference."
    ]


def test_destroy_room(support, scenes):
    by_api, by_staff = scenes()
    assert by_api.api.delete(f"/api/v1/conferences/{by_api.room_id}").status_code == 204
    assert act(support, "room", "destroy", by_staff.room) == [f"{by_staff.room_id}: destroyed."]
    webhooks = assert_twins(by_api, by_staff)
    assert [w["event"] for w in webhooks] == ["conference.member.left", "conference.destroyed"]
    assert act(support, "room", "destroy", by_staff.room) == [f"{by_staff.room_id}: not done, conference not found."]


@pytest.fixture
def failed_deliveries(make_tenant, client_for):
    """Two apps, each with an endpoint whose one delivery (conference.created) failed."""
    scenes = []
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        for _ in range(2):
            tenant = make_tenant()
            endpoint = create_endpoint(actor=Actor.system("tests"), app=tenant.app, url="http://127.0.0.1:9/hook")
            api = client_for(tenant)
            api.post("/api/v1/conferences", {"name": "hooks"}, format="json")
            Delivery.objects.filter(endpoint=endpoint).update(status="failed", completed_at=timezone.now())
            scene = Scene.__new__(Scene)
            scene.tenant, scene.api, scene.endpoint = tenant, api, endpoint
            scene.delivery = Delivery.objects.get(endpoint=endpoint)
            scene.mark()
            scenes.append(scene)
    return scenes


def test_redeliver(support, failed_deliveries):
    by_api, by_staff = failed_deliveries
    assert by_api.api.post(f"/api/v1/webhooks/deliveries/{by_api.delivery.pk}/redeliver").status_code == 202
    assert act(support, "delivery", "redeliver", by_staff.delivery) == [
        f"delivery #{by_staff.delivery.pk} (failed): queued again under the same webhook-id."
    ]
    for scene in (by_api, by_staff):
        assert Delivery.objects.get(pk=scene.delivery.pk).status == "pending"
    assert [(e.action, e.actor_kind) for e in by_staff.history()] == [("webhook_delivery.redeliver", "staff")]
    assert [e.action for e in by_api.history()] == ["webhook_delivery.redeliver"]
    assert by_staff.history()[0].room_id == by_staff.delivery.ordering_key  # on the room's timeline
    report = act(support, "delivery", "redeliver", by_staff.delivery)
    assert report == [f"{Delivery.objects.get(pk=by_staff.delivery.pk)}: not done, the delivery is pending already."]


def test_recover_asks_since_when_then_queues_the_failures(support, failed_deliveries):
    by_api, by_staff = failed_deliveries
    since = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
    assert by_api.api.post(
        f"/api/v1/webhooks/endpoints/{by_api.endpoint.endpoint_id}/recover", {"since": since.isoformat()}, format="json"
    ).json() == {"queued": 1}
    form = support.post(
        "/admin/conferences/webhookendpoint/", {"action": "recover", "_selected_action": [by_staff.endpoint.pk]}
    )
    assert form.status_code == 200 and 'name="since"' in form.content.decode()
    assert Delivery.objects.get(pk=by_staff.delivery.pk).status == "failed"  # nothing yet
    messages = act(
        support, "webhookendpoint", "recover", by_staff.endpoint, apply="1", since=since.strftime("%Y-%m-%d %H:%M:%S")
    )
    assert messages == [f"{by_staff.endpoint}: 1 deliveries queued again."]
    assert Delivery.objects.get(pk=by_staff.delivery.pk).status == "pending"
    assert [(e.action, e.detail["count"]) for e in by_api.history()] == [("webhook_delivery.redeliver_failed", 1)]
    assert [(e.action, e.actor) for e in by_staff.history()] == [("webhook_delivery.redeliver_failed", "sam-support")]


def test_disable_and_enable_an_endpoint(support, failed_deliveries):
    _, by_staff = failed_deliveries
    endpoint = by_staff.endpoint
    assert act(support, "webhookendpoint", "disable", endpoint) == [f"{endpoint}: disabled."]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is False
    assert act(support, "webhookendpoint", "disable", endpoint) == [f"{endpoint}: was disabled already."]
    assert act(support, "webhookendpoint", "enable", endpoint) == [f"{endpoint}: enabled."]
    assert act(support, "webhookendpoint", "enable", endpoint) == [f"{endpoint}: was enabled already."]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is True
    assert [(e.action, e.actor_kind, e.actor) for e in by_staff.history()] == [
        ("webhook_endpoint.disable", "staff", "sam-support"),
        ("webhook_endpoint.enable", "staff", "sam-support"),
    ]


def test_stop_a_playback_stops_only_that_play(support, scenes):
    _, by_staff = scenes()

    def play():
        body = {"urls": ["https://cdn.example.com/a.wav"]}
        return by_staff.api.post(f"/api/v1/conferences/{by_staff.room_id}/play", body, format="json").json()[
            "operation_id"
        ]

    first = PlaybackOperation.objects.get(operation_id=play())
    assert act(support, "playbackoperation", "stop", first) == [f"{first.operation_id}: stopped."]
    second = PlaybackOperation.objects.get(operation_id=play())
    assert act(support, "playbackoperation", "stop", first) == [
        f"{first.operation_id}: not done, no playback in this conference."
    ]
    assert PlaybackOperation.objects.get(pk=second.pk).state == "playing"  # the newer play goes on


def test_mute_of_a_past_stay_is_refused_not_applied_to_the_next_room(support, scenes):
    _, by_staff = scenes()
    past = by_staff.member
    assert (
        by_staff.api.post(
            f"/api/v1/sessions/{by_staff.session_uuid}/commands/conference/leave", {}, format="json"
        ).status_code
        == 202
    )
    other_room = by_staff.api.post("/api/v1/conferences", {"name": "other"}, format="json").json()["room_id"]
    by_staff.api.post(
        f"/api/v1/sessions/{by_staff.session_uuid}/commands/conference/join", {"room_id": other_room}, format="json"
    )
    members.confirm_join(actor=ENGINE, session_uuid=by_staff.session_uuid, room_id=other_room)
    past = Member.objects.select_related("session", "room").get(pk=past.pk)
    assert act(support, "member", "mute", past) == [f"{past}: not done, not in the conference (any more)."]
    assert Member.objects.get(session__session_uuid=by_staff.session_uuid, room__room_id=other_room).muted is False


def test_select_all_is_bounded(support, scenes, monkeypatch):
    from conferences.admin import base

    monkeypatch.setattr(base, "MAX_ACTION_ROWS", 1)
    first, second = scenes()
    response = support.post(
        "/admin/conferences/room/",
        {"action": "destroy", "select_across": "1", "index": "0", "_selected_action": [first.room.pk]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Not done: an action takes at most 1 rows at once; narrow the list with a search or a filter."
    ]
    assert Room.objects.filter(destroyed_at__isnull=True).count() == 2
