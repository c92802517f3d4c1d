"""Per-app quotas (SPEC 12): live rooms and active sessions; over them, 409 quota_exceeded."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from conferences.ids import mint_room_id
from conferences.models import AuditEntry, Room
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


@override_settings(QUOTA_LIVE_ROOMS=100, API_RATE_LIMIT="10/second")
def test_far_from_the_quota_an_app_s_rooms_are_not_counted_on_every_create(api, monkeypatch):
    from conferences.services import quotas

    monkeypatch.setattr(quotas, "_clock", lambda: 1000.0)  # within the same second, however slow the machine
    with CaptureQueriesContext(connection) as queries:
        for n in range(5):  # up to 5 live rooms: 95 away from the quota, and 10 creates a second
            assert api.post("/api/v1/conferences", {"name": f"r{n}"}, format="json").status_code == 201
    assert sum("COUNT(*)" in query["sql"] for query in queries) == 1


@override_settings(QUOTA_LIVE_ROOMS=12, API_RATE_LIMIT="60/minute")
def test_near_the_quota_every_create_counts_rooms_made_elsewhere(api, tenant, monkeypatch):
    from conferences.services import quotas

    monkeypatch.setattr(quotas, "_clock", lambda: 1000.0)
    for n in range(11):
        assert api.post("/api/v1/conferences", {"name": f"r{n}"}, format="json").status_code == 201
    # Another process's create, meanwhile: the app could make one a second, and one is all that is left.
    Room.objects.create(room_id=mint_room_id(), app=tenant.app, name="elsewhere", node="other")
    assert_error(api.post("/api/v1/conferences", {"name": "r11"}, format="json"), 409, "quota_exceeded")
