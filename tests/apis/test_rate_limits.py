"""Rate limits (SPEC 3, 12): per app across processes (the shared cache), atomic under
concurrent requests, with Retry-After; failed authentication limited per address; a cache
that is down limits nothing rather than failing requests."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings
from rest_framework.test import APIClient

from conferences import ratelimit
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)  # the requests' threads see the app


@override_settings(API_RATE_LIMIT="10/minute")
def test_concurrent_requests_never_both_take_the_last_slot(tenant):
    def request(_):
        client = APIClient()
        client.credentials(HTTP_X_APP_ID=tenant.app.app_id, HTTP_X_API_KEY=tenant.api_key)
        try:
            return client.get("/api/v1/conferences").status_code
        finally:
            connections.close_all()  # this thread's connection, so the test database can be dropped

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(request, range(30)))
    assert sorted(statuses) == [200] * 10 + [429] * 20


@pytest.mark.skipif(
    not settings.CACHE_URL, reason="no Redis configured (CACHE_URL or a Redis broker): each process counts alone"
)
def test_another_process_counts_in_the_same_window():
    rate = ratelimit.Rate(5, 60)
    assert all(ratelimit.hit(ratelimit.Window("shared", "app-x", rate)) is None for _ in range(3))
    script = (
        "import django, os, sys; django.setup(); from django.conf import settings;"
        "settings.CACHES['default']['KEY_PREFIX'] = sys.argv[1]; from conferences import ratelimit;"
        "print([ratelimit.hit(ratelimit.Window('shared', 'app-x', ratelimit.Rate(5, 60))) is None for _ in range(3)])"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, settings.CACHES["default"]["KEY_PREFIX"]],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"},
    )
    assert json.loads(other.stdout.strip().splitlines()[-1].lower()) == [True, True, False]  # 4, 5, then 6 of 5


@override_settings(AUTH_FAILURE_RATE_LIMIT="3/minute")
def test_failed_authentication_is_limited_per_address(client_for, tenant):
    wrong = client_for(tenant)
    wrong.credentials(HTTP_X_APP_ID=tenant.app.app_id, HTTP_X_API_KEY="ck_guessed")
    for _ in range(3):
        assert_error(wrong.get("/api/v1/conferences"), 401, "authentication_failed")
    refused = assert_error(wrong.get("/api/v1/conferences"), 429, "rate_limited")
    assert refused
    # Even the right key waits now: guessing gets no answer from this address.
    response = client_for(tenant).get("/api/v1/conferences")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    other_address = client_for(tenant).get("/api/v1/conferences", REMOTE_ADDR="10.0.0.9")
    assert other_address.status_code == 200


@override_settings(
    API_RATE_LIMIT="1/minute",
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    },
)
def test_a_cache_that_is_down_limits_nothing(api, monkeypatch, caplog):
    monkeypatch.setattr(ratelimit, "_cache_down_until", 0.0)
    assert [api.get("/api/v1/conferences").status_code for _ in range(3)] == [200, 200, 200]
    assert "rate limits off" in caplog.text


@override_settings(AUTH_FAILURE_RATE_LIMIT="2/minute", ENGINE_TOKEN="the-engine-token")
def test_wrong_engine_tokens_are_limited_per_address(client_for):
    engine = client_for(None)
    engine.credentials(HTTP_AUTHORIZATION="Bearer guessed")
    report = {"type": "heartbeat", "node": "abcde", "sessions": []}
    for _ in range(2):
        assert_error(engine.post("/api/v1/engine/events", report, format="json"), 401, "authentication_failed")
    assert_error(engine.post("/api/v1/engine/events", report, format="json"), 429, "rate_limited")
    engine.credentials(HTTP_AUTHORIZATION="Bearer the-engine-token")
    assert engine.post("/api/v1/engine/events", report, format="json", REMOTE_ADDR="10.0.0.7").status_code == 200


@pytest.mark.skipif(not settings.CACHE_URL, reason="no Redis configured (CACHE_URL or a Redis broker)")
def test_a_request_costs_one_round_trip_to_redis(api, monkeypatch):
    from django.core.cache.backends.redis import RedisCacheClient
    from redis.client import Pipeline

    round_trips = []
    real_execute = Pipeline.execute
    monkeypatch.setattr(Pipeline, "execute", lambda self, **options: round_trips.append(1) or real_execute(self))
    for name in ("add", "get", "incr", "set"):  # one command each would be one round trip each
        monkeypatch.setattr(RedisCacheClient, name, lambda *args, **kwargs: pytest.fail("not pipelined"))
    assert [api.get("/api/v1/conferences").status_code for _ in range(3)] == [200] * 3
    assert round_trips == [1, 1, 1]


@override_settings(AUTH_FAILURE_RATE_LIMIT="2/minute")
def test_an_address_past_its_failures_gets_429_before_anything_else_is_checked(client_for, tenant):
    tenant.app.enabled = False
    tenant.app.save(update_fields=["enabled"])
    wrong = client_for(tenant)
    wrong.credentials(HTTP_X_APP_ID=tenant.app.app_id, HTTP_X_API_KEY="ck_guessed")
    for _ in range(2):
        assert_error(wrong.get("/api/v1/conferences"), 401, "authentication_failed")
    # The right key of a disabled app: 429, as for a wrong key, not 403 app_disabled.
    assert_error(client_for(tenant).get("/api/v1/conferences"), 429, "rate_limited")
    other_address = client_for(tenant).get("/api/v1/conferences", REMOTE_ADDR="10.0.0.9")
    assert_error(other_address, 403, "app_disabled")


@override_settings(AUTH_FAILURE_RATE_LIMIT="2/minute", ENGINE_TOKEN="the-engine-token")
def test_the_right_engine_token_from_an_address_past_its_failures_gets_429(client_for):
    engine = client_for(None)
    report = {"type": "heartbeat", "node": "abcde", "sessions": []}
    engine.credentials(HTTP_AUTHORIZATION="Bearer guessed")
    for _ in range(2):
        assert_error(engine.post("/api/v1/engine/events", report, format="json"), 401, "authentication_failed")
    engine.credentials(HTTP_AUTHORIZATION="Bearer the-engine-token")
    response = engine.post("/api/v1/engine/events", report, format="json")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 61
