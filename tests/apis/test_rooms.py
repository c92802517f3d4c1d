import re

import pytest
from django.conf import settings

from conferences.models import Event, Room
from tests.conftest import assert_error, assert_valid_event, events_of

pytestmark = pytest.mark.django_db

ROOM_ID_RE = re.compile(r"[A-Za-z0-9]{5}-room-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def create(api, name="standup"):
    return api.post("/api/v1/conferences", {"name": name}, format="json")


def test_create_answers_201_with_a_room_id_of_this_node(api):
    response = create(api)
    assert response.status_code == 201
    assert set(response.json()) == {"room_id"}
    room_id = response.json()["room_id"]
    assert ROOM_ID_RE.fullmatch(room_id)
    assert room_id.startswith(settings.NODE_HASH + "-room-")


def test_create_stores_conference_created(api, tenant):
    room_id = create(api, "Team_standup-1").json()["room_id"]
    assert events_of(room_id) == [
        {"event": "conference.created", "app_id": tenant.app.app_id, "room_id": room_id, "name": "Team_standup-1"}
    ]
    assert_valid_event(events_of(room_id)[0])


def test_unknown_fields_are_ignored(api):
    assert api.post("/api/v1/conferences", {"name": "a", "colour": "red"}, format="json").status_code == 201


@pytest.mark.parametrize(
    "name",
    ["a", "A" * 64, "0", "x-y_z", "Z9"],
    ids=["one-char", "64-chars", "digit", "dash-underscore", "mixed"],
)
def test_valid_names_are_accepted(api, name):
    assert create(api, name).status_code == 201


@pytest.mark.parametrize(
    "name",
    ["", "A" * 65, "-lead", "_lead", "has space", " lead", "trail ", "café", "名前", "a\n", "a.b", "a/b"],
    ids=[
        "empty",
        "65-chars",
        "leading-dash",
        "leading-underscore",
        "space",
        "leading-space",
        "trailing-space",
        "accent",
        "non-latin",
        "newline",
        "dot",
        "slash",
    ],
)
def test_invalid_names_answer_400(api, name):
    body = assert_error(create(api, name), 400, "invalid")
    assert list(body["detail"]) == ["name"]
    assert all(isinstance(message, str) for message in body["detail"]["name"])
    assert not Room.objects.exists()


@pytest.mark.parametrize("name", [None, 5, 1.5, True, ["a"], {"a": 1}])
def test_non_string_names_answer_400(api, name):
    body = assert_error(create(api, name), 400, "invalid")
    assert "name" in body["detail"]


def test_missing_name_answers_400(api):
    body = assert_error(api.post("/api/v1/conferences", {}, format="json"), 400, "invalid")
    assert "name" in body["detail"]
    body = assert_error(api.post("/api/v1/conferences"), 400, "invalid")
    assert "name" in body["detail"]


def test_taken_name_answers_409_naming_the_room(api):
    room_id = create(api).json()["room_id"]
    response = create(api)
    assert response.json() == {
        "success": False,
        "error": "Conference name already taken for this application",
        "code": "name_taken",
        "detail": {"room_id": room_id},
    }
    assert response.status_code == 409
    assert Event.objects.filter(event_type="conference.created").count() == 1


def test_names_are_per_app(api, client_for, other_tenant):
    assert create(api).status_code == 201
    assert create(client_for(other_tenant)).status_code == 201


def test_names_are_case_sensitive(api):
    assert create(api, "Standup").status_code == 201
    assert create(api, "standup").status_code == 201


def test_detail_shows_the_room(api, tenant):
    room_id = create(api).json()["room_id"]
    response = api.get(f"/api/v1/conferences/{room_id}")
    assert response.status_code == 200
    body = response.json()
    created_at = body.pop("created_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", created_at)
    assert body == {
        "room_id": room_id,
        "name": "standup",
        "app_id": tenant.app.app_id,
        "node": settings.NODE_HASH,
        "playback_status": "stopped",
        "playback_operation_id": None,
        "playback_urls": [],
        "volume": 0,
        "member_count": 0,
        "members": [],
    }


def test_list_shows_only_the_apps_live_rooms(api, client_for, other_tenant):
    mine = [create(api, f"r{i}").json()["room_id"] for i in range(3)]
    create(client_for(other_tenant), "theirs")
    api.delete(f"/api/v1/conferences/{mine[0]}")
    body = api.get("/api/v1/conferences").json()
    assert set(body) == {"next", "previous", "results"}
    assert [room["room_id"] for room in body["results"]] == [mine[2], mine[1]]
    assert "members" not in body["results"][0]
    assert body["results"][0]["member_count"] == 0


def test_list_filters_by_exact_name(api):
    wanted = create(api, "alpha").json()["room_id"]
    create(api, "alphabet")
    create(api, "Alpha")
    results = api.get("/api/v1/conferences?name=alpha").json()["results"]
    assert [room["room_id"] for room in results] == [wanted]
    assert api.get("/api/v1/conferences?name=nothing").json()["results"] == []


def test_list_pages_with_cursor_and_limit(api):
    created = [create(api, f"room{i}").json()["room_id"] for i in range(7)]
    seen, url = [], "/api/v1/conferences?limit=3"
    while url:
        page = api.get(url).json()
        assert len(page["results"]) <= 3
        seen += [room["room_id"] for room in page["results"]]
        url = page["next"]
    assert seen == list(reversed(created))
    second = api.get(api.get("/api/v1/conferences?limit=3").json()["next"]).json()
    assert second["previous"] is not None


def test_list_limit_defaults_to_50_and_allows_200(api, tenant):
    from conferences.actors import Actor
    from conferences.services.rooms import create_room

    for i in range(201):
        create_room(actor=Actor.system("tests"), app=tenant.app, name=f"bulk{i}")
    assert len(api.get("/api/v1/conferences").json()["results"]) == 50
    assert len(api.get("/api/v1/conferences?limit=200").json()["results"]) == 200
    assert len(api.get("/api/v1/conferences?limit=1").json()["results"]) == 1


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", "", "٣"])
def test_limit_out_of_range_answers_400(api, limit):
    body = assert_error(api.get(f"/api/v1/conferences?limit={limit}"), 400, "invalid")
    assert "limit" in body["detail"]


def test_bad_cursor_answers_400(api):
    body = assert_error(api.get("/api/v1/conferences?cursor=garbage"), 400, "invalid")
    assert "cursor" in body["detail"]


def test_delete_answers_204_then_404_and_frees_the_name(api, tenant):
    room_id = create(api).json()["room_id"]
    response = api.delete(f"/api/v1/conferences/{room_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(api.get(f"/api/v1/conferences/{room_id}"), 404, "not_found")
    assert_error(api.delete(f"/api/v1/conferences/{room_id}"), 404, "not_found")
    assert Room.objects.get(room_id=room_id).destroyed_at is not None  # kept for history
    new_room_id = create(api).json()["room_id"]
    assert new_room_id != room_id
    assert events_of(room_id) == [
        {"event": "conference.created", "app_id": tenant.app.app_id, "room_id": room_id, "name": "standup"},
        {"event": "conference.destroyed", "app_id": tenant.app.app_id, "room_id": room_id},
    ]
    for payload in events_of(room_id):
        assert_valid_event(payload)


def test_unknown_room_answers_404(api):
    assert_error(api.get("/api/v1/conferences/nope-room-123"), 404, "not_found")
    assert_error(api.delete("/api/v1/conferences/nope-room-123"), 404, "not_found")


def test_another_apps_room_answers_404_on_every_endpoint(api, client_for, other_tenant):
    room_id = create(api).json()["room_id"]
    theirs = client_for(other_tenant)
    missing = assert_error(theirs.get("/api/v1/conferences/x-room-missing"), 404, "not_found")
    assert assert_error(theirs.get(f"/api/v1/conferences/{room_id}"), 404, "not_found") == missing
    assert assert_error(theirs.delete(f"/api/v1/conferences/{room_id}"), 404, "not_found") == missing
    assert theirs.get("/api/v1/conferences").json()["results"] == []
    assert theirs.get("/api/v1/conferences?name=standup").json()["results"] == []
    assert api.get(f"/api/v1/conferences/{room_id}").status_code == 200
    assert not Event.objects.filter(event_type="conference.destroyed").exists()
