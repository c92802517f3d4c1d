"""A RabbitMQ node of the test's own (bench/private_services.py: its own node name, ports, data,
logs and Erlang cookie, on loopback): a fault test stops and starts it, never the machine's broker."""

from pathlib import Path

import pytest

from bench import private_services
from tests.support.private_redis import PublishHere


class PrivateRabbitMQ(PublishHere, private_services.PrivateRabbitMQ):
    """Started at once; the test is skipped, loudly, where rabbitmq-server is not installed."""

    def __init__(self, directory: Path):
        if missing := self.missing():
            pytest.skip(f"SKIPPED LOUDLY: {missing}, so the RabbitMQ outage test cannot run")
        super().__init__(directory)
        self.start()
