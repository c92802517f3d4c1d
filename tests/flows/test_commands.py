"""The management commands, run as real processes against the test database."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from conferences.models import ApiKey, App, WebhookEndpoint
from conferences.services.tenants import find_api_key

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def manage(*args):
    """Run manage.py in a child process pointed at the test database."""
    url = urlsplit(os.environ.get("DATABASE_URL", settings.DATABASE_URL))
    env = {**os.environ, "DATABASE_URL": urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_create_app_prints_credentials_that_work():
    result = manage("create_app", "acme")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {"app_id", "api_key", "webhook_secret"}
    assert printed["app_id"] == "acme"
    assert printed["webhook_secret"] is None
    assert find_api_key(app_id="acme", plain_key=printed["api_key"]).app.app_id == "acme"
    assert not WebhookEndpoint.objects.exists()


def test_create_app_with_webhook_url_creates_the_endpoint():
    result = manage("create_app", "hooked", "--webhook-url", "https://hooks.example.com/in")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    endpoint = WebhookEndpoint.objects.get(app__app_id="hooked")
    assert endpoint.url == "https://hooks.example.com/in"
    assert printed["webhook_secret"] == endpoint.secret
    assert printed["webhook_secret"].startswith("whsec_")


def test_create_app_for_an_existing_app_fails_on_stderr():
    assert manage("create_app", "twice").returncode == 0
    result = manage("create_app", "twice")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "already exists" in result.stderr
    assert App.objects.filter(app_id="twice").count() == 1
    assert ApiKey.objects.filter(app__app_id="twice").count() == 1


@pytest.mark.parametrize("app_id", ["Upper", "-lead", "a" * 65, "sp ace"])
def test_create_app_refuses_a_malformed_app_id(app_id):
    result = manage("create_app", "--", app_id)
    assert result.returncode == 1
    assert "Invalid app_id" in result.stderr
    assert not App.objects.exists()
