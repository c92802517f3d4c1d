"""`make run`: web, a worker per queue and beat together, on the given services or embedded ones.

Ctrl-C (or any of them exiting) stops them all.
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

    processes = [
        subprocess.Popen([PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"], cwd=ROOT),
        # One worker per queue, so a flood of webhooks never delays the watchdog or the engine.
        # Quiet (no start-up banners) and at WARNING, not INFO: the workers' banners and the 1 s
        # sweeps' log lines would bury the banner printed below.
        *(
            subprocess.Popen(
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "project",
                    "--quiet",
                    "worker",
                    "--loglevel=WARNING",
                    "--pool=threads",
                    f"--concurrency={threads}",
                    "-Q",
                    queues,
                    "-n",
                    f"{name}@%h",
                ],
                cwd=ROOT,
            )
            for name, queues, threads in (
                ("webhooks", "webhooks", 2),
                ("engine", "engine,celery", 8),
                ("sweeps", "sweeps", 4),
            )
        ),
        subprocess.Popen([PY, "-m", "celery", "-A", "project", "--quiet", "beat", "--loglevel=WARNING"], cwd=ROOT),
    ]

    def stop(*_):
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(0)

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
    while all(process.poll() is None for process in processes):
        time.sleep(0.5)
    print("A process exited; stopping the others.", flush=True)
    stop()


if __name__ == "__main__":
    main()
