import hashlib

import pytest
from django.utils import timezone

from conferences.actors import Actor
from conferences.models import ApiKey, App
from conferences.services.tenants import issue_api_key, revoke_api_key
from tests.conftest import Tenant, assert_error

pytestmark = pytest.mark.django_db

ROOM_ENDPOINTS = [
    ("get", "/api/v1/conferences"),
    ("post", "/api/v1/conferences"),
    ("get", "/api/v1/conferences/{room_id}"),
    ("delete", "/api/v1/conferences/{room_id}"),
]


def _room(api) -> str:
    return api.post("/api/v1/conferences", {"name": "auth-room"}, format="json").json()["room_id"]


@pytest.mark.parametrize(("method", "path"), ROOM_ENDPOINTS)
def test_missing_credentials_answer_401(client_for, api, method, path):
    response = getattr(client_for(None), method)(path.format(room_id=_room(api)), {"name": "x"}, format="json")
    body = assert_error(response, 401, "not_authenticated")
    assert "X-API-Key" in body["error"]
    assert response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(("method", "path"), ROOM_ENDPOINTS)
def test_wrong_key_answers_401(client_for, api, tenant, method, path):
    impostor = Tenant(tenant.app, tenant.api_key[:-4] + "AAAA")
    response = getattr(client_for(impostor), method)(path.format(room_id=_room(api)), {"name": "x"}, format="json")
    assert_error(response, 401, "authentication_failed")


def test_only_one_header_answers_401(client_for, tenant):
    client = client_for(None)
    client.credentials(HTTP_X_APP_ID=tenant.app.app_id)
    assert_error(client.get("/api/v1/conferences"), 401, "not_authenticated")
    client.credentials(HTTP_X_API_KEY=tenant.api_key)
    assert_error(client.get("/api/v1/conferences"), 401, "not_authenticated")


def test_key_of_another_app_answers_401(client_for, tenant, other_tenant):
    mixed = Tenant(tenant.app, other_tenant.api_key)
    assert_error(client_for(mixed).get("/api/v1/conferences"), 401, "authentication_failed")


@pytest.mark.parametrize(("method", "path"), ROOM_ENDPOINTS)
def test_disabled_app_answers_403(client_for, api, tenant, method, path):
    room_id = _room(api)
    App.objects.filter(pk=tenant.app.pk).update(enabled=False)
    response = getattr(client_for(tenant), method)(path.format(room_id=room_id), {"name": "x"}, format="json")
    assert_error(response, 403, "app_disabled")


def test_revoked_key_answers_401_and_other_keys_still_work(client_for, tenant):
    second_key, second_plain = issue_api_key(actor=Actor.system("tests"), app=tenant.app)
    revoke_api_key(actor=Actor.system("tests"), api_key=ApiKey.objects.get(prefix=tenant.api_key[:11]))
    assert_error(client_for(tenant).get("/api/v1/conferences"), 401, "authentication_failed")
    assert client_for(Tenant(tenant.app, second_plain)).get("/api/v1/conferences").status_code == 200


def test_keys_are_stored_only_as_hashes(tenant):
    stored = ApiKey.objects.get(app=tenant.app)
    assert len(tenant.api_key) >= 43  # 32 random bytes, URL-safe base64
    assert stored.key_hash == hashlib.sha256(tenant.api_key.encode()).hexdigest()
    assert tenant.api_key not in {stored.key_hash, stored.prefix, stored.label}
    assert stored.prefix == tenant.api_key[:11]


def test_use_sets_last_used_at(api, tenant):
    assert ApiKey.objects.get(app=tenant.app).last_used_at is None
    before = timezone.now()
    assert api.get("/api/v1/conferences").status_code == 200
    assert ApiKey.objects.get(app=tenant.app).last_used_at >= before


def test_schema_and_docs_are_public(client_for):
    client = client_for(None)
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "conference.created" in schema.json()["webhooks"]
    assert client.get("/api/docs").status_code == 200
