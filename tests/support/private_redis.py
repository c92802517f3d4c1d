"""A redis-server of the test's own, on a free port (bench/private_services.py): a fault test
stops and starts it, never the machine's broker."""

from pathlib import Path

import pytest

from bench import private_services
from conferences import publish
from project.celery import app as celery_app


class PublishHere:
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


class PrivateRedis(PublishHere, private_services.PrivateRedis):
    """Started at once; the test is skipped, loudly, where redis-server is not installed."""

    def __init__(self, directory: Path):
        if missing := self.missing():
            pytest.skip(f"SKIPPED LOUDLY: {missing}, so the broker-outage test cannot run")
        super().__init__(directory)
        self.start()
