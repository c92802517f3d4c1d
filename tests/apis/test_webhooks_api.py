"""Self-service webhooks over the API (SPEC 8a): endpoints, secrets, the delivery log,
redelivery and recovery; strict validation, the SSRF rule, and other apps' objects as 404."""

import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from conferences.models import AuditEntry, Delivery, WebhookEndpoint
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

BASE = "/api/v1/webhooks"
PUBLIC_URL = "https://93.184.216.34/hooks"
ENDPOINT_KEYS = {"endpoint_id", "url", "event_types", "description", "enabled", "disabled_reason", "created_at"}


def create(api, **body):
    return api.post(f"{BASE}/endpoints", {"url": PUBLIC_URL, **body}, format="json")


@pytest.fixture
def endpoint(api) -> dict:
    response = create(api, event_types=["conference.created"], description="ops")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def room_deliveries(api, endpoint):
    """Two rooms created, so two deliveries to the endpoint (conference.created)."""
    rooms = [api.post("/api/v1/conferences", {"name": f"r{n}"}, format="json").json()["room_id"] for n in range(2)]
    return rooms, list(Delivery.objects.order_by("id"))


def test_create_shows_the_secret_once(api, endpoint):
    assert set(endpoint) == ENDPOINT_KEYS | {"secret"}
    assert re.fullmatch(r"ep_[0-9a-f]{32}", endpoint["endpoint_id"])
    assert endpoint["secret"].startswith("whsec_")
    assert (endpoint["event_types"], endpoint["description"], endpoint["enabled"]) == (
        ["conference.created"],
        "ops",
        True,
    )
    shown = api.get(f"{BASE}/endpoints/{endpoint['endpoint_id']}").json()
    assert set(shown) == ENDPOINT_KEYS
    listed = api.get(f"{BASE}/endpoints").json()
    assert [e["endpoint_id"] for e in listed["results"]] == [endpoint["endpoint_id"]]
    assert set(listed) == {"next", "previous", "results"} and set(listed["results"][0]) == ENDPOINT_KEYS


def test_patch_changes_what_is_given(api, endpoint):
    path = f"{BASE}/endpoints/{endpoint['endpoint_id']}"
    changed = api.patch(path, {"event_types": [], "description": "all of it"}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["event_types"], changed.json()["description"], changed.json()["url"]) == (
        [],
        "all of it",
        PUBLIC_URL,
    )
    disabled = api.patch(path, {"enabled": False}, format="json").json()
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "disabled by the app")
    enabled = api.patch(path, {"enabled": True}, format="json").json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, "")
    assert api.put(path, {"url": PUBLIC_URL}, format="json").status_code == 405


def test_disabling_holds_what_waits_and_enabling_resumes_it(api, endpoint, room_deliveries):
    path = f"{BASE}/endpoints/{endpoint['endpoint_id']}"
    api.patch(path, {"enabled": False}, format="json")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}  # held, not failed
    from conferences.services import delivery_dispatch

    assert delivery_dispatch.claim(limit=10) == []  # a disabled endpoint's queues do not move
    api.post("/api/v1/conferences", {"name": "while-off"}, format="json")
    assert Delivery.objects.count() == 2  # nothing new is queued for it
    api.patch(path, {"enabled": True}, format="json")
    assert len(delivery_dispatch.claim(limit=10)) == 2


def test_delete_keeps_the_history_for_staff_and_answers_404_after(api, endpoint, room_deliveries):
    path = f"{BASE}/endpoints/{endpoint['endpoint_id']}"
    assert api.delete(path).status_code == 204
    assert_error(api.get(path), 404, "not_found")
    assert_error(api.delete(path), 404, "not_found")
    assert api.get(f"{BASE}/endpoints").json()["results"] == []
    kept = WebhookEndpoint.objects.get(endpoint_id=endpoint["endpoint_id"])
    assert kept.deleted_at is not None and not kept.enabled
    assert set(Delivery.objects.filter(endpoint=kept).values_list("status", "last_error")) == {
        ("failed", "endpoint deleted")
    }
    api.post("/api/v1/conferences", {"name": "after"}, format="json")
    assert Delivery.objects.filter(endpoint=kept).count() == 2  # nothing new is queued


def test_rotation_returns_a_new_secret(api, endpoint):
    response = api.post(f"{BASE}/endpoints/{endpoint['endpoint_id']}/rotate-secret")
    assert response.status_code == 200 and set(response.json()) == {"secret"}
    stored = WebhookEndpoint.objects.get(endpoint_id=endpoint["endpoint_id"])
    assert (stored.secret, stored.previous_secret) == (response.json()["secret"], endpoint["secret"])
    assert stored.previous_secret_expires_at > timezone.now() + timedelta(hours=23)


def test_an_app_has_at_most_ten_endpoints(api, endpoint):
    for _ in range(9):
        assert create(api).status_code == 201
    assert_error(create(api), 409, "endpoint_limit")
    api.delete(f"{BASE}/endpoints/{endpoint['endpoint_id']}")
    assert create(api).status_code == 201  # a deleted one no longer counts


def test_the_delivery_log_lists_filters_and_shows_the_exact_body(api, endpoint, room_deliveries):
    rooms, (first, second) = room_deliveries
    listed = api.get(f"{BASE}/deliveries").json()["results"]
    assert [d["delivery_id"] for d in listed] == [second.pk, first.pk]  # newest first
    item = listed[1]
    assert item == {
        "delivery_id": first.pk,
        "endpoint_id": endpoint["endpoint_id"],
        "webhook_id": f"msg_{first.event.uuid.hex}",
        "event": "conference.created",
        "room_id": rooms[0],
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": item["next_attempt_at"],
        "last_status_code": None,
        "created_at": item["created_at"],
        "completed_at": None,
    }
    assert item["next_attempt_at"] is not None
    for query, expected in (
        (f"room_id={rooms[0]}", [first.pk]),
        ("status=failed", []),
        ("event=conference.destroyed", []),
        (f"endpoint_id={endpoint['endpoint_id']}", [second.pk, first.pk]),
        ("limit=1", [second.pk]),
    ):
        assert [d["delivery_id"] for d in api.get(f"{BASE}/deliveries?{query}").json()["results"]] == expected
    detail = api.get(f"{BASE}/deliveries/{first.pk}").json()
    assert detail["payload"] == first.event.payload and detail["attempt_log"] == []
    assert set(detail) == set(item) | {"payload", "attempt_log"}


def test_redeliver_and_recover(api, endpoint, room_deliveries):
    _, (first, second) = room_deliveries
    assert_error(api.post(f"{BASE}/deliveries/{first.pk}/redeliver"), 409, "delivery_pending")
    Delivery.objects.update(status="failed", completed_at=timezone.now())
    assert api.post(f"{BASE}/deliveries/{first.pk}/redeliver").status_code == 202
    assert Delivery.objects.get(pk=first.pk).status == "pending"
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    response = api.post(f"{BASE}/endpoints/{endpoint['endpoint_id']}/recover", {"since": since}, format="json")
    assert (response.status_code, response.json()) == (202, {"queued": 1})


def test_every_call_is_in_the_history_with_the_app_and_key_prefix(api, tenant, endpoint, room_deliveries):
    api.get(f"{BASE}/deliveries")
    api.post(f"{BASE}/endpoints/{endpoint['endpoint_id']}/rotate-secret")
    entries = AuditEntry.objects.filter(action__startswith="webhook_")
    assert {e.action for e in entries} >= {
        "webhook_endpoint.create",
        "webhook_delivery.list",
        "webhook_endpoint.rotate_secret",
    }
    assert {(e.actor_kind, e.actor, e.api_key_prefix) for e in entries} == {
        ("app", tenant.app.app_id, tenant.api_key[:11])
    }
    assert not any("whsec_" in str(e.request) + str(e.detail) for e in entries)  # no secret in the history
    refused = api.post(f"{BASE}/deliveries/{room_deliveries[1][0].pk}/redeliver")  # pending: 409
    assert refused.status_code == 409
    entry = AuditEntry.objects.get(action="webhook-delivery.redeliver")
    assert (entry.outcome, entry.api_key_prefix, entry.detail) == (
        "delivery_pending",
        tenant.api_key[:11],
        {"status": 409},
    )


def test_another_apps_objects_are_404_on_every_route(api, other_tenant, client_for, endpoint, room_deliveries):
    other = client_for(other_tenant)
    endpoint_path = f"{BASE}/endpoints/{endpoint['endpoint_id']}"
    delivery_path = f"{BASE}/deliveries/{room_deliveries[1][0].pk}"
    for response in (
        other.get(endpoint_path),
        other.patch(endpoint_path, {"description": "x"}, format="json"),
        other.delete(endpoint_path),
        other.post(f"{endpoint_path}/rotate-secret"),
        other.post(f"{endpoint_path}/recover", {"since": timezone.now().isoformat()}, format="json"),
        other.get(delivery_path),
        other.post(f"{delivery_path}/redeliver"),
        other.get(f"{BASE}/deliveries/not-a-number"),
        other.get(f"{BASE}/deliveries/99999999999999999999"),
    ):
        assert_error(response, 404, "not_found")
    assert other.get(f"{BASE}/deliveries").json()["results"] == []
    assert other.get(f"{BASE}/endpoints").json()["results"] == []
    assert WebhookEndpoint.objects.get(endpoint_id=endpoint["endpoint_id"]).description == "ops"


def test_unauthenticated_calls_are_401(client_for, endpoint):
    for response in (client_for(None).get(f"{BASE}/endpoints"), client_for(None).get(f"{BASE}/deliveries")):
        assert_error(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://localhost:8000/hook",
        "http://%31%32%37.0.0.1/hook",
    ],
)
def test_urls_that_reach_private_addresses_are_refused(api, url):
    body = assert_error(create(api, url=url), 400, "invalid")
    assert list(body["detail"]) == ["url"]


def test_a_name_that_resolves_privately_is_refused(api, monkeypatch):
    import socket

    real_lookup = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *args, **kw: (
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
            if host == "hooks.example.com"
            else real_lookup(host, port, *args, **kw)
        ),
    )
    assert list(assert_error(create(api, url="https://hooks.example.com/x"), 400, "invalid")["detail"]) == ["url"]
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        assert create(api, url="https://hooks.example.com/x").status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": 5}, "url"),
        ({"url": None}, "url"),
        ({"url": "ftp://93.184.216.34/x"}, "url"),
        ({"url": "https://93.184.216.34/" + "a" * 2048}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://user:pw@93.184.216.34/x"}, "url"),
        ({"event_types": ["conference.nope"]}, "event_types"),
        ({"event_types": "conference.created"}, "event_types"),
        ({"event_types": ["conference.created", "conference.created"]}, "event_types"),
        ({"event_types": [5]}, "event_types"),
        ({"description": "d" * 201}, "description"),
        ({"description": 7}, "description"),
    ],
)
def test_create_validation(api, body, field):
    response = api.post(f"{BASE}/endpoints", {"url": PUBLIC_URL, **body}, format="json")
    assert field in assert_error(response, 400, "invalid")["detail"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"enabled": "true"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"url": "http://10.0.0.1/x"}, "url"),
        ({"event_types": ["x"]}, "event_types"),
    ],
)
def test_patch_validation(api, endpoint, body, field):
    response = api.patch(f"{BASE}/endpoints/{endpoint['endpoint_id']}", body, format="json")
    assert field in assert_error(response, 400, "invalid")["detail"]


@pytest.mark.parametrize("since", [None, 5, "yesterday", "2999-01-01T00:00:00Z", "2001-01-01T00:00:00Z"])
def test_recover_validation(api, endpoint, since):
    response = api.post(f"{BASE}/endpoints/{endpoint['endpoint_id']}/recover", {"since": since}, format="json")
    assert "since" in assert_error(response, 400, "invalid")["detail"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=lost", "status"),
        ("event=conference.nope", "event"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=nonsense", "cursor"),
    ],
)
def test_delivery_filters_are_validated(api, endpoint, query, field):
    assert field in assert_error(api.get(f"{BASE}/deliveries?{query}"), 400, "invalid")["detail"]
