"""The whole system as separate processes, for fault and load runs. Loopback only.

    with Stack(workdir, broker="redis", workers=[{"NODE_HASH": "wrkA1"}, {"NODE_HASH": "wrkB2"}]) as stack:
        app = stack.create_app("tenant-a")        # its webhook endpoint is the stack's receiver
        stack.web_urls; stack.receipts(); stack.engine_state()
        httpx.post(f"{stack.engine_url}/_calls", json={"app_id": ..., "caller_id": ...})  # a call arrives
        stack.kill_worker(0); stack.start_worker(0)
        stack.stop_broker(); stack.start_broker(); stack.stop_database(); stack.start_database()

What runs: a PostgreSQL of its own (or the server of `database_url`) with a fresh database;
a Redis or RabbitMQ node of its own (or the broker at a given URL); web processes (gunicorn,
else runserver); Celery workers consuming every queue, each with its own environment (its
NODE_HASH, say); one beat; a webhook receiver; and, with `engine="http"`, a fake media engine
(both below, each in a process of its own: `python -m bench.stack receiver|engine ...`).
Everything started is stopped by `stop()`, on exceptions and Ctrl-C (`with`), and dies with
this process if it is killed (children get SIGKILL when the thread that started them ends:
call `start*` from the main thread).
"""

import argparse
import asyncio
import hashlib
import hmac
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg

from .private_services import (
    PrivatePostgres,
    PrivateRabbitMQ,
    PrivateRedis,
    die_with_parent,
    free_port,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENGINE_NODE = "Fk3ng"  # the fake engine's node: the prefix of the session ids it mints
ENGINE_TOKEN = "stack-engine-token"
ENGINE_SECRET = "stack-engine-command-key"
BROKERS = {"redis": PrivateRedis, "rabbitmq": PrivateRabbitMQ}


class Child:
    """One process of the stack, its output in `log_path`, in a process group of its own (so
    gunicorn's workers go with their master)."""

    def __init__(self, name: str, command: list[str], env: dict, log_path: Path):
        self.name, self.command, self.env, self.log_path = name, command, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, number: int) -> None:
        if self.alive:
            os.killpg(self.process.pid, number)

    def stop(self, timeout: float = 15) -> None:
        if not self.alive:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()

    def log_lines(self, pattern: str) -> list[str]:
        """The lines of its log matching the regular expression."""
        if not self.log_path.exists():
            return []
        matcher = re.compile(pattern)
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if matcher.search(line)]


class Stack:
    def __init__(
        self,
        workdir: Path,
        *,
        broker: str = "redis",
        database_url: str | None = None,
        database_name: str = "conference_stack",
        web: list[dict] | int = 1,
        workers: list[dict] | int = 1,
        env: dict | None = None,
        engine: str = "http",
        web_workers: int = 2,
        worker_concurrency: int = 8,
    ):
        """`broker`: "redis" or "rabbitmq" (a node of its own, which can be stopped) or a broker
        URL. `database_url`: a server to make `database_name` on; None: a PostgreSQL of its own
        (which can be stopped). `web` and `workers`: how many processes, or one environment
        override each. `env`: for every process. `engine`: "http" (the fake engine) or "sim"."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.database = None if database_url else PrivatePostgres(workdir / "postgres")
        self._server_url = database_url
        self.database_name = database_name
        self.broker = BROKERS[broker](workdir / broker) if broker in BROKERS else None
        self._broker_url = None if self.broker else broker
        web_env = [{}] * web if isinstance(web, int) else web
        worker_env = [{}] * workers if isinstance(workers, int) else workers
        self.web_ports = [free_port() for _ in web_env]
        self.receiver_port, self.engine_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "SECRET_KEY": "stack-secret-key-shared-by-every-web-process",
            "WEBHOOK_ALLOW_PRIVATE": "1",
            "MEDIA_ALLOW_PRIVATE": "1",
            "ENGINE": engine,
            "ENGINE_TOKEN": ENGINE_TOKEN,
            **(
                {"ENGINE_URL": f"http://127.0.0.1:{self.engine_port}/", "ENGINE_SECRET": ENGINE_SECRET}
                if engine == "http"
                else {}
            ),
            **(env or {}),
        }
        self.secrets_path = workdir / "endpoint-secrets.json"
        self.receipts_path = workdir / "receipts.jsonl"
        self.receiver = Child(
            "receiver",
            [
                PY,
                "-m",
                "bench.stack",
                "receiver",
                str(self.receiver_port),
                str(self.secrets_path),
                str(self.receipts_path),
            ],
            self.env,
            workdir / "receiver.log",
        )
        self.engine = (
            Child(
                "engine",
                [PY, "-m", "bench.stack", "engine", str(self.engine_port), self.web_urls[0]],
                self.env,
                workdir / "engine.log",
            )
            if engine == "http"
            else None
        )
        self.web = [
            Child(f"web{i}", self._web_command(port, web_workers), {**self.env, **extra}, workdir / f"web{i}.log")
            for i, (port, extra) in enumerate(zip(self.web_ports, web_env, strict=True))
        ]
        self.workers = [
            Child(
                f"worker{i}",
                [PY, "-m", "celery", "-A", "project", "worker", "--loglevel=INFO", "--pool=threads"]
                + ["--without-gossip", "--without-mingle", "--without-heartbeat"]  # as deployed (deploy/)
                + [f"--concurrency={worker_concurrency}", "-n", f"worker{i}@%h"],
                {**self.env, **extra},
                workdir / f"worker{i}.log",
            )
            for i, extra in enumerate(worker_env)
        ]
        self.beat = Child(
            "beat",
            [PY, "-m", "celery", "-A", "project", "beat", "--loglevel=INFO", f"--schedule={workdir / 'beat-schedule'}"],
            self.env,
            workdir / "beat.log",
        )

    @staticmethod
    def missing(broker: str) -> str | None:
        """Why a stack with a private `broker` and PostgreSQL cannot run here, or None."""
        return (BROKERS[broker].missing() if broker in BROKERS else None) or PrivatePostgres.missing()

    @staticmethod
    def _web_command(port: int, processes: int) -> list[str]:
        if importlib.util.find_spec("gunicorn"):
            return [PY, "-m", "gunicorn", "project.wsgi:application", "--bind", f"127.0.0.1:{port}"] + [
                "--workers",
                str(processes),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ]
        print("stack: gunicorn is not installed; the web process is Django's runserver (threaded)", flush=True)
        return [PY, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]

    # --- the whole ---------------------------------------------------------------------------

    @property
    def web_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.web_ports]

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def engine_url(self) -> str:
        return f"http://127.0.0.1:{self.engine_port}"

    @property
    def broker_url(self) -> str:
        return self.broker.url if self.broker else self._broker_url

    @property
    def database_url(self) -> str:
        server = self.database.url if self.database else self._server_url
        return server.rsplit("/", 1)[0] + "/" + self.database_name

    def children(self) -> list[Child]:
        return [c for c in (self.receiver, self.engine, *self.web, *self.workers, self.beat) if c is not None]

    def start(self) -> None:
        if self.database:
            self.database.start()
        server = self.database.url if self.database else self._server_url
        with psycopg.connect(server.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.database_name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {self.database_name}")
        if self.broker:
            self.broker.start()
        for child in self.children():
            child.env.update(DATABASE_URL=self.database_url, CELERY_BROKER_URL=self.broker_url)
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.children()[0].env, check=True)
        self.secrets_path.write_text("{}")
        self.receiver.start()
        wait_for_port(self.receiver_port, 30, "the receiver", self.receiver.process)
        if self.engine:
            self.engine.start()
            wait_for_port(self.engine_port, 30, "the fake engine", self.engine.process)
        for web, port in zip(self.web, self.web_ports, strict=True):
            web.start()
            wait_for_port(port, 60, web.name, web.process)
        for index in range(len(self.workers)):
            self.start_worker(index)
        self.beat.start()

    def stop(self) -> None:
        for child in reversed(self.children()):
            child.stop()
        if self.broker:
            self.broker.stop()
        if self.database:
            self.database.stop()

    def __enter__(self):
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop() runs on SIGTERM too
        self._previous_sigterm = previous
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        signal.signal(signal.SIGTERM, self._previous_sigterm)

    # --- faults ------------------------------------------------------------------------------

    def start_worker(self, index: int, ready_timeout: float = 60) -> None:
        worker = self.workers[index]
        already = len(worker.log_lines(r"\bready\."))
        worker.start()
        deadline = time.monotonic() + ready_timeout
        while len(worker.log_lines(r"\bready\.")) == already:
            if not worker.alive or time.monotonic() > deadline:
                raise RuntimeError(f"{worker.name} did not start; see {worker.log_path}")
            time.sleep(0.2)

    def kill_worker(self, index: int, number: int = signal.SIGKILL) -> None:
        worker = self.workers[index]
        worker.signal(number)
        worker.process.wait()

    def stop_broker(self) -> None:
        self.broker.stop()

    def start_broker(self) -> None:
        self.broker.start()

    def stop_database(self) -> None:
        self.database.stop()

    def start_database(self) -> None:
        self.database.start()

    def restart_database(self, down_seconds: float = 0) -> None:
        self.stop_database()
        time.sleep(down_seconds)
        self.start_database()

    def stop_receiver(self) -> None:
        """Down at once: its socket closed, its open connections cut."""
        self.receiver.signal(signal.SIGKILL)
        self.receiver.process.wait()

    def start_receiver(self) -> None:
        self.receiver.start()
        wait_for_port(self.receiver_port, 30, "the receiver", self.receiver.process)

    def set_receiver_delay(self, seconds: float) -> None:
        """How long the receiver holds each delivery before answering 200."""
        httpx.post(f"{self.receiver_url}/_control", json={"delay": seconds}, timeout=5).raise_for_status()

    def worker_mid_delivery(self) -> int | None:
        """The index of a worker whose delivery the receiver is holding right now (see
        set_receiver_delay), found by the sender's port among the worker's connections."""
        import psutil

        held = set(httpx.get(f"{self.receiver_url}/_control", timeout=5).json()["held_from_ports"])
        for index, worker in enumerate(self.workers):
            if not worker.alive:
                continue
            ports = {c.laddr.port for c in psutil.Process(worker.pid).net_connections(kind="tcp") if c.raddr}
            if ports & held:
                return index
        return None

    # --- apps, calls, observations ----------------------------------------------------------

    def create_app(self, app_id: str) -> dict:
        """`{"app_id", "api_key", "webhook_secret"}`; its endpoint is the receiver's /<app_id>."""
        made = subprocess.run(
            [PY, "manage.py", "create_app", app_id, "--webhook-url", f"{self.receiver_url}/{app_id}"],
            cwd=ROOT,
            env=self.children()[0].env,
            check=True,
            capture_output=True,
            text=True,
        )
        app = json.loads(made.stdout)
        secrets = json.loads(self.secrets_path.read_text())
        secrets[f"/{app_id}"] = app["webhook_secret"]
        self.secrets_path.write_text(json.dumps(secrets))
        return app

    def receipts(self) -> list[dict]:
        """Every delivery the receiver got, in arrival order: `{t, path, id, signed, body}`
        (`signed`: the signature verified with the endpoint's secret)."""
        if not self.receipts_path.exists():
            return []
        with open(self.receipts_path) as file:
            return [json.loads(line) for line in file if line.endswith("\n")]

    def engine_state(self) -> dict:
        return httpx.get(f"{self.engine_url}/_state", timeout=10).json()

    def dead(self) -> list[Child]:
        """Children that should be running and are not (a stopped receiver is not counted)."""
        return [c for c in self.children() if c is not self.receiver and c.process is not None and not c.alive]

    def restart_dead(self) -> list[Child]:
        """Start again what died, as a supervisor would; returns what was restarted."""
        dead = self.dead()
        for child in dead:
            if child in self.workers:
                self.start_worker(self.workers.index(child))
            else:
                child.start()
        return dead


# --- the webhook receiver ---------------------------------------------------------------------


def serve_receiver(port: int, secrets_path: Path, receipts_path: Path) -> None:
    """POST /<app_id>: the delivery is verified with standardwebhooks, written to the receipts
    (a line each, written through before the answer) and answered 200 after the delay set by
    POST /_control {"delay"}; a delivery whose signature does not verify is answered 400."""
    from aiohttp import web
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    receipts = open(receipts_path, "a", buffering=1)
    settings = {"delay": 0.0}
    held = Counter()  # the sender's port of each delivery being held, which tells the sender
    verifiers: dict[str, Webhook] = {}

    def verifier(path: str) -> Webhook | None:
        if path not in verifiers:
            secret = json.loads(secrets_path.read_text()).get(path)
            if secret is None:
                return None
            verifiers[path] = Webhook(secret)
        return verifiers[path]

    async def control(request):
        if request.method == "POST":
            settings.update(await request.json())
        return web.json_response({**settings, "held_from_ports": sorted(held)})

    async def deliver(request):
        body = await request.read()
        webhook = verifier(request.path)
        try:
            signed = webhook is not None and webhook.verify(body, dict(request.headers)) is not None
        except WebhookVerificationError:
            signed = False
        record = {"t": time.time(), "path": request.path, "id": request.headers.get("webhook-id"), "signed": signed}
        receipts.write(json.dumps({**record, "body": body.decode()}) + "\n")
        if settings["delay"]:
            port = request.transport.get_extra_info("peername")[1]
            held[port] += 1
            try:
                await asyncio.sleep(settings["delay"])
            finally:
                held[port] -= 1
                if not held[port]:
                    del held[port]
        return web.json_response({"ok": signed}, status=200 if signed else 400)

    app = web.Application()
    app.router.add_route("*", "/_control", control)
    app.router.add_post("/{app_id}", deliver)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- the fake media engine --------------------------------------------------------------------

JOIN_CONFIRM_SECONDS = 0.1
REPORT_TRYING_SECONDS = 180  # a report is tried this long (the ingress may be down meanwhile)
DEFAULT_FILE_SECONDS = 2.0
_DURATION = re.compile(r"duration=([0-9.]+)")


def serve_engine(port: int, ingress_base: str) -> None:
    """A media engine on HTTP, as README's "The http engine" describes, that does what it is
    told and remembers it: which session is in which room, muted or not, and what plays.

    Commands: POST / (signed; a repeated `x-engine-command-id` is dropped). Reports go to the
    ingress, each retried until it is answered (2xx or 4xx) or REPORT_TRYING_SECONDS pass: a
    join is confirmed after JOIN_CONFIRM_SECONDS, a play reports `playback.finished` after its
    files' `#duration=` (2 s each by default; `#error` reports `playback.error`).
    Control (for the load): POST /_calls {app_id, caller_id} makes a call (`session.created`);
    POST /_hangup {session_uuid} ends it (`session.ended`); GET /_state tells everything."""
    from aiohttp import ClientSession, ClientTimeout, web

    sessions: dict[str, dict] = {}  # session_uuid -> {"room": room_id | None, "muted": bool}
    rooms: set[str] = set()
    plays: dict[str, dict] = {}  # room_id -> {"operation_id", "paused"}
    seen_commands: set[str] = set()
    counts = {"commands": 0, "repeats": 0, "bad_signatures": 0, "reports": 0, "reports_failed": 0, "reporting": 0}
    client: list[ClientSession] = []
    ingress = f"{ingress_base}/api/v1/engine/events"

    async def post_report(report: dict) -> int | None:
        """The ingress's status, None when it could not be reached."""
        if not client:
            client.append(ClientSession(timeout=ClientTimeout(total=10)))
        try:
            async with client[0].post(ingress, json=report, headers={"Authorization": f"Bearer {ENGINE_TOKEN}"}) as r:
                await r.read()
                return r.status
        except Exception:  # no answer (refused, cut, timed out): tried again
            return None

    async def report_until_answered(report: dict, after: float = 0) -> int | None:
        counts["reporting"] += 1
        try:
            await asyncio.sleep(after)
            deadline = time.monotonic() + REPORT_TRYING_SECONDS
            pause = 0.2
            while True:
                status = await post_report(report)
                if status is not None and status < 500:
                    counts["reports"] += 1
                    return status
                if time.monotonic() > deadline:
                    counts["reports_failed"] += 1
                    return status
                await asyncio.sleep(pause * random.uniform(0.8, 1.2))
                pause = min(pause * 2, 2)
        finally:
            counts["reporting"] -= 1

    async def play_out(room_id: str, operation_id: str, urls: list[str]) -> None:
        for url in urls:
            fragment = url.partition("#")[2]
            match = _DURATION.search(fragment)
            remaining = float(match.group(1)) if match else DEFAULT_FILE_SECONDS
            while remaining > 0:
                await asyncio.sleep(0.05)
                play = plays.get(room_id)
                if play is None or play["operation_id"] != operation_id:
                    return  # stopped or replaced
                if not play["paused"]:
                    remaining -= 0.05
            if "error" in fragment.split("&"):
                plays.pop(room_id, None)
                report = {"type": "playback.error", "room_id": room_id, "operation_id": operation_id, "url": url}
                await report_until_answered(report)
                return
        plays.pop(room_id, None)
        report = {"type": "playback.finished", "room_id": room_id, "operation_id": operation_id, "url": urls[-1]}
        await report_until_answered(report)

    def carry_out(command: dict) -> None:
        name, room_id, session = command["command"], command.get("room_id"), command.get("session_uuid")
        if room_id and name != "destroy_room":
            rooms.add(room_id)
        member = sessions.setdefault(session, {"room": None, "muted": False}) if session else None
        if name == "join":
            member.update(room=room_id, muted=command["muted"])
            report = {"type": "member.joined", "session_uuid": session, "room_id": room_id}
            asyncio.ensure_future(report_until_answered(report, after=JOIN_CONFIRM_SECONDS))
        elif name == "kick" and member["room"] == room_id:
            member.update(room=None, muted=False)
        elif name in ("mute", "unmute") and member["room"] == room_id:
            member["muted"] = name == "mute"
        elif name == "play":
            plays[room_id] = {"operation_id": command["operation_id"], "paused": False}
            asyncio.ensure_future(play_out(room_id, command["operation_id"], command["urls"]))
        elif name in ("pause", "resume") and room_id in plays:
            plays[room_id]["paused"] = name == "pause"
        elif name == "stop":
            plays.pop(room_id, None)
        elif name == "destroy_room":
            rooms.discard(room_id)
            plays.pop(room_id, None)
            for member in sessions.values():
                if member["room"] == room_id:
                    member.update(room=None, muted=False)

    def live_sessions() -> dict:
        return {
            "node": ENGINE_NODE,
            "sessions": [{"session_uuid": s, "room_id": m["room"]} for s, m in sessions.items()],
            "rooms": sorted(rooms),
        }

    async def command(request):
        body = await request.read()
        command_id = request.headers.get("x-engine-command-id", "")
        signed = f"{command_id}.{request.headers.get('x-engine-timestamp', '')}.".encode() + body
        expected = "sha256=" + hmac.new(ENGINE_SECRET.encode(), signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-engine-signature", "")):
            counts["bad_signatures"] += 1
            return web.json_response({"error": "bad signature"}, status=401)
        command = json.loads(body)
        if command["command"] == "live_sessions":
            return web.json_response(live_sessions())
        counts["commands"] += 1
        if command_id in seen_commands:
            counts["repeats"] += 1
        else:
            seen_commands.add(command_id)
            carry_out(command)
        return web.json_response({"ok": True})

    async def make_call(request):
        asked = await request.json()
        session_uuid = f"{ENGINE_NODE}-{uuid.uuid4()}"
        report = {"type": "session.created", "session_uuid": session_uuid, **asked}
        status = await post_report(report)
        if status == 201:
            sessions[session_uuid] = {"room": None, "muted": False}
        return web.json_response({"status": status, "session_uuid": session_uuid})

    async def hang_up(request):
        session_uuid = (await request.json())["session_uuid"]
        sessions.pop(session_uuid, None)
        asyncio.ensure_future(report_until_answered({"type": "session.ended", "session_uuid": session_uuid}))
        return web.json_response({"ok": True})

    async def state(request):
        members = {s: m for s, m in sessions.items() if m["room"]}
        return web.json_response({**counts, "members": members, "rooms": sorted(rooms), "plays": plays})

    app = web.Application()
    app.router.add_post("/", command)
    app.router.add_post("/_calls", make_call)
    app.router.add_post("/_hangup", hang_up)
    app.router.add_get("/_state", state)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser(description="the stack's helper servers")
    sub = parser.add_subparsers(dest="server", required=True)
    receiver = sub.add_parser("receiver")
    receiver.add_argument("port", type=int)
    receiver.add_argument("secrets", type=Path)
    receiver.add_argument("receipts", type=Path)
    engine = sub.add_parser("engine")
    engine.add_argument("port", type=int)
    engine.add_argument("ingress")
    arguments = parser.parse_args()
    if arguments.server == "receiver":
        serve_receiver(arguments.port, arguments.secrets, arguments.receipts)
    else:
        serve_engine(arguments.port, arguments.ingress)


if __name__ == "__main__":
    main()
