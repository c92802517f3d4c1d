"""Wake-ups of an outbox's dispatcher: the flag that coalesces them, and the per-process gate."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from conferences.models import OutboxWake
from conferences.services import outbox
from tests.support.waiting import eventually

pytestmark = pytest.mark.django_db


def test_only_the_commit_that_raises_the_flag_publishes():
    assert outbox._raise_flags(["webhooks"]) == ["webhooks"]
    assert outbox._raise_flags(["webhooks"]) == []  # a wake-up is already waiting
    outbox.lower_flag("webhooks")  # a worker took it
    assert outbox._raise_flags(["webhooks"]) == ["webhooks"]


def test_a_flag_raised_long_ago_counts_as_a_lost_message():
    assert outbox._raise_flags(["webhooks"]) == ["webhooks"]
    OutboxWake.objects.filter(kind="webhooks").update(requested_at=timezone.now() - timedelta(seconds=10))
    assert outbox._raise_flags(["webhooks"]) == ["webhooks"]


def test_the_flag_row_is_created_when_missing():
    OutboxWake.objects.all().delete()
    assert outbox._raise_flags(["webhooks"]) == ["webhooks"]
    assert outbox._raise_flags(["webhooks"]) == []


def test_a_wake_up_that_could_not_be_published_lowers_the_flag(monkeypatch):
    from conferences import publish

    monkeypatch.setattr(publish, "_broker_down_until", float("inf"))
    outbox.wake("webhooks")
    assert OutboxWake.objects.get(kind="webhooks").requested_at is None  # the next commit tries again


@pytest.mark.django_db(transaction=True)
def test_a_wake_up_during_a_pass_starts_another_pass_in_the_same_thread():
    passes = []

    def dispatch(gate):
        passes.append(threading.current_thread().name)
        if len(passes) == 1:
            gate.wake()  # another task's wake-up, while this pass runs
        return 1

    dispatcher = outbox.Dispatcher("webhooks", dispatch)
    dispatcher.wake()
    eventually(lambda: dispatcher._thread is None)  # the thread ends when no wake-up is left
    assert passes == ["webhooks-dispatcher"] * 2
    dispatcher.wake()
    eventually(lambda: len(passes) == 3 and dispatcher._thread is None)  # and starts again


@pytest.mark.django_db(transaction=True)
def test_a_wake_up_is_not_lost_when_the_last_nudge_was_already_used():
    """A pass waits on a nudge future beside its requests; a wake-up that finds the previous
    nudge already completed must still complete the next one."""
    seen = []

    def dispatch(gate):
        first = gate.next_nudge()
        gate.wake()  # another thread's task, while this pass runs
        assert first.done() and gate.take_wake()
        gate.wake()  # again, before the pass asked for a fresh nudge
        seen.append(gate.next_nudge().done())
        assert gate.take_wake()
        seen.append(gate.next_nudge().done())
        return 0

    dispatcher = outbox.Dispatcher("webhooks", dispatch)
    dispatcher.wake()
    eventually(lambda: dispatcher._thread is None)
    assert seen == [True, False]


@pytest.mark.django_db(transaction=True)
def test_a_failed_wake_up_does_not_fail_the_committed_request(tenant, api, monkeypatch):
    from django.db import OperationalError

    from conferences.models import Delivery, WebhookEndpoint

    def database_gone(kinds):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(outbox, "_raise_flags", database_gone)
    WebhookEndpoint.objects.create(app=tenant.app, url="http://93.184.216.34/hook", secret="whsec_unused")
    response = api.post("/api/v1/conferences", {"name": "committed"}, format="json")
    assert response.status_code == 201
    assert Delivery.objects.filter(status="pending").count() == 1  # the re-drive will send it


@pytest.mark.django_db(transaction=True)
def test_a_commit_adding_to_both_outboxes_raises_both_flags_in_one_statement(monkeypatch):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    published = []
    monkeypatch.setattr(outbox, "enqueue_rollback_unsafe", lambda name, **options: published.append(name) or True)
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            for kind in ("webhooks", "engine", "webhooks"):
                outbox.wake_on_commit(kind)
    assert sorted(published) == sorted(outbox.DISPATCH_TASKS.values())
    assert sum("UPDATE conferences_outboxwake" in query["sql"] for query in queries) == 1
    assert OutboxWake.objects.filter(requested_at__isnull=False).count() == 2
