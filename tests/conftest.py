import copy
import json
import uuid
from dataclasses import dataclass
from itertools import count

import jsonschema
import pytest
from django.db import transaction
from rest_framework.test import APIClient

from conferences import ratelimit
from conferences.actors import Actor
from conferences.event_schema import SCHEMA_PATH
from conferences.models import App, Event
from conferences.services import members
from conferences.services.tenants import create_app

_app_numbers = count(1)


@pytest.fixture(autouse=True)
def own_cache_keys(settings, monkeypatch):
    """Each test counts its rate limits from zero, in the shared cache too (a key prefix of its own)."""
    monkeypatch.setattr(ratelimit, "_cache_down_until", 0.0)
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches


@dataclass
class Tenant:
    app: App
    api_key: str

    @property
    def headers(self) -> dict:
        return {"X-App-ID": self.app.app_id, "X-API-Key": self.api_key}


@pytest.fixture
def make_tenant(db):
    def make(app_id: str | None = None, **kwargs) -> Tenant:
        created = create_app(actor=Actor.system("tests"), app_id=app_id or f"app-{next(_app_numbers)}", **kwargs)
        return Tenant(created.app, created.api_key)

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:
    return make_tenant()


@pytest.fixture
def other_tenant(make_tenant) -> Tenant:
    return make_tenant()


@pytest.fixture
def client_for():
    def make(tenant: Tenant | None) -> APIClient:
        client = APIClient()
        if tenant is not None:
            client.credentials(HTTP_X_APP_ID=tenant.app.app_id, HTTP_X_API_KEY=tenant.api_key)
        return client

    return make


@pytest.fixture
def api(client_for, tenant) -> APIClient:
    return client_for(tenant)


_validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def assert_valid_event(payload: dict) -> None:
    """Round-trip through JSON and validate against events.schema.json (no extra keys)."""
    _validator.validate(json.loads(json.dumps(payload)))


def events_of(room_id: str) -> list[dict]:
    return [e.payload for e in Event.objects.filter(ordering_key=room_id).order_by("id")]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"success", "error", "code", "detail"}, body
    assert body["success"] is False
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["detail"] is None or isinstance(body["detail"], dict)
    return body


def pending_join(app: App, session_uuid: str, room_id: str, command_uid: str = "j") -> None:
    """A join accepted as the API accepts one (in its command's transaction), not yet confirmed."""
    with transaction.atomic():
        members.join(
            actor=Actor.system("tests"),
            app=app,
            session_uuid=session_uuid,
            room_id=room_id,
            muted=False,
            command_uid=command_uid,
        )
