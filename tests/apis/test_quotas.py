"""Per-app quotas (SPEC 12): live rooms and active sessions; over them, 409 quota_exceeded."""

import pytest
from django.test import override_settings

from conferences.models import AuditEntry
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db
ENGINE_TOKEN = "quota-engine-token"


@override_settings(QUOTA_LIVE_ROOMS=2)
def test_live_rooms_are_capped_per_app(api, client_for, other_tenant):
    first, _ = (api.post("/api/v1/conferences", {"name": f"r{n}"}, format="json").json()["room_id"] for n in (1, 2))
    body = assert_error(api.post("/api/v1/conferences", {"name": "r3"}, format="json"), 409, "quota_exceeded")
    assert body["detail"] == {"quota": "live_rooms", "limit": 2}
    assert AuditEntry.objects.filter(action="conference.create", outcome="quota_exceeded").count() == 1
    assert client_for(other_tenant).post("/api/v1/conferences", {"name": "r3"}, format="json").status_code == 201
    assert api.delete(f"/api/v1/conferences/{first}").status_code == 204
    assert api.post("/api/v1/conferences", {"name": "r3"}, format="json").status_code == 201  # destroyed rooms free it


@override_settings(QUOTA_ACTIVE_SESSIONS=1, ENGINE_TOKEN=ENGINE_TOKEN)
def test_active_sessions_are_capped_per_app(client_for, tenant):
    engine = client_for(None)
    engine.credentials(HTTP_AUTHORIZATION=f"Bearer {ENGINE_TOKEN}")

    def report(**body):
        return engine.post("/api/v1/engine/events", body, format="json")

    created = report(type="session.created", app_id=tenant.app.app_id, caller_id="1")
    assert created.status_code == 201
    body = assert_error(report(type="session.created", app_id=tenant.app.app_id, caller_id="2"), 409, "quota_exceeded")
    assert body["detail"] == {"quota": "active_sessions", "limit": 1}
    uuid = created.json()["session_uuid"]
    again = report(type="session.created", app_id=tenant.app.app_id, caller_id="1", session_uuid=uuid)
    assert again.status_code == 201 and again.json() == {"session_uuid": uuid}  # a repeated report is no new session
    assert report(type="session.ended", session_uuid=uuid).status_code == 200
    assert report(type="session.created", app_id=tenant.app.app_id, caller_id="2").status_code == 201


@override_settings(QUOTA_LIVE_ROOMS=100)
def test_far_from_the_quota_an_app_s_rooms_are_not_counted_on_every_create(api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        for n in range(5):
            assert api.post("/api/v1/conferences", {"name": f"r{n}"}, format="json").status_code == 201
    assert sum("COUNT(*)" in query["sql"] for query in queries) == 1  # counting walks up to 100 entries


@override_settings(QUOTA_LIVE_ROOMS=10)
def test_near_the_quota_every_create_counts_rooms_made_elsewhere(api, tenant):
    from conferences.ids import mint_room_id
    from conferences.models import Room

    for n in range(9):
        assert api.post("/api/v1/conferences", {"name": f"r{n}"}, format="json").status_code == 201
    Room.objects.create(room_id=mint_room_id(), app=tenant.app, name="made-by-another-process", node="other")
    assert_error(api.post("/api/v1/conferences", {"name": "r10"}, format="json"), 409, "quota_exceeded")
