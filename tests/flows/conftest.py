import pytest
from django.test import override_settings

from project.celery import app as celery_app
from tests.support.receiver import Receiver
from tests.support.worker import WORKER_ENV, BeatProcess, WorkerProcess


@pytest.fixture(scope="module")
def worker_env() -> dict:
    """Extra environment of the module's worker; a test module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, worker_env):
    """A real worker for a module's flow tests (transactional tests only: it sees commits)."""
    celery_app.control.purge()
    worker = WorkerProcess(tmp_path_factory.mktemp("worker") / "worker.log", worker_env)
    yield worker
    worker.stop()


@pytest.fixture
def celery_beat(celery_worker, tmp_path_factory, worker_env):
    """A real beat for a test, beside the module's worker. One per test: it stops before the
    test's tables are flushed, which django-celery-beat's scheduler does not survive (it dies
    on a periodic task whose schedule row vanished while it read them)."""
    beat = BeatProcess(tmp_path_factory.mktemp("beat") / "beat.log", worker_env)
    yield beat
    beat.stop()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def like_the_worker():
    """This process's settings as the worker has them (loopback receivers allowed, short retries)."""
    with override_settings(
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_RETRY_SCHEDULE=[float(x) for x in WORKER_ENV["WEBHOOK_RETRY_SCHEDULE"].split(",")],
        WEBHOOK_TIMEOUT_SECONDS=float(WORKER_ENV["WEBHOOK_TIMEOUT_SECONDS"]),
    ):
        yield
