"""`make run` on a machine without DATABASE_URL and CELERY_BROKER_URL: embedded PostgreSQL,
a broker folder, web + worker + beat; the printed credentials create a room, and its
`conference.created` webhook shows in the development inbox, signature verified; a worker
killed is started again."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def workers_named(marker: str, *, group: int) -> list[int]:
    """The pids of the stack's processes (its process group) whose command line holds `marker`."""
    found = subprocess.run(["pgrep", "-g", str(group), "-f", marker], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_make_run_serves_the_printed_credentials():
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
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
    output: list[str] = []

    def read_everything() -> None:  # so a full pipe never blocks the stack's processes
        for line in process.stdout:
            output.append(line)

    threading.Thread(target=read_everything, daemon=True).start()
    try:
        try:
            eventually(lambda: "Webhooks " in "".join(output) or process.poll() is not None, timeout=90)
        except AssertionError:
            raise AssertionError("".join(output[-40:])) from None
        banner = "".join(output)
        credentials = re.search(r"X-App-ID: (\S+)\s+X-API-Key: (\S+)", banner)
        assert credentials, banner[-4000:]
        base = f"http://127.0.0.1:{port}"
        assert f"Webhooks  {base}/dev/inbox/" in banner
        headers = {"X-App-ID": credentials.group(1), "X-API-Key": credentials.group(2)}
        name = f"made-by-make-run-{int(time.time() * 1000)}"
        response = httpx.post(f"{base}/api/v1/conferences", json={"name": name}, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        room_id = response.json()["room_id"]
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200

        def inbox_lists_the_room_created_and_verified() -> bool:
            page = httpx.get(f"{base}/dev/inbox/", timeout=10).text
            return any(
                room_id in row and "conference.created" in row and "<td>verified</td>" in row
                for row in page.split("<tr>")
            )

        eventually(inbox_lists_the_room_created_and_verified, timeout=30)

        # A worker that dies is started again, and the console says so.
        [sweeps] = workers_named("sweeps@", group=process.pid)
        os.kill(sweeps, signal.SIGKILL)
        eventually(
            lambda: f"make run: sweeps worker (pid {sweeps}) exited with status -9; restarting it." in "".join(output),
            timeout=10,
        )
        eventually(lambda: len(workers_named("sweeps@", group=process.pid)) == 1, timeout=10)
        assert workers_named("sweeps@", group=process.pid) != [sweeps]
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0
