"""Every console page renders for support staff; search and filters find what support looks
for; the timelines tell a room's and a session's story in time order, page by page."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conferences import timeline
from conferences.actors import Actor
from conferences.admin.base import CappedCountPaginator
from conferences.models import AuditEntry, CallSession, Delivery, DeliveryAttempt, Event, Room
from conferences.services import members
from conferences.services.endpoints import create_endpoint
from conferences.services.sessions import create_session

pytestmark = pytest.mark.django_db
ENGINE = Actor.engine("tests")


@pytest.fixture
def story(tenant, api):
    """A room with an endpoint, a joined then muted call, a play, and one delivery that failed
    once before it was delivered."""
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        endpoint = create_endpoint(actor=Actor.system("tests"), app=tenant.app, url="http://127.0.0.1:9/hook")
    room_id = api.post("/api/v1/conferences", {"name": "story"}, format="json").json()["room_id"]
    session_uuid = create_session(
        actor=ENGINE, app_id=tenant.app.app_id, caller_id="+15550002", session_uuid=None
    ).session_uuid
    api.post(f"/api/v1/sessions/{session_uuid}/commands/conference/join", {"room_id": room_id}, format="json")
    members.confirm_join(actor=ENGINE, session_uuid=session_uuid, room_id=room_id)
    api.post(f"/api/v1/sessions/{session_uuid}/commands/conference/mute", {}, format="json")
    api.post(f"/api/v1/conferences/{room_id}/play", {"urls": ["https://cdn.example.com/a.wav"]}, format="json")
    created = Delivery.objects.get(endpoint=endpoint, event__event_type="conference.created")
    DeliveryAttempt.objects.create(delivery=created, number=1, duration_ms=10_000, error="timed out")
    DeliveryAttempt.objects.create(delivery=created, number=2, duration_ms=12, status_code=204)
    Delivery.objects.filter(pk=created.pk).update(status="delivered", completed_at=timezone.now())
    return Room.objects.get(room_id=room_id), CallSession.objects.get(session_uuid=session_uuid), created


def test_every_page_renders_for_support(support, story):
    room, session, delivery = story
    pages = [model for model in admin.site._registry if model._meta.app_label in ("conferences", "django_celery_beat")]
    assert len(pages) >= 17
    for model in pages:
        info = model._meta.app_label, model._meta.model_name
        assert support.get(f"/admin/{info[0]}/{info[1]}/").status_code == 200, info
        for odd in ("x" * 300, "99999999999999999999999", "msg_zz", "ep_"):
            assert support.get(f"/admin/{info[0]}/{info[1]}/", {"q": odd}).status_code == 200, (info, odd)
        first = model.objects.order_by("pk").first()
        if first is not None:
            assert support.get(f"/admin/{info[0]}/{info[1]}/{first.pk}/change/").status_code == 200, info
    assert support.get("/admin/auth/user/").status_code == 403  # not support's business


def test_rooms_are_found_by_id_name_or_a_members_session(support, story):
    room, session, _ = story
    for term in (room.room_id, room.name, session.session_uuid):
        found = support.get("/admin/conferences/room/", {"q": term}).context["cl"].result_list
        assert list(found) == [room], term
    assert not support.get("/admin/conferences/room/", {"q": "nothing-like-it"}).context["cl"].result_list


def test_the_room_page_shows_members_playback_and_links(support, story):
    room, session, _ = story
    page = support.get(f"/admin/conferences/room/{room.pk}/change/").content.decode()
    assert session.session_uuid in page and "playing" in page and "https://cdn.example.com/a.wav" in page
    assert f"/admin/conferences/room/{room.pk}/timeline/" in page
    assert f"/admin/conferences/auditentry/?q={room.room_id}" in page


@pytest.mark.parametrize(
    "model, query, expected",
    [
        ("auditentry", {"actor_kind__exact": "engine"}, {"member.joined", "session.create"}),
        ("auditentry", {"action": "conference/mute"}, {"conference/mute"}),
        ("auditentry", {"outcome": "name_taken"}, {"conference.create"}),
    ],
)
def test_history_filters(support, story, api, model, query, expected):
    assert api.post("/api/v1/conferences", {"name": "story"}, format="json").status_code == 409  # name_taken
    listed = support.get(f"/admin/conferences/{model}/", query)
    assert {entry.action for entry in listed.context["cl"].result_list} == expected


def test_history_filter_lists_the_values_held(support, story, tenant, api):
    api.post("/api/v1/conferences", {"name": "story"}, format="json")  # name_taken
    page = support.get("/admin/conferences/auditentry/").content.decode()
    assert "?action=conference.create" in page and f"?app_id={tenant.app.app_id}" in page
    assert "?outcome=ok" in page and "?outcome=name_taken" in page


def test_counts_are_capped(support, story, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    page = support.get("/admin/conferences/auditentry/").content.decode()
    assert "more than 2 audit history" in page


def test_the_room_timeline_explains_a_late_webhook(support, story):
    room, session, delivery = story
    page = support.get(f"/admin/conferences/room/{room.pk}/timeline/").content.decode()
    for text in (
        "conference.created",
        "conference.member.joined",
        "conference.member.muted",
        "conference.play.started",
        "conference.create",
        "member.joined",
        f"/admin/conferences/delivery/{delivery.pk}/change/",
        "attempt 1",
        "timed out",
        "attempt 2",
        "204",
        "10000 ms",
    ):
        assert text in page, text
    assert (
        page.index("conference.created")
        < page.index("conference.member.joined")
        < page.index("conference.play.started")
    )


def test_the_session_timeline_has_its_results_member_events_and_history(support, story):
    room, session, _ = story
    page = support.get(f"/admin/conferences/callsession/{session.pk}/timeline/").content.decode()
    for text in (
        "command.result",
        "conference.member.joined",
        "conference.member.muted",
        "session.create",
        "conference/join",
    ):
        assert text in page, text
    assert "conference.play.started" not in page and "conference.created" not in page  # the room's, not its


@pytest.mark.parametrize("newest_first", [False, True])
def test_timeline_pages_cover_everything_once_in_time_order(story, newest_first):
    room, _, _ = story
    sources = timeline.room_sources(room)
    everything = sorted(
        [("event", e.created_at, e.pk) for e in Event.objects.filter(room=room)]
        + [("history", a.occurred_at, a.pk) for a in AuditEntry.objects.filter(room_id=room.room_id)],
        key=lambda row: (row[1], row[2]),
        reverse=newest_first,
    )
    assert len(everything) > 6
    seen, cursor = [], None
    while True:
        page = timeline.page(sources, cursor=cursor, newest_first=newest_first, size=3)
        assert len(page.entries) <= 3
        seen += [(entry.kind, entry.at, entry.item.pk) for entry in page.entries]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == everything
    assert timeline.page(sources, cursor="e\u00b2.x9.hzz").entries  # a forged cursor reads as the first page


def test_timeline_pages_skip_nothing_when_clocks_disagree(story):
    """A history entry written later (higher id) but stamped earlier, as from a host whose clock
    is behind: every entry still appears exactly once."""
    room, _, _ = story
    earliest = AuditEntry.objects.filter(room_id=room.room_id).order_by("id").first().occurred_at
    for _ in range(3):
        AuditEntry.objects.create(
            occurred_at=earliest,
            actor_kind="system",
            actor="skewed",
            action="skewed",
            outcome="ok",
            room_id=room.room_id,
        )
    expected = {("event", pk) for pk in Event.objects.filter(room=room).values_list("pk", flat=True)} | {
        ("history", pk) for pk in AuditEntry.objects.filter(room_id=room.room_id).values_list("pk", flat=True)
    }
    for newest_first in (False, True):
        seen, cursor = [], None
        while True:
            page = timeline.page(timeline.room_sources(room), cursor=cursor, newest_first=newest_first, size=2)
            seen += [(entry.kind, entry.item.pk) for entry in page.entries]
            if not (cursor := page.next_cursor):
                break
        assert len(seen) == len(set(seen)) and set(seen) == expected


def test_room_page_and_timeline_queries_do_not_grow_with_members(support, story, tenant, api):
    room, _, _ = story

    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            assert support.get(url).status_code == 200
        return len(captured)

    pages = [
        f"/admin/conferences/room/{room.pk}/change/",
        f"/admin/conferences/room/{room.pk}/timeline/",
        "/admin/conferences/room/",
        "/admin/conferences/member/",
    ]
    before = [queries(url) for url in pages]
    for number in range(10):
        session = create_session(
            actor=ENGINE, app_id=tenant.app.app_id, caller_id=f"+1555010{number}", session_uuid=None
        )
        api.post(
            f"/api/v1/sessions/{session.session_uuid}/commands/conference/join",
            {"room_id": room.room_id},
            format="json",
        )
        members.confirm_join(actor=ENGINE, session_uuid=session.session_uuid, room_id=room.room_id)
    assert [queries(url) for url in pages] == before


def test_a_sessions_member_events_are_read_through_their_index(story):
    _, session, _ = story
    queryset = timeline.session_sources(session)["m"][1].order_by("id")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the tables are tiny: make the planner show its hand
        plan = queryset.explain()
    assert "event_member_by_session" in plan, plan
