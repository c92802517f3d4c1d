from datetime import timedelta

import pytest
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conferences.actors import Actor
from conferences.errors import Conflict, ServiceError
from conferences.models import AuditEntry, Delivery, DeliveryAttempt, EngineCommand, Event, Room, WebhookEndpoint
from conferences.services import delivery_dispatch, endpoints, retention
from conferences.services.endpoints import create_endpoint
from conferences.services.rooms import create_room, destroy_room
from conferences.ssrf import check_webhook_url, is_public
from conferences.webhooks.sender import SendResult
from conferences.webhooks.signing import encode_body
from tests.support.receiver import Receiver

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


@pytest.fixture
def endpoint(tenant):
    """An endpoint of `tenant` on a loopback port where nothing listens."""
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        return create_endpoint(actor=SYSTEM, app=tenant.app, url="http://127.0.0.1:9/hook")


PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://localhost:8000/hook",  # a name resolving to a private address
    "http://0.0.0.0/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://240.0.0.1/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_addresses_are_refused_when_saved(tenant, url):
    with pytest.raises(ServiceError) as refused:
        create_endpoint(actor=SYSTEM, app=tenant.app, url=url)
    assert refused.value.code == "invalid"
    assert "public" in refused.value.detail["url"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/x", "http:///x", "https://user:pw@93.184.216.34/", "not a url"])
def test_malformed_urls_are_refused(tenant, url):
    with pytest.raises(ServiceError):
        create_endpoint(actor=SYSTEM, app=tenant.app, url=url)


def test_public_addresses_are_accepted(tenant):
    assert check_webhook_url("https://93.184.216.34/hooks") is None
    assert check_webhook_url("http://[2606:2800:220:1:248:1893:25c8:1946]/hooks") is None
    assert is_public("8.8.8.8") and not is_public("::ffff:10.0.0.1")


@override_settings(WEBHOOK_ALLOW_PRIVATE=True)
def test_allow_private_lets_loopback_through(tenant):
    endpoint = create_endpoint(actor=SYSTEM, app=tenant.app, url="http://127.0.0.1:9/hook")
    assert endpoint.secret.startswith("whsec_")


def test_unknown_event_types_are_refused(tenant):
    with pytest.raises(ServiceError) as refused:
        create_endpoint(actor=SYSTEM, app=tenant.app, url="https://93.184.216.34/", event_types=["conference.exploded"])
    assert "event_types" in refused.value.detail


@pytest.mark.django_db(transaction=True)
def test_send_time_check_blocks_a_name_that_now_resolves_privately(tenant, monkeypatch):
    """Saved while allowed; at send time the guard re-resolves and refuses before connecting."""
    receiver = Receiver()
    try:
        with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
            create_endpoint(actor=SYSTEM, app=tenant.app, url=receiver.url.replace("127.0.0.1", "localhost"))
        create_room(actor=SYSTEM, app=tenant.app, name="rebound")
        assert delivery_dispatch.dispatch() == 1
        attempt = DeliveryAttempt.objects.get()
        assert attempt.error.startswith("blocked:")
        assert attempt.status_code is None
        assert receiver.received == []
        assert Delivery.objects.get().status == "pending"  # retried later, like any failure
    finally:
        receiver.close()


def test_fan_out_follows_the_event_filter_and_enabled_flag(tenant):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        everything = create_endpoint(actor=SYSTEM, app=tenant.app, url="http://127.0.0.1:9/all")
        only_destroyed = create_endpoint(
            actor=SYSTEM, app=tenant.app, url="http://127.0.0.1:9/d", event_types=["conference.destroyed"]
        )
        disabled = create_endpoint(actor=SYSTEM, app=tenant.app, url="http://127.0.0.1:9/off")
    WebhookEndpoint.objects.filter(pk=disabled.pk).update(enabled=False)
    room = create_room(actor=SYSTEM, app=tenant.app, name="filtered")
    assert list(Delivery.objects.values_list("endpoint_id", "ordering_key")) == [(everything.pk, room.room_id)]
    destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    assert sorted(
        Delivery.objects.filter(event__event_type="conference.destroyed").values_list("endpoint_id", flat=True)
    ) == [everything.pk, only_destroyed.pk]


def test_default_retry_schedule_spans_more_than_a_day_with_jitter():
    from django.conf import settings

    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    assert schedule == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert sum(schedule) >= 24 * 3600  # about 27 h before jitter
    for attempt, base in enumerate(schedule, start=1):
        delays = {delivery_dispatch.retry_delay(attempt) for _ in range(50)}
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len(delays) > 1
    assert delivery_dispatch.retry_delay(len(schedule) + 1) is None


def test_body_is_exactly_the_schema_keys_in_schema_order():
    payload = {"room_id": "r", "name": "n", "app_id": "a", "event": "conference.created"}
    assert encode_body(payload) == '{"event":"conference.created","app_id":"a","room_id":"r","name":"n"}'


def test_pruning_removes_only_what_is_past_retention(tenant, endpoint):
    create_room(actor=SYSTEM, app=tenant.app, name="pruned")
    delivery = Delivery.objects.get()
    old = DeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=timezone.now() - timedelta(days=31))
    recent = DeliveryAttempt.objects.create(delivery=delivery, number=2, started_at=timezone.now() - timedelta(days=29))
    old_audit = AuditEntry.objects.create(
        actor_kind="system", actor="tests", action="x", outcome="ok", occurred_at=timezone.now() - timedelta(days=91)
    )
    audit_count = AuditEntry.objects.count()
    room = Room.objects.get()
    week_ago = timezone.now() - timedelta(days=8)
    old_sent, old_pending, recent_sent = (
        EngineCommand.objects.create(
            room=room,
            command="stop",
            arguments={},
            status=status,
            created_at=created,
            completed_at=None if status == "pending" else created,
        )
        for status, created in (("sent", week_ago), ("pending", week_ago), ("sent", timezone.now()))
    )

    removed = retention.prune()

    assert removed == {
        "attempts": 1,
        "audit": 1,
        "engine_commands": 1,
        "events": 0,
        "playbacks": 0,
        "members": 0,
        "sessions": 0,
        "rooms": 0,
    }
    assert set(EngineCommand.objects.values_list("pk", flat=True)) == {old_pending.pk, recent_sent.pk}
    assert list(DeliveryAttempt.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not AuditEntry.objects.filter(pk=old_audit.pk).exists()
    assert AuditEntry.objects.count() == audit_count - 1
    assert not DeliveryAttempt.objects.filter(pk=old.pk).exists()


def test_periodic_tasks_are_registered_and_never_overwritten():
    from django_celery_beat.models import PeriodicTask

    from conferences.periodic import PERIODIC_TASKS, register_periodic_tasks

    tasks = {task.name: task for task in PeriodicTask.objects.filter(name__in=PERIODIC_TASKS)}
    assert set(tasks) == set(PERIODIC_TASKS)
    assert tasks["Webhook delivery re-drive"].task == "conferences.tasks.redrive_deliveries"
    PeriodicTask.objects.filter(name="History pruning").update(enabled=False)  # staff tuned it
    register_periodic_tasks()
    assert PeriodicTask.objects.get(name="History pruning").enabled is False
    assert PeriodicTask.objects.filter(name__in=PERIODIC_TASKS).count() == len(PERIODIC_TASKS)


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",
        "::ffff:0:7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a9fe:a9fe",
        "2002:7f00:1::",
        "fec0::1",
        "2002:a00:1::",
    ],
)
def test_ipv6_forms_that_carry_a_private_ipv4_are_refused(address):
    assert not is_public(address)


def test_urls_with_control_characters_are_refused():
    assert check_webhook_url("http://a\tb.example.com/") is not None
    assert check_webhook_url("http://93.184.216.34/a b") is not None
    assert check_webhook_url("http://%31%32%37.0.0.1/hooks") is not None  # decoded by other parsers


@pytest.mark.django_db(transaction=True)
def test_a_receiver_answering_nul_bytes_cannot_break_the_bookkeeping(tenant, monkeypatch):
    receiver = Receiver()
    receiver.answer = lambda request: (200, b'{"ok": "\x00"}')
    try:
        with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
            create_endpoint(actor=SYSTEM, app=tenant.app, url=receiver.url)
            create_room(actor=SYSTEM, app=tenant.app, name="nul")
            assert delivery_dispatch.dispatch() == 1
        assert len(receiver.received) == 1
        assert Delivery.objects.get().status == "delivered"
        assert DeliveryAttempt.objects.get().response_excerpt == '{"ok": ""}'
    finally:
        receiver.close()


def test_redelivery_to_a_disabled_endpoint_is_refused(tenant, endpoint):
    create_room(actor=SYSTEM, app=tenant.app, name="off")
    endpoints.disable_endpoint(actor=SYSTEM, endpoint=endpoint, reason="staff")
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    with pytest.raises(ServiceError) as refused:
        endpoints.redeliver(actor=SYSTEM, delivery=delivery)
    assert refused.value.code == "endpoint_disabled"


def _make_due(**filters) -> None:
    """Time passes: what waits for a retry is due now."""
    Delivery.objects.filter(status="pending", **filters).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_deliveries_behind_a_retrying_head_are_not_due_before_it(tenant, endpoint):
    room = create_room(actor=SYSTEM, app=tenant.app, name="held")
    before = timezone.now()
    [claim] = delivery_dispatch.claim(limit=10)
    delivery_dispatch.finish([(claim, SendResult(500, "", "", 5))])
    head = Delivery.objects.get()
    assert head.status == "pending" and head.next_attempt_at > before
    destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    behind = Delivery.objects.exclude(pk=head.pk).get()
    assert behind.next_attempt_at == head.next_attempt_at  # written held: the fan-out read the tail
    assert delivery_dispatch.claim(limit=10) == []
    assert delivery_dispatch.redrive() is False
    _make_due()
    assert delivery_dispatch.redrive() is True
    assert [c.delivery_id for c in delivery_dispatch.claim(limit=10)] == [head.pk]  # the head, not both


def test_a_delivery_whose_attempts_were_lost_gives_up(tenant, endpoint):
    create_room(actor=SYSTEM, app=tenant.app, name="lost")
    from django.conf import settings

    Delivery.objects.update(attempts=len(settings.WEBHOOK_RETRY_SCHEDULE) + 1)
    delivery_dispatch.dispatch()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.last_error == "no attempts left"


def test_the_claim_takes_the_lowest_pending_delivery_of_a_queue(tenant, endpoint):
    """The head is the lowest pending position, whatever the order rows became pending in."""
    room = create_room(actor=SYSTEM, app=tenant.app, name="q")
    from conferences import webhook_events
    from conferences.services.events import record_event

    for n in range(3):
        record_event(app=tenant.app, room=room, payload=webhook_events.play_stopped(room, f"op-{n}"))
    oldest, first_claimed, *_ = Delivery.objects.order_by("id")
    Delivery.objects.filter(pk=oldest.pk).update(status="delivered")
    [claim] = delivery_dispatch.claim(limit=10)
    assert claim.delivery_id == first_claimed.pk
    assert delivery_dispatch.claim(limit=10) == []  # one in flight per queue
    Delivery.objects.filter(pk=oldest.pk).update(status="pending")  # pending again, at its old place
    [outcome] = delivery_dispatch.finish([(claim, SendResult(200, "", "", 3))])
    assert outcome.status == "delivered"
    [following] = delivery_dispatch.claim(limit=10)
    assert following.delivery_id == oldest.pk
    assert DeliveryAttempt.objects.filter(delivery_id=oldest.pk).count() == 1  # recorded before the send


def test_a_finish_changes_only_its_own_attempt(tenant, endpoint):
    """A worker whose lease ran out finishes late: the attempt that took over decides."""
    create_room(actor=SYSTEM, app=tenant.app, name="taken-over")
    [stale] = delivery_dispatch.claim(limit=10)
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    [current] = delivery_dispatch.claim(limit=10)
    assert (stale.number, current.number) == (1, 2) and stale.msg_id == current.msg_id
    delivery_dispatch.finish([(stale, SendResult(200, "late", "", 3))])
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.lease_expires_at > timezone.now()  # still in flight
    delivery_dispatch.finish([(current, SendResult(500, "", "", 3))])
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.last_status_code == 500 and delivery.lease_expires_at is None
    assert list(DeliveryAttempt.objects.order_by("number").values_list("number", "status_code")) == [
        (1, 200),
        (2, 500),
    ]  # both attempts stay on record


def test_a_redelivery_starts_a_new_round_with_new_attempt_numbers(tenant, endpoint):
    create_room(actor=SYSTEM, app=tenant.app, name="again")
    [first] = delivery_dispatch.claim(limit=10)
    delivery_dispatch.finish([(first, SendResult(200, "", "", 3))])
    endpoints.redeliver(actor=SYSTEM, delivery=Delivery.objects.get())
    [second] = delivery_dispatch.claim(limit=10)
    assert (second.attempt_number, second.number) == (1, 2)
    delivery_dispatch.finish([(first, SendResult(500, "", "", 3))])  # the old attempt cannot touch the new round
    assert Delivery.objects.get().lease_expires_at is not None


def _queue_of(tenant, name: str, events: int) -> list[Delivery]:
    """A room's deliveries to the endpoint: conference.created, then `events` more."""
    from conferences import webhook_events
    from conferences.services.events import record_event

    room = create_room(actor=SYSTEM, app=tenant.app, name=name)
    for n in range(events):
        record_event(app=tenant.app, room=room, payload=webhook_events.play_stopped(room, f"op-{n}"))
    return list(Delivery.objects.filter(ordering_key=room.room_id).order_by("id"))


def _drain() -> list[int]:
    """Send everything due, each answered 200; the delivery ids in the order they went."""
    sent = []
    while claims := delivery_dispatch.claim(limit=100):
        sent += [claim.delivery_id for claim in claims]
        delivery_dispatch.finish([(claim, SendResult(200, "", "", 3)) for claim in claims])
    return sent


def _end(deliveries, status: str) -> None:
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(status=status, completed_at=timezone.now())


def test_a_redelivery_goes_after_what_its_queue_has_pending(tenant, endpoint):
    d0, d1, d2, d3 = _queue_of(tenant, "redo-order", 3)
    _end([d0, d1], "delivered")  # d2 and d3 still wait (their receiver was down)
    endpoints.redeliver(actor=SYSTEM, delivery=d0)
    with pytest.raises(Conflict) as refused:
        endpoints.redeliver(actor=SYSTEM, delivery=d0)  # queued already
    assert refused.value.code == "delivery_pending"
    assert _drain() == [d2.pk, d3.pk, d0.pk]


def test_recovery_requeues_failures_in_their_original_order_after_what_is_pending(tenant, endpoint):
    a0, a1, a2, a3, a4 = _queue_of(tenant, "recover-a", 4)
    b0, b1 = _queue_of(tenant, "recover-b", 1)
    _end([a0, a1, a3, b0], "failed")
    _end([a2], "delivered")  # a4 and b1 still wait
    assert endpoints.redeliver_failed(actor=SYSTEM, endpoint=endpoint, since=timezone.now() - timedelta(hours=1)) == 4
    sent = _drain()
    assert [pk for pk in sent if pk in {a0.pk, a1.pk, a3.pk, a4.pk}] == [a4.pk, a0.pk, a1.pk, a3.pk]
    assert [pk for pk in sent if pk in {b0.pk, b1.pk}] == [b1.pk, b0.pk]


def test_recovery_keeps_the_events_order_after_an_earlier_redelivery(tenant, endpoint):
    d0, d1, d2 = _queue_of(tenant, "redo-twice", 2)
    _end([d0, d1, d2], "failed")
    endpoints.redeliver(actor=SYSTEM, delivery=d1)  # d1 takes a later position, and fails again
    assert _drain() == [d1.pk]
    _end([d1], "failed")
    endpoints.redeliver_failed(actor=SYSTEM, endpoint=endpoint, since=timezone.now() - timedelta(hours=1))
    assert _drain() == [d0.pk, d1.pk, d2.pk]


@pytest.mark.parametrize("since", [timedelta(minutes=-1), timedelta(days=31)], ids=["future", "past-retention"])
def test_recovery_since_a_time_outside_the_retention_period_is_refused(tenant, endpoint, since):
    with pytest.raises(ServiceError) as refused:
        endpoints.redeliver_failed(actor=SYSTEM, endpoint=endpoint, since=timezone.now() - since)
    assert list(refused.value.detail) == ["since"]


def test_each_endpoint_has_at_most_its_cap_in_flight(make_tenant):
    busy, quiet = make_tenant(), make_tenant()
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        busy_endpoint = create_endpoint(actor=SYSTEM, app=busy.app, url="http://127.0.0.1:9/busy")
        quiet_endpoint = create_endpoint(actor=SYSTEM, app=quiet.app, url="http://127.0.0.1:9/quiet")
    for n in range(12):
        create_room(actor=SYSTEM, app=busy.app, name=f"busy{n}")
    for n in range(3):
        create_room(actor=SYSTEM, app=quiet.app, name=f"quiet{n}")
    from collections import Counter

    with override_settings(WEBHOOK_ENDPOINT_CONCURRENCY=5):
        claims = delivery_dispatch.claim(limit=100)
        assert Counter(c.endpoint_id for c in claims) == {busy_endpoint.pk: 5, quiet_endpoint.pk: 3}
        in_flight = Counter(c.endpoint_id for c in claims)
        in_flight[busy_endpoint.pk] -= 2  # two of them finished
        more = delivery_dispatch.claim(limit=100, in_flight=in_flight)
        assert Counter(c.endpoint_id for c in more) == {busy_endpoint.pk: 2}


def test_the_oldest_due_deliveries_are_claimed_first(tenant, endpoint):
    rooms = [create_room(actor=SYSTEM, app=tenant.app, name=f"age{n}") for n in range(4)]
    ages = {rooms[0].room_id: 10, rooms[1].room_id: 40, rooms[2].room_id: 20, rooms[3].room_id: 30}
    for room_id, seconds in ages.items():
        Delivery.objects.filter(ordering_key=room_id).update(
            next_attempt_at=timezone.now() - timedelta(seconds=seconds)
        )
    claims = delivery_dispatch.claim(limit=2)
    assert [c.payload["room_id"] for c in claims] == [rooms[1].room_id, rooms[3].room_id]


def test_writing_an_event_costs_the_same_whatever_the_backlog(tenant, endpoint, settings):
    """The fan-out reads a queue's tail through the queue index, never the endpoint's backlog."""
    from django.db import connection, transaction

    settings.QUOTA_LIVE_ROOMS = 0  # the quota's count is not read on every create: not this test's business

    with CaptureQueriesContext(connection) as without_backlog:
        create_room(actor=SYSTEM, app=tenant.app, name="first")
    with connection.cursor() as cursor:
        # A backlog of 20,000 pending deliveries of this endpoint, with no fresh statistics.
        cursor.execute(
            f"WITH event AS (INSERT INTO {Event._meta.db_table} (uuid, app_id, event_type, ordering_key, payload,"
            "  created_at) SELECT gen_random_uuid(), %s, 'conference.created', 'backlog-' || n, '{}', now()"
            "  FROM generate_series(1, 20000) AS n RETURNING id, ordering_key)"
            f" INSERT INTO {Delivery._meta.db_table} (event_id, endpoint_id, ordering_key, status, attempts,"
            " total_attempts, next_attempt_at, created_at, last_error)"
            " SELECT id, %s, ordering_key, 'pending', 0, 0, now(), now(), '' FROM event",
            [tenant.app.pk, endpoint.pk],
        )
        import uuid

        from django.utils import timezone
        from psycopg.types.json import Jsonb

        from conferences.services.fan_out import INSERT_SQL

        with transaction.atomic():  # EXPLAIN ANALYZE runs the insert: undo it
            cursor.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + INSERT_SQL,
                {
                    "uuids": [uuid.uuid4()],
                    "apps": [tenant.app.pk],
                    "types": ["conference.destroyed"],
                    "keys": ["backlog-7"],
                    "rooms": [None],
                    "payloads": [Jsonb({})],
                    "created": [timezone.now()],
                },
            )
            plan = cursor.fetchone()[0]
            transaction.set_rollback(True)
    read = _rows_read(plan[0]["Plan"])
    assert read < 100, read
    with CaptureQueriesContext(connection) as with_backlog:
        create_room(actor=SYSTEM, app=tenant.app, name="second")
    assert len(with_backlog) == len(without_backlog)


def _rows_read(node: dict) -> int:
    own = node.get("Actual Rows", 0) * node.get("Actual Loops", 1) + node.get("Rows Removed by Filter", 0)
    return own + sum(_rows_read(child) for child in node.get("Plans", []))


def test_every_queue_is_declared_and_each_task_is_routed_to_its_own():
    """A worker started without -Q consumes every declared queue."""
    from project.celery import app

    assert set(app.amqp.queues) == {"celery", "webhooks", "engine", "sweeps"}

    def queue_of(task_name):
        return app.amqp.router.route({}, task_name, (), {})["queue"].name

    assert queue_of("conferences.tasks.dispatch_webhooks") == "webhooks"
    assert queue_of("conferences.tasks.dispatch_engine_commands") == "engine"
    assert queue_of("conferences.tasks.sim_report") == "engine"
    for sweep in (
        "redrive_deliveries",
        "expire_due_playbacks",
        "playback_deadline",
        "expire_join",
        "expire_due_joins",
        "expire_orphans",
        "prune_history",
    ):
        assert queue_of(f"conferences.tasks.{sweep}") == "sweeps"


def test_a_name_with_many_addresses_has_only_its_first_ones_tried(monkeypatch):
    import socket

    from conferences import ssrf

    addresses = [f"93.184.216.{n}" for n in range(1, 9)]
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **kwargs: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses
        ],
    )
    assert ssrf.resolve_public("many.example.com", 443) == addresses[: ssrf.MAX_ADDRESSES]


def test_finishing_a_head_claims_its_successor_in_the_same_statement(tenant, endpoint):
    room = create_room(actor=SYSTEM, app=tenant.app, name="chain")
    from collections import Counter

    from conferences import webhook_events
    from conferences.services.events import record_event

    for n in range(2):
        record_event(app=tenant.app, room=room, payload=webhook_events.play_stopped(room, f"op-{n}"))
    first, second, third = Delivery.objects.order_by("id")
    [head] = delivery_dispatch.claim(limit=10)
    _, claims = delivery_dispatch.finish_and_claim([(head, SendResult(200, "", "", 3))], limit=10, in_flight=Counter())
    assert [c.delivery_id for c in claims] == [second.pk]
    _, claims = delivery_dispatch.finish_and_claim(
        [(claims[0], SendResult(503, "", "", 3))], limit=10, in_flight=Counter()
    )
    assert claims == []  # the retrying head holds the queue
    third.refresh_from_db()
    assert third.next_attempt_at == Delivery.objects.get(pk=second.pk).next_attempt_at


def test_a_stale_finish_does_not_release_the_queue(tenant, endpoint):
    room = create_room(actor=SYSTEM, app=tenant.app, name="stale")
    from collections import Counter

    destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    [stale] = delivery_dispatch.claim(limit=10)
    Delivery.objects.filter(pk=stale.delivery_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    [current] = delivery_dispatch.claim(limit=10)
    assert current.delivery_id == stale.delivery_id
    _, claims = delivery_dispatch.finish_and_claim([(stale, SendResult(200, "", "", 3))], limit=10, in_flight=Counter())
    assert claims == []  # the attempt that took over still holds the head


@pytest.mark.parametrize("url", ["http://127。0。0。1/hook", "http://①②⑦.0.0.1/hook", "http://169.254.169.🯲54/latest"])
def test_unicode_forms_of_private_addresses_are_refused_when_saved(url):
    assert check_webhook_url(url) is not None


@pytest.mark.django_db(transaction=True)
def test_unicode_forms_of_private_addresses_are_refused_when_sent(tenant):
    """A URL stored before the check knew these forms (or written by hand) is still refused."""
    receiver = Receiver()
    try:
        with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
            endpoint = create_endpoint(actor=SYSTEM, app=tenant.app, url=receiver.url)
        port = receiver.url.split(":")[2].split("/")[0]
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"http://127.0.0.\U0001fbf1:{port}/hooks")
        create_room(actor=SYSTEM, app=tenant.app, name="unicode")
        assert delivery_dispatch.dispatch() == 1
        assert DeliveryAttempt.objects.get().error.startswith("blocked:")
        assert receiver.received == []
    finally:
        receiver.close()


@pytest.fixture
def no_unresponsive_endpoints():
    delivery_dispatch.unresponsive.clear()
    yield delivery_dispatch.unresponsive
    delivery_dispatch.unresponsive.clear()


def test_an_endpoint_that_did_not_answer_gets_fewer_slots(tenant, endpoint, no_unresponsive_endpoints):
    for n in range(6):
        create_room(actor=SYSTEM, app=tenant.app, name=f"silent{n}")
    [first] = delivery_dispatch.claim(limit=1)
    delivery_dispatch.finish([(first, SendResult(None, "", "timeout after 10 s", 10_000))])
    assert no_unresponsive_endpoints == {endpoint.pk}
    assert len(delivery_dispatch.claim(limit=100)) == delivery_dispatch.UNRESPONSIVE_CAP
    Delivery.objects.update(lease_expires_at=None)
    [answered, *_] = delivery_dispatch.claim(limit=100)
    delivery_dispatch.finish([(answered, SendResult(500, "", "", 3))])  # an answer, even an error
    assert no_unresponsive_endpoints == set()


def test_a_new_event_waits_behind_a_retrying_head_even_when_the_tail_does_not(tenant, endpoint):
    """A fan-out that raced the head's failure left an unheld tail; the next one still holds."""
    room = create_room(actor=SYSTEM, app=tenant.app, name="raced")
    [head] = delivery_dispatch.claim(limit=10)
    delivery_dispatch.finish([(head, SendResult(500, "", "", 3))])
    destroy_room(actor=SYSTEM, app=tenant.app, room_id=room.room_id)
    raced = Delivery.objects.exclude(pk=head.delivery_id).get()
    Delivery.objects.filter(pk=raced.pk).update(next_attempt_at=timezone.now())  # as if unheld
    from conferences import webhook_events
    from conferences.services.events import record_event

    record_event(app=tenant.app, room=room, payload=webhook_events.play_stopped(room, "op-late"))
    latest = Delivery.objects.order_by("-id").first()
    assert latest.next_attempt_at == Delivery.objects.get(pk=head.delivery_id).next_attempt_at


def test_deliveries_claimed_beside_a_410_are_not_sent(make_tenant):
    tenant = make_tenant()
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        create_endpoint(actor=SYSTEM, app=tenant.app, url="http://127.0.0.1:9/gone")
    for n in range(2):
        create_room(actor=SYSTEM, app=tenant.app, name=f"gone{n}")
    from collections import Counter

    with override_settings(WEBHOOK_ENDPOINT_CONCURRENCY=1):
        [first] = delivery_dispatch.claim(limit=10)
        _, claims = delivery_dispatch.finish_and_claim(
            [(first, SendResult(410, "", "", 3))], limit=10, in_flight=Counter()
        )
    assert claims == []
