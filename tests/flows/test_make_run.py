"""`make run` on a machine without DATABASE_URL and CELERY_BROKER_URL: embedded PostgreSQL,
a broker folder, web + worker + beat; the printed credentials create a room."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_make_run_serves_the_printed_credentials():
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
    port = free_port()
    env["PORT"] = port
    process = subprocess.Popen(
        [sys.executable, "-m", "project.devstack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 90
        credentials = None
        while time.monotonic() < deadline and credentials is None:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            credentials = re.search(r"X-App-ID: (\S+)\s+X-API-Key: (\S+)", line)
        assert credentials, "".join(output[-40:])
        headers = {"X-App-ID": credentials.group(1), "X-API-Key": credentials.group(2)}
        base = f"http://127.0.0.1:{port}"
        name = f"made-by-make-run-{int(time.time() * 1000)}"
        response = httpx.post(f"{base}/api/v1/conferences", json={"name": name}, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0
