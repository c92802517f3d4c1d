"""Domain metrics on /metrics (SPEC 12): read from the database when scraped, so every web
process reports what all processes did."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from conferences import metrics
from conferences.actors import Actor
from conferences.models import Delivery, DeliveryAttempt, EngineCommand, Event, PlaybackOperation
from conferences.services import members
from conferences.services.endpoints import create_endpoint
from conferences.services.sessions import create_session
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db
ENGINE = Actor.engine("tests")
URLS = ["https://cdn.example.com/a.wav"]


@pytest.fixture(autouse=True)
def fresh_readings(monkeypatch):
    """Every scrape reads the database (the cache is shown by its own test)."""
    monkeypatch.setattr(metrics.collector, "cache_seconds", 0)


def domain(samples: dict) -> dict:
    return {key: sample for key, sample in samples.items() if key[0].startswith("conference_")}


def scrape(client, **headers) -> dict:
    """The page's samples: {(name, ((label, value), ...)): value}."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    declared = [line.split()[2] for line in response.content.decode().splitlines() if line.startswith("# TYPE ")]
    assert len(declared) == len(set(declared))  # the text format declares a name once
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def create_room(api, name: str) -> str:
    response = api.post("/api/v1/conferences", {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["room_id"]


def join(api, tenant, room_id: str) -> str:
    session = create_session(actor=ENGINE, app_id=tenant.app.app_id, caller_id="+15550001", session_uuid=None)
    url = f"/api/v1/sessions/{session.session_uuid}/commands/conference/join"
    assert api.post(url, {"room_id": room_id}, format="json").status_code == 202
    return session.session_uuid


def test_live_rooms_by_node_members_and_sessions(api, tenant, client):
    with override_settings(NODE_HASH="k3v9q"):
        first, gone = create_room(api, "first"), create_room(api, "gone")
    with override_settings(NODE_HASH="p7x2m"):
        second = create_room(api, "second")
    assert api.delete(f"/api/v1/conferences/{gone}").status_code == 204
    joined = join(api, tenant, first)
    members.confirm_join(actor=ENGINE, session_uuid=joined, room_id=first)
    join(api, tenant, second)  # still joining: the engine has not confirmed
    create_session(actor=ENGINE, app_id=tenant.app.app_id, caller_id="+15550002", session_uuid=None)  # in no room

    samples = scrape(client)

    assert value(samples, "conference_rooms_live", node="k3v9q") == 1
    assert value(samples, "conference_rooms_live", node="p7x2m") == 1
    assert value(samples, "conference_members_active", state="joined") == 1
    assert value(samples, "conference_members_active", state="joining") == 1
    assert value(samples, "conference_sessions_active") == 3
    assert all(value(samples, "conference_metrics_read_success", part=part.name) == 1 for part in metrics.PARTS)


def test_events_written_counts_every_event(api, client):
    before = value(scrape(client), "conference_events_written_total")
    events = Event.objects.count()
    room_id = create_room(api, "counted")
    api.post(f"/api/v1/conferences/{room_id}/play", {"urls": URLS}, format="json")

    written = Event.objects.count() - events
    assert written == 2  # created, play.started
    assert value(scrape(client), "conference_events_written_total") == before + written


def test_backlog_per_queue_and_the_age_of_the_oldest_due(api, tenant, client):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        create_endpoint(actor=Actor.system("tests"), app=tenant.app, url="http://127.0.0.1:9/hook")
    rooms = [create_room(api, f"room-{n}") for n in range(4)]
    deliveries = list(Delivery.objects.order_by("id"))
    assert len(deliveries) == 4
    now = timezone.now()
    waiting, in_flight, retrying, _due_now = deliveries
    Delivery.objects.filter(pk=waiting.pk).update(next_attempt_at=now - timedelta(seconds=30))
    # Longer due, but a worker holds it: it is in the backlog, not in the age.
    Delivery.objects.filter(pk=in_flight.pk).update(
        next_attempt_at=now - timedelta(seconds=300), lease_expires_at=now + timedelta(seconds=60)
    )
    Delivery.objects.filter(pk=retrying.pk).update(next_attempt_at=now + timedelta(seconds=60))
    # The engine's queue: a join (due since 20 s) and one command scheduled for later.
    join(api, tenant, rooms[0])
    assert api.delete(f"/api/v1/conferences/{rooms[1]}").status_code == 204
    joining, destroying = EngineCommand.objects.order_by("id")
    EngineCommand.objects.filter(pk=joining.pk).update(next_attempt_at=now - timedelta(seconds=20))
    EngineCommand.objects.filter(pk=destroying.pk).update(next_attempt_at=now + timedelta(seconds=60))

    samples = scrape(client)

    # The destroy wrote one more delivery (conference.destroyed), due at once.
    assert value(samples, "conference_outbox_pending", queue="webhooks", state="due") == 4
    assert value(samples, "conference_outbox_pending", queue="webhooks", state="scheduled") == 1
    assert 30 <= value(samples, "conference_outbox_oldest_due_age_seconds", queue="webhooks") < 40
    assert value(samples, "conference_outbox_pending", queue="engine", state="due") == 1
    assert value(samples, "conference_outbox_pending", queue="engine", state="scheduled") == 1
    assert 20 <= value(samples, "conference_outbox_oldest_due_age_seconds", queue="engine") < 30


def test_an_empty_backlog_has_no_age(client):
    samples = scrape(client)
    for queue in ("webhooks", "engine"):
        assert value(samples, "conference_outbox_pending", queue=queue, state="due") == 0
        assert value(samples, "conference_outbox_oldest_due_age_seconds", queue=queue) == 0
    assert not any(name == "conference_webhook_delivery_latency_seconds" for name, _ in samples)


def finish(delivery: Delivery, *, status: str, seconds: float, ago: float, rounds: int = 1) -> None:
    """As the dispatcher records it: the last attempt, then the delivery's final state."""
    completed_at = timezone.now() - timedelta(seconds=ago)
    DeliveryAttempt.objects.create(delivery=delivery, number=rounds, started_at=completed_at - timedelta(seconds=0.2))
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status,
        attempts=1,
        total_attempts=rounds,
        created_at=completed_at - timedelta(seconds=seconds),
        completed_at=completed_at,
    )


def test_deliveries_by_outcome_and_their_latency(api, tenant, client):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        create_endpoint(actor=Actor.system("tests"), app=tenant.app, url="http://127.0.0.1:9/hook")
    for n in range(6):
        create_room(api, f"room-{n}")
    quick, slow, redelivered, gave_up, long_ago, disabled = Delivery.objects.order_by("id")
    finish(quick, status="delivered", seconds=2, ago=5)
    finish(slow, status="delivered", seconds=4, ago=10)
    finish(redelivered, status="delivered", seconds=3600, ago=5, rounds=2)  # a staff redelivery: no latency
    finish(gave_up, status="failed", seconds=900, ago=5)
    finish(long_ago, status="delivered", seconds=1, ago=metrics.WINDOW_SECONDS + 30)
    # Failed without an attempt (its endpoint was disabled): held, but not a completion.
    Delivery.objects.filter(pk=disabled.pk).update(status="failed", completed_at=timezone.now())

    samples = scrape(client)

    assert value(samples, "conference_webhook_deliveries_completed_1m", outcome="delivered") == 3
    assert value(samples, "conference_webhook_deliveries_completed_1m", outcome="failed") == 1
    assert value(samples, "conference_webhook_deliveries_failed") == 2
    assert value(samples, "conference_outbox_pending", queue="webhooks", state="due") == 0
    latency = {q: value(samples, "conference_webhook_delivery_latency_seconds", quantile=q) for q in ("0.5", "0.99")}
    assert latency == {"0.5": pytest.approx(3), "0.99": pytest.approx(3.98)}  # over 2 s and 4 s
    assert value(samples, "conference_webhook_delivery_latency_seconds", quantile="1") == pytest.approx(4)


def test_watchdog_lateness_and_plays_in_progress(api, client):
    late, paused, on_time = (create_room(api, name) for name in ("late", "paused", "on-time"))
    for room_id in (late, paused, on_time):
        api.post(f"/api/v1/conferences/{room_id}/play", {"urls": URLS}, format="json")
    api.post(f"/api/v1/conferences/{paused}/pause")
    PlaybackOperation.objects.filter(room__room_id=late).update(deadline_at=timezone.now() - timedelta(seconds=7))

    samples = scrape(client)

    assert value(samples, "conference_playbacks_overdue") == 1
    assert 7 <= value(samples, "conference_playback_watchdog_lateness_seconds") < 17
    assert value(samples, "conference_playbacks_active", state="playing") == 2
    assert value(samples, "conference_playbacks_active", state="paused") == 1


def test_scrapes_within_the_cache_period_share_one_reading(api, client, monkeypatch):
    monkeypatch.setattr(metrics.collector, "cache_seconds", 60)
    monkeypatch.setattr(metrics.collector, "_read_at", float("-inf"))
    first = scrape(client)
    create_room(api, "unseen")
    with CaptureQueriesContext(connection) as queries:
        second = scrape(client)
    assert domain(second) == domain(first)
    assert not any("pg_sequence_last_value" in query["sql"] for query in queries.captured_queries)

    monkeypatch.setattr(metrics.collector, "_read_at", float("-inf"))  # the period is over
    assert value(scrape(client), "conference_rooms_live", node=settings.NODE_HASH) == 1


def test_a_part_that_times_out_leaves_the_others(client, monkeypatch):
    monkeypatch.setattr(metrics, "STATEMENT_TIMEOUT_MS", 50)
    slow = metrics.Part("webhooks", "SELECT pg_sleep(1)", metrics.outbox_families("webhooks"))
    monkeypatch.setattr(metrics, "PARTS", tuple(slow if part.name == "webhooks" else part for part in metrics.PARTS))

    samples = scrape(client)

    assert value(samples, "conference_metrics_read_success", part="webhooks") == 0
    assert value(samples, "conference_metrics_read_success", part="engine") == 1
    assert ("conference_outbox_pending", (("queue", "webhooks"), ("state", "due"))) not in samples
    assert value(samples, "conference_outbox_pending", queue="engine", state="due") == 0
    assert value(samples, "conference_sessions_active") == 0


def test_with_a_token_only_its_bearer_reads_the_domain_metrics(client):
    with override_settings(METRICS_TOKEN="scraper-token"):
        with CaptureQueriesContext(connection) as queries:
            assert_error(client.get("/metrics"), 401, "not_authenticated")
        assert not queries.captured_queries  # a refused scrape costs the database nothing
        samples = scrape(client, HTTP_AUTHORIZATION="Bearer scraper-token")
    assert value(samples, "conference_sessions_active") == 0
