import pytest
from django.test import Client

from project.celery import app as celery_app
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_credentials():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker():
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_readyz_answers_503_when_the_broker_is_down(monkeypatch):
    # A real connection attempt to a port where nothing listens.
    dead_broker = celery_app.connection_for_write
    monkeypatch.setattr(celery_app, "connection_for_write", lambda: dead_broker("redis://127.0.0.1:1/0"))
    body = assert_error(Client().get("/readyz"), 503, "not_ready")
    assert list(body["detail"]) == ["broker"]


def test_metrics_are_exposed():
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


def test_openapi_schema_documents_every_endpoint_and_webhook():
    schema = Client().get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/conferences", "/api/v1/conferences/{room_id}"} <= set(schema["paths"])
    assert len(schema["webhooks"]) == 14
    body = schema["webhooks"]["conference.play.resumed"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["event", "app_id", "room_id", "operation_id"]
