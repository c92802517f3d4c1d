"""Every error, ours, DRF's or Django's, has the shape {"success", "error", "code", "detail"}."""

import pytest
from django.test import Client, override_settings

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_malformed_json_answers_400(api):
    response = api.post("/api/v1/conferences", data='{"name": ', content_type="application/json")
    body = assert_error(response, 400, "invalid")
    assert "body" in body["detail"]


@pytest.mark.parametrize("raw", ["[]", '"name"', "3", "null", '{"name": NaN}'])
def test_body_that_is_not_a_json_object_answers_400(api, raw):
    response = api.post("/api/v1/conferences", data=raw, content_type="application/json")
    assert_error(response, 400, "invalid")


def test_unsupported_media_type_answers_415(api):
    response = api.post("/api/v1/conferences", data="name=x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_unknown_method_answers_405(api):
    assert_error(api.put("/api/v1/conferences", {}, format="json"), 405, "method_not_allowed")
    assert_error(api.patch("/api/v1/conferences/some-room", {}, format="json"), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/nothing", "/api/v1/conferences/", "/api/v2/conferences"])
def test_unknown_url_answers_404(api, path):
    assert_error(api.get(path), 404, "not_found")


def test_not_acceptable_answers_406(api):
    assert_error(api.get("/api/v1/conferences", HTTP_ACCEPT="text/html"), 406, "not_acceptable")


@override_settings(API_RATE_LIMIT="3/minute")
def test_rate_limit_answers_429_with_retry_after(api):
    for _ in range(3):
        assert api.get("/api/v1/conferences").status_code == 200
    response = api.get("/api/v1/conferences")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 61


@override_settings(ROOT_URLCONF="tests.error_urls", DEBUG=False)
@pytest.mark.parametrize("path", ["/fail/django", "/fail/api"])
def test_unhandled_error_answers_500(path):
    response = Client(raise_request_exception=False).get(path)
    body = assert_error(response, 500, "internal_error")
    assert "boom" not in body["error"]


@override_settings(ALLOWED_HOSTS=["localhost"], DEBUG=False)
def test_bad_host_answers_400_with_the_shape():
    assert_error(Client().get("/api/v1/conferences", HTTP_HOST="evil.example"), 400, "bad_request")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/conferences?name=a%00b", "/api/v1/conferences/abc%00def", "/api/v1/sessions/x%00y"],
)
def test_nul_characters_in_path_or_query_answer_400(api, path):
    assert_error(api.get(path), 400, "invalid")


def test_nul_characters_in_credentials_answer_400(client_for, tenant):
    client = client_for(None)
    client.credentials(HTTP_X_APP_ID="a\x00b", HTTP_X_API_KEY=tenant.api_key)
    assert_error(client.get("/api/v1/conferences"), 400, "invalid")


@pytest.mark.parametrize("position", ["abc", "²", "١٢"], ids=["letters", "superscript", "arabic-digits"])
def test_a_forged_cursor_answers_400(api, position):
    import base64
    from urllib.parse import quote

    forged = quote(base64.b64encode(f"p={position}".encode()).decode())
    body = assert_error(api.get(f"/api/v1/conferences?cursor={forged}"), 400, "invalid")
    assert "cursor" in body["detail"]


def test_errors_inside_a_list_are_messages_under_the_field(api, tenant):
    room_id = api.post("/api/v1/conferences", {"name": "list-errors"}, format="json").json()["room_id"]
    body = assert_error(
        api.post(
            f"/api/v1/conferences/{room_id}/play", {"urls": ["https://cdn.example.com/a.wav", None, 5]}, format="json"
        ),
        400,
        "invalid",
    )
    assert body["detail"] == {"urls": ["Item 2: This field may not be null.", "Item 3: Must be a string."]}


def test_a_body_nested_a_thousand_levels_deep_answers_400(api):
    for depth in (1000, 100_000):
        deep = '{"name": ' + "[" * depth + "]" * depth + "}"
        response = api.post("/api/v1/conferences", deep, content_type="application/json")
        assert response.status_code == 400, (depth, response.content[:200])


@pytest.mark.django_db(transaction=True)
def test_a_database_that_cannot_be_reached_answers_503(api):
    from django.db import connection

    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # the database is down: nothing listens here
    try:
        response = api.get("/api/v1/conferences")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    body = assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5" and body["detail"] is None


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_answers_503_and_is_not_kept(api):
    import psycopg
    from django.db import close_old_connections, connection

    connection.ensure_connection()
    dropped = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"], host=settings["HOST"], port=settings["PORT"], user=settings["USER"], autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [dropped])  # as a PostgreSQL restart does
    assert_error(api.get("/api/v1/conferences"), 503, "service_unavailable")
    close_old_connections()  # what the end of a request does under a WSGI server (the test client does not)
    assert api.get("/api/v1/conferences").status_code == 200  # on a new connection
    assert connection.connection.info.backend_pid != dropped
