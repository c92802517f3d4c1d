"""`make run`: web, a worker per queue and beat together, on the given services or embedded ones.

Ctrl-C stops them all; one that dies is started again (and the console says so).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


class Supervised:
    """One process of the stack, started again when it dies."""

    QUICK_EXIT_SECONDS, QUICK_EXITS_ALLOWED = 10, 5  # then it is broken, not unlucky

    def __init__(self, name: str, command: list[str]):
        self.name, self.command = name, command
        self.process: subprocess.Popen | None = None
        self.started_at, self.quick_exits = 0.0, 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, cwd=ROOT)
        self.started_at = time.monotonic()

    def restart_if_dead(self) -> bool:
        """Restart it when it has exited; False when it keeps exiting right after starting."""
        status = self.process.poll()
        if status is None:
            return True
        quick = time.monotonic() - self.started_at < self.QUICK_EXIT_SECONDS
        self.quick_exits = self.quick_exits + 1 if quick else 0
        if self.quick_exits >= self.QUICK_EXITS_ALLOWED:
            return False
        print(f"make run: {self.name} (pid {self.process.pid}) exited with status {status}; restarting it.", flush=True)
        self.start()
        return True

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def wait(self) -> None:
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def manage(*args: str) -> str:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def main() -> None:
    env = os.environ
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = subprocess.run(
            [PY, "-m", "project.devdb"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
    # DEBUG stays off so errors keep the API's JSON shape; --insecure serves the admin's files.
    port = env.get("PORT", "8000")
    base = f"http://127.0.0.1:{port}"
    inbox_url = f"{base}/dev/inbox"
    # The demo app's endpoint is the inbox this web process serves (conferences/dev_inbox.py).
    # It is on loopback, which the SSRF rule refuses unless private addresses are allowed: these
    # processes allow them, to save the endpoint and to send to it.
    env["DEV_INBOX"] = "true"
    env["WEBHOOK_ALLOW_PRIVATE"] = "true"
    print("Migrating the database…", flush=True)
    manage("migrate", "--no-input")
    credentials = json.loads(manage("bootstrap_demo", "--inbox-url", inbox_url))

    # One worker per queue, so a flood of webhooks never delays the watchdog or the engine.
    # Quiet (no start-up banners) and at WARNING, not INFO: the workers' banners and the 1 s
    # sweeps' log lines would bury the banner printed below. Without gossip, mingle and event
    # heartbeats, as in production: nothing here uses them, and each is broker traffic and one
    # more consumer to re-establish after an outage.
    celery = [PY, "-m", "celery", "-A", "project", "--quiet"]
    workers = (("webhooks", "webhooks", 2), ("engine", "engine,celery", 8), ("sweeps", "sweeps", 4))
    supervised = [
        Supervised("web", [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]),
        *(
            Supervised(
                f"{name} worker",
                [
                    *celery,
                    "worker",
                    "--loglevel=WARNING",
                    "--pool=threads",
                    f"--concurrency={threads}",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-Q",
                    queues,
                    "-n",
                    f"{name}@%h",
                ],
            )
            for name, queues, threads in workers
        ),
        Supervised("beat", [*celery, "beat", "--loglevel=WARNING"]),
    ]
    for process in supervised:
        process.start()

    def stop(*_, status: int = 0):
        for process in supervised:
            process.terminate()
        for process in supervised:
            process.wait()
        sys.exit(status)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    app_id, api_key = credentials["app_id"], credentials["api_key"]
    print(
        f"""
Conference control plane is up (Ctrl-C stops web, workers and beat).
  API       {base}/api/v1/
  API docs  {base}/api/docs
  Admin     {base}/admin/   user {credentials["admin_user"]}  password {credentials["admin_password"]}
  Metrics   {base}/metrics
  Demo app  X-App-ID: {app_id}   X-API-Key: {api_key}
  Webhooks  {base}/dev/inbox/ (what the demo app's endpoint received)

  curl -X POST {base}/api/v1/conferences -H 'X-App-ID: {app_id}' -H 'X-API-Key: {api_key}' \\
       -H 'Content-Type: application/json' -d '{{"name": "standup"}}'
""",
        flush=True,
    )
    while True:  # a process that dies is started again, and the console says so
        for process in supervised:
            if not process.restart_if_dead():
                print(f"make run: {process.name} keeps exiting at start; stopping everything.", flush=True)
                stop(status=1)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
