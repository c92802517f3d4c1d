import json
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from conferences.actors import Actor
from conferences.event_schema import SCHEMA_PATH
from conferences.models import AuditEntry, Event, Room
from conferences.services.rooms import create_room, destroy_room
from tests.conftest import assert_valid_event

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")


def test_schema_copy_matches_the_shared_contract():
    shared = Path(__file__).resolve().parents[3] / "shared" / "events.schema.json"
    if not shared.exists():
        pytest.skip("shared/ is not beside this checkout")
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(shared.read_text())


def test_every_stored_event_validates_against_the_schema(tenant):
    rooms = [create_room(actor=SYSTEM, app=tenant.app, name=f"r{i}") for i in range(3)]
    destroy_room(actor=SYSTEM, app=tenant.app, room_id=rooms[0].room_id)
    events = list(Event.objects.all())
    assert len(events) == 4
    for event in events:
        assert_valid_event(event.payload)
        assert event.event_type == event.payload["event"]
        assert event.ordering_key == event.payload["room_id"]


def test_events_of_a_room_are_ordered_by_sequence(tenant):
    room = create_room(actor=SYSTEM, app=tenant.app, name="ordered")
    destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    kinds = list(Event.objects.filter(ordering_key=room.room_id).order_by("id").values_list("event_type", flat=True))
    assert kinds == ["conference.created", "conference.destroyed"]


def test_a_failing_transaction_leaves_no_event_behind(tenant):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            create_room(actor=SYSTEM, app=tenant.app, name="doomed")
            raise RuntimeError("the caller's transaction fails after the room was written")
    assert not Room.objects.exists()
    assert not Event.objects.exists()
    assert not AuditEntry.objects.filter(action="conference.create").exists()


def test_a_failing_destroy_leaves_the_room_and_its_events_as_they_were(tenant):
    room = create_room(actor=SYSTEM, app=tenant.app, name="kept")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
            raise RuntimeError("fails after destroy")
    room.refresh_from_db()
    assert room.destroyed_at is None
    assert list(Event.objects.values_list("event_type", flat=True)) == ["conference.created"]


def test_audit_history_records_who_did_what(tenant):
    actor = Actor.app(tenant.app.app_id, tenant.api_key[:11])
    room = create_room(actor=actor, app=tenant.app, name="audited")
    entry = AuditEntry.objects.get(action="conference.create")
    assert (entry.actor_kind, entry.actor, entry.api_key_prefix) == ("app", tenant.app.app_id, tenant.api_key[:11])
    assert (entry.room_id, entry.app_id, entry.outcome) == (room.room_id, tenant.app.app_id, "ok")
    assert entry.request == {"name": "audited"}


def test_audit_history_refuses_updates(tenant):
    create_room(actor=SYSTEM, app=tenant.app, name="audited")
    entry = AuditEntry.objects.filter(action="conference.create").first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(outcome="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE conferences_auditentry SET actor = 'someone-else'")


def test_audit_history_removes_secrets_from_requests():
    from conferences.services.audit import redact

    assert redact({"url": "https://x", "secret": "whsec_abc", "nested": [{"api_key": "ck_1"}]}) == {
        "url": "https://x",
        "secret": "[redacted]",
        "nested": [{"api_key": "[redacted]"}],
    }
