"""A real Celery worker process on the test database and the test run's broker."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

# What the worker is started with: short retries so retry paths finish within a test.
WORKER_ENV = {
    "WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,0.5",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    "WEBHOOK_ALLOW_PRIVATE": "1",
}


def test_database_url() -> str:
    url = urlsplit(os.environ.get("DATABASE_URL", settings.DATABASE_URL))
    return urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))


class _CeleryProcess:
    """A `celery -A project <arguments>` process on the test database and the run's broker."""

    def __init__(self, arguments: list[str], log_path: Path, extra_env: dict | None = None):
        env = {**os.environ, **WORKER_ENV, **(extra_env or {}), "DATABASE_URL": test_database_url()}
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", *arguments],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class WorkerProcess(_CeleryProcess):
    def __init__(self, log_path: Path, extra_env: dict | None = None):
        super().__init__(
            [
                "worker",
                "--pool=threads",
                "--concurrency=8",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            log_path,
            extra_env,
        )
        self._wait_ready(log_path)

    def _wait_ready(self, log_path: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in log_path.read_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-3000:]}")


class BeatProcess(_CeleryProcess):
    """A real `celery beat` with django-celery-beat's database scheduler on the test database."""

    def __init__(self, log_path: Path, extra_env: dict | None = None):
        super().__init__(
            ["beat", "--loglevel=INFO", "--max-interval=1", "--schedule=" + str(log_path.with_suffix(".db"))],
            log_path,
            extra_env,
        )
