"""A broker outage, with Redis and with RabbitMQ: a broker of the test's own is stopped for some
seconds under a real worker and a real beat, then started again. The worker must live through it
and consume again (it holds unacknowledged messages when the broker goes, as it does under load:
celery 5.7.0 died on that with Redis), beat must publish its periodic tasks again (it never did
with RabbitMQ while publish retries were off), and a request's publish must fail fast meanwhile."""

import re
import time
import uuid
from pathlib import Path

import pytest

from conferences import publish
from project.celery import app as celery_app
from tests.support.private_rabbitmq import PrivateRabbitMQ
from tests.support.private_redis import PrivateRedis
from tests.support.waiting import eventually
from tests.support.worker import BeatProcess, WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

OUTAGE_SECONDS = 10
BEAT_SWEEP = "conferences.tasks.expire_due_joins"  # sent by beat every second, by nothing else
HELD = "conferences.tasks.expire_join"  # with a countdown: held by the worker, unacknowledged
PROBE = "conferences.tasks.dispatch_webhooks"  # what a request publishes


def received_ids(text: str, task: str) -> set[str]:
    return set(re.findall(rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received", text))


def outlive_an_outage(broker, tmp_path, monkeypatch) -> None:
    env = {"CELERY_BROKER_URL": broker.url}
    worker_log = tmp_path / "worker.log"
    worker = WorkerProcess(worker_log, env)
    beat = BeatProcess(tmp_path / "beat.log", env)

    def alive_and(condition):
        def check() -> bool:
            for name, process in (("worker", worker), ("beat", beat)):
                assert process.process.poll() is None, f"{name} died:\n{Path(process.log.name).read_text()[-3000:]}"
            return condition()

        return check

    try:
        eventually(alive_and(lambda: received_ids(worker_log.read_text(), BEAT_SWEEP)), timeout=30)
        held = [str(uuid.uuid4()) for _ in range(3)]
        with celery_app.connection_for_write(broker.url) as connection:
            for task_id in held:
                celery_app.send_task(HELD, args=(0,), countdown=300, task_id=task_id, connection=connection)
        eventually(alive_and(lambda: received_ids(worker_log.read_text(), HELD) >= set(held)))

        broker.publish_here(monkeypatch)
        broker.stop()
        eventually(alive_and(lambda: "Connection to broker lost" in worker_log.read_text()))
        started = time.monotonic()
        assert publish.enqueue_rollback_unsafe(PROBE) is False
        assert time.monotonic() - started < 1, "a request waited on the dead broker"
        time.sleep(OUTAGE_SECONDS)  # the outage itself
        before = worker_log.read_text()
        broker.start()

        # Beat publishes again: a sweep it sent after the restart reaches the worker (not one
        # the broker delivers again).
        def beat_published_again() -> bool:
            return bool(
                received_ids(worker_log.read_text()[len(before) :], BEAT_SWEEP) - received_ids(before, BEAT_SWEEP)
            )

        eventually(alive_and(beat_published_again), timeout=40)
        # A request's publish goes through again once the breaker lapses, and is consumed.
        eventually(alive_and(lambda: publish.enqueue_rollback_unsafe(PROBE)), timeout=20)
        eventually(alive_and(lambda: received_ids(worker_log.read_text()[len(before) :], PROBE)), timeout=20)
        assert "Unrecoverable error" not in worker_log.read_text()
    finally:
        beat.stop()
        worker.stop()


def test_a_redis_outage_leaves_the_worker_consuming_and_beat_publishing(tmp_path, monkeypatch):
    broker = PrivateRedis(tmp_path)
    try:
        outlive_an_outage(broker, tmp_path, monkeypatch)
    finally:
        broker.stop()


def test_a_rabbitmq_outage_leaves_the_worker_consuming_and_beat_publishing(tmp_path, monkeypatch):
    broker = PrivateRabbitMQ(tmp_path / "rabbitmq")
    try:
        outlive_an_outage(broker, tmp_path, monkeypatch)
    finally:
        broker.stop()
