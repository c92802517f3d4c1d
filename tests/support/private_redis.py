"""A redis-server of the test's own, on a free port: a fault test stops and starts it, never
the machine's broker."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conferences import publish
from project.celery import app as celery_app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    def __init__(self, directory: Path):
        if shutil.which("redis-server") is None:
            pytest.skip("SKIPPED LOUDLY: redis-server is not installed, so the broker-outage test cannot run")
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def publish_here(self, monkeypatch) -> None:
        """This test process publishes to this broker from now on (fresh connections)."""
        real_connection_for_write = celery_app.connection_for_write
        monkeypatch.setattr(celery_app, "connection_for_write", lambda: real_connection_for_write(self.url))
        self.reconnect(monkeypatch)

    @staticmethod
    def reconnect(monkeypatch) -> None:
        """Drop pooled connections and the publisher's breaker, as after a restart."""
        monkeypatch.setattr(celery_app, "_pool", None)
        monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
        monkeypatch.setattr(publish, "_broker_down_until", 0.0)
