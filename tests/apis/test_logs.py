"""Log lines are JSON with the request's id (X-Request-ID in and out), its app and actor, and
nothing secret."""

import io
import json
import logging
import re

import pytest

from project.logs import JsonLines, RequestContext

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    handler.addFilter(RequestContext())
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level, root.level = root.level, logging.INFO
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.level = previous_level


def test_a_request_id_is_minted_or_echoed(api):
    minted = api.get("/api/v1/conferences")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    assert api.get("/api/v1/conferences", HTTP_X_REQUEST_ID="trace-42.a:b")["X-Request-ID"] == "trace-42.a:b"
    replaced = api.get("/api/v1/conferences", HTTP_X_REQUEST_ID="no spaces\r\nSet-Cookie: x")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    assert api.get("/healthz")["X-Request-ID"]  # every response, not only the API's


def test_each_request_logs_one_json_line_with_its_id_app_and_actor(api, tenant, log_lines):
    response = api.post("/api/v1/conferences", {"name": "logged"}, format="json", HTTP_X_REQUEST_ID="req-1")
    assert response.status_code == 201
    line = next(line for line in log_lines() if line["logger"] == "conferences.access")
    prefix = tenant.api_key[:11]
    assert line | {"time": None, "duration_ms": None} == {
        "time": None,
        "level": "INFO",
        "logger": "conferences.access",
        "message": "request",
        "request_id": "req-1",
        "app_id": tenant.app.app_id,
        "actor": f"app:{tenant.app.app_id}:{prefix}",
        "method": "POST",
        "path": "/api/v1/conferences",
        "status": 201,
        "duration_ms": None,
    }
    assert tenant.api_key not in json.dumps(log_lines())


def test_a_refused_request_is_logged_without_its_key(client_for, tenant, log_lines):
    client = client_for(tenant)
    client.credentials(HTTP_X_APP_ID=tenant.app.app_id, HTTP_X_API_KEY="ck_wrong-key-that-is-secret")
    assert client.get("/api/v1/conferences").status_code == 401
    lines = log_lines()
    assert [(line["status"], line["app_id"]) for line in lines if line["logger"] == "conferences.access"] == [(401, "")]
    assert "ck_wrong-key-that-is-secret" not in json.dumps(lines)
