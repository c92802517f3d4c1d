"""The development webhook inbox of `make run` (conferences/dev_inbox.py): served only with
DEV_INBOX, each arrival checked against the secrets of the endpoints at its URL."""

import importlib
import json
import uuid

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import clear_url_caches
from django.utils import timezone

import project.urls
from conferences.actors import Actor
from conferences.services.endpoints import create_endpoint, mint_webhook_secret, rotate_secret
from conferences.webhooks.signing import signature_headers

pytestmark = pytest.mark.django_db

INBOX_URL = "http://127.0.0.1:8000/dev/inbox"
HOST = {"host": "127.0.0.1:8000"}  # as the webhook worker sends to INBOX_URL
SYSTEM = Actor.system("tests")


def build_urls() -> None:
    importlib.reload(project.urls)
    clear_url_caches()


@pytest.fixture
def inbox_served():
    """project.urls as `make run` builds it (DEV_INBOX on), and as before once the test ends."""
    with override_settings(DEV_INBOX=True):
        build_urls()
        yield
    build_urls()


@pytest.fixture
def inbox_endpoint(tenant, inbox_served):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        return create_endpoint(actor=SYSTEM, app=tenant.app, url=INBOX_URL)


def post_signed(*, secrets: list[str], webhook_id: str):
    body = json.dumps({"event": "conference.created", "room_id": "r_test", "name": "inbox"})
    signed = signature_headers(msg_id=webhook_id, timestamp=timezone.now(), body=body, secrets=secrets)
    del signed["content-type"]
    # CSRF checks on, as for a real client: the inbox must be exempt.
    return Client(enforce_csrf_checks=True).post(
        "/dev/inbox", body, content_type="application/json", headers={**HOST, **signed}
    )


def row_of(webhook_id: str) -> str | None:
    page = Client().get("/dev/inbox/", headers=HOST)
    assert page.status_code == 200
    return next((row for row in page.content.decode().split("<tr>") if webhook_id in row), None)


def test_inbox_is_404_without_dev_inbox(client):
    assert settings.DEV_INBOX is False
    assert client.get("/dev/inbox/").status_code == 404
    assert client.post("/dev/inbox", "{}", content_type="application/json").status_code == 404


def test_delivery_signed_with_the_endpoint_secret_is_accepted_and_listed_as_verified(inbox_endpoint):
    webhook_id = f"msg_{uuid.uuid4().hex}"
    assert post_signed(secrets=[inbox_endpoint.secret], webhook_id=webhook_id).status_code == 200
    row = row_of(webhook_id)
    assert "conference.created" in row and "<td>verified</td>" in row


def test_delivery_with_a_wrong_signature_is_refused_and_not_listed_as_verified(inbox_endpoint):
    webhook_id = f"msg_{uuid.uuid4().hex}"
    assert post_signed(secrets=[mint_webhook_secret()], webhook_id=webhook_id).status_code == 401
    row = row_of(webhook_id)
    assert "not verified" in row and "<td>verified</td>" not in row


def test_previous_secret_verifies_during_rotation(inbox_endpoint):
    previous_secret = inbox_endpoint.secret
    rotate_secret(actor=SYSTEM, endpoint=inbox_endpoint)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    assert post_signed(secrets=[previous_secret], webhook_id=webhook_id).status_code == 200
    assert "<td>verified</td>" in row_of(webhook_id)


def test_delivery_without_signature_headers_is_400(inbox_served):
    response = Client().post("/dev/inbox", "{}", content_type="application/json", headers=HOST)
    assert response.status_code == 400
