"""Retention (SPEC 12): events with their deliveries, and ended rooms, sessions, members and
finished playbacks go after their periods; nothing still needed goes."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from conferences.actors import Actor
from conferences.models import (
    CallSession,
    Delivery,
    DeliveryAttempt,
    EngineCommand,
    Event,
    Member,
    PlaybackOperation,
    Room,
)
from conferences.services import members, retention
from conferences.services.endpoints import create_endpoint
from conferences.services.sessions import create_session

pytestmark = pytest.mark.django_db
ENGINE = Actor.engine("tests")


def room_with_a_call(api, tenant, name):
    room_id = api.post("/api/v1/conferences", {"name": name}, format="json").json()["room_id"]
    session = create_session(actor=ENGINE, app_id=tenant.app.app_id, caller_id="+15550009", session_uuid=None)
    api.post(f"/api/v1/sessions/{session.session_uuid}/commands/conference/join", {"room_id": room_id}, format="json")
    members.confirm_join(actor=ENGINE, session_uuid=session.session_uuid, room_id=room_id)
    api.post(f"/api/v1/conferences/{room_id}/play", {"urls": ["https://cdn.example.com/a.wav"]}, format="json")
    api.post(f"/api/v1/conferences/{room_id}/stop")
    members.end_session(actor=ENGINE, session_uuid=session.session_uuid, reason="hangup", tell_engine=False)
    return Room.objects.get(room_id=room_id), session


def age(room: Room, session: CallSession, *, days: float, destroyed: bool = True) -> None:
    then = timezone.now() - timedelta(days=days)
    Event.objects.filter(room=room).update(created_at=then)
    Event.objects.filter(ordering_key=session.session_uuid).update(created_at=then)
    Delivery.objects.update(status="delivered")
    PlaybackOperation.objects.filter(room=room).update(ended_at=then)
    Member.objects.filter(room=room).update(ended_at=then)
    CallSession.objects.filter(pk=session.pk).update(ended_at=then)
    EngineCommand.objects.filter(room=room).update(status="sent", created_at=then, completed_at=then)
    if destroyed:
        Room.objects.filter(pk=room.pk).update(destroyed_at=then)


def test_old_events_rooms_and_calls_go_and_the_rest_stays(api, tenant):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        create_endpoint(actor=Actor.system("tests"), app=tenant.app, url="http://127.0.0.1:9/hook")
    gone, gone_session = room_with_a_call(api, tenant, "gone")
    live, live_session = room_with_a_call(api, tenant, "live")
    recent, recent_session = room_with_a_call(api, tenant, "recent")
    age(gone, gone_session, days=100)
    age(live, live_session, days=100, destroyed=False)
    age(recent, recent_session, days=10)
    Delivery.objects.update(status="delivered")
    DeliveryAttempt.objects.create(delivery=Delivery.objects.filter(event__room=gone).first(), number=1)
    waiting = Delivery.objects.filter(event__room=live).order_by("id").last()
    Delivery.objects.filter(pk=waiting.pk).update(status="pending")  # still to be sent: its event stays

    with override_settings(EVENT_RETENTION_DAYS=30, ROOM_RETENTION_DAYS=90):
        removed = retention.prune(batch=3)  # several batches

    old_events = (
        Event.objects.filter(room__in=[gone, live]).count()
        + Event.objects.filter(ordering_key__in=[gone_session.session_uuid, live_session.session_uuid]).count()
    )
    assert old_events == 1 and Event.objects.filter(deliveries=waiting).exists()
    assert not Room.objects.filter(pk=gone.pk).exists() and not CallSession.objects.filter(pk=gone_session.pk).exists()
    assert Room.objects.filter(pk__in=[live.pk, recent.pk]).count() == 2  # live; destroyed 10 days ago
    # The live room's ended call is old enough to go; the recent room keeps everything.
    assert not CallSession.objects.filter(pk=live_session.pk).exists()
    assert Event.objects.filter(room=recent).count() == 5 and Member.objects.filter(room=recent).count() == 1
    assert removed["rooms"] == 1 and removed["sessions"] == 2 and removed["members"] == 2
    assert removed["playbacks"] == 2 and removed["events"] > 10
    assert retention.prune() == dict.fromkeys(removed, 0)  # nothing more is due
