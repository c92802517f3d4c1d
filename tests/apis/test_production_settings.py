"""Production settings: no published secret key, HTTPS settings behind a switch, /metrics
optionally behind a token."""

import json
import os
import subprocess
import sys

import pytest
from django.test import override_settings

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def settings_with(tmp_path, **env) -> dict:
    """The settings a fresh process gets from this environment (BASE_DIR's var/ stays as is)."""
    script = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({name: getattr(s, name, None) for name in ('SECRET_KEY', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER')}))"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "SECURE_HTTPS", "BEHIND_TLS_PROXY")}
    environment.update(DJANGO_SETTINGS_MODULE="project.settings", **env)
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_secret_key_a_random_key_of_the_installation_is_kept(tmp_path):
    first, second = settings_with(tmp_path), settings_with(tmp_path)
    assert first["SECRET_KEY"] == second["SECRET_KEY"]  # every process of the host signs alike
    assert len(first["SECRET_KEY"]) >= 50 and "insecure" not in first["SECRET_KEY"]
    assert settings_with(tmp_path, SECRET_KEY="given-key")["SECRET_KEY"] == "given-key"


def test_https_settings_are_behind_a_switch(tmp_path):
    plain = settings_with(tmp_path)
    assert (plain["SESSION_COOKIE_SECURE"], plain["SECURE_HSTS_SECONDS"], plain["SECURE_PROXY_SSL_HEADER"]) == (
        False,
        0,
        None,
    )
    secure = settings_with(tmp_path, SECURE_HTTPS="true", BEHIND_TLS_PROXY="true")
    assert secure["SESSION_COOKIE_SECURE"] and secure["CSRF_COOKIE_SECURE"] and secure["SECURE_SSL_REDIRECT"]
    assert secure["SECURE_HSTS_SECONDS"] == 31_536_000
    assert secure["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_metrics_are_open_unless_a_token_is_set(client):
    assert client.get("/metrics").status_code == 200
    with override_settings(METRICS_TOKEN="scraper-token"):
        assert_error(client.get("/metrics"), 401, "not_authenticated")
        assert_error(client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"), 401, "not_authenticated")
        scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scraper-token")
        assert scraped.status_code == 200 and b"django_http_requests" in scraped.content


def test_the_admin_s_and_the_docs_files_are_served_without_debug(client):
    """gunicorn has no static file server: the web process serves them (WhiteNoise)."""
    for path in ("/static/admin/css/base.css", "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content)
