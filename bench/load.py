"""`make load`: the API under gunicorn, driven from outside. Loopback only, bounded in time.

1. SQL per request, in process through Django's test client: the statements and transactions
   each endpoint makes in a small world, and in a large one (ten times the members in the room,
   hundreds more live rooms in the app, thousands more history rows). A count that grows fails.
2. Create against the baseline: `POST /api/v1/conferences` flat out, then a bare DRF endpoint
   writing one room row under the same gunicorn (bench/bare_write.py), LOAD_CONCURRENCY
   requests in flight, alternated twice; the ratio of their requests/s.
3. The mixed load: LOAD_APPS apps, LOAD_USERS virtual users each looping create, three calls
   joining, mute, play, pause, resume, stop, kick, delete and hang-ups for LOAD_SECONDS;
   requests/s and p50/p99 per endpoint. Any 5xx fails.
4. Afterwards (the checks of `make faults`): every webhook has arrived, signed, first arrivals
   in per-room order, duplicates only under the same webhook-id, one terminal event per play.

The system runs as separate processes (bench/stack.py): gunicorn, a Celery worker, one beat, a
webhook receiver that verifies every signature, on a fresh database `conference_load` beside
DATABASE_URL's and a redis-server of its own (broker and cache). LOAD_SCALE_OUT=1 runs two web
processes and two workers, each with its own NODE_HASH as if on separate hosts.
"""

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp

from .faults import Phase, check_events
from .receiver import percentile
from .round_trips import round_trips
from .stack import ENGINE_TOKEN, Stack

CONCURRENCY = int(os.environ.get("LOAD_CONCURRENCY", 16))
APPS = int(os.environ.get("LOAD_APPS", 4))
USERS = int(os.environ.get("LOAD_USERS", 16))
SECONDS = float(os.environ.get("LOAD_SECONDS", 30))
CREATE_SECONDS = float(os.environ.get("LOAD_CREATE_SECONDS", 10))
SCALE_OUT = os.environ.get("LOAD_SCALE_OUT") == "1"
WEB_WORKERS = int(os.environ.get("LOAD_WEB_WORKERS", 2))  # gunicorn sync workers per web process
DRAIN_SECONDS = 120
# What every process of the stack runs with: quick joins, and a per-app limit above what a
# flat-out run reaches (still counted: its cost is part of every request).
STACK_ENV = {
    "SIM_JOIN_DELAY_MS": "20",
    "JOIN_TIMEOUT_SECONDS": "10",  # a busy 2-core machine can take seconds to confirm a join
    "API_RATE_LIMIT": "2000/second",
    "DJANGO_SETTINGS_MODULE": "bench.load_settings",
}
LONG_PLAY = "http://127.0.0.1:9/hold.wav#duration=600"  # never ends by itself: stop or delete ends it


# --- 1. SQL per request --------------------------------------------------------------------------


class World:
    """An app with one room and its calls, driven in process; `grow` makes it large."""

    def __init__(self, app: dict):
        from django.test import Client

        self.app_id = app["app_id"]
        self.client = Client(HTTP_X_APP_ID=self.app_id, HTTP_X_API_KEY=app["api_key"])
        self.engine = Client(HTTP_AUTHORIZATION=f"Bearer {ENGINE_TOKEN}")
        self.call("post", "/api/v1/conferences", {"name": "warm-up"})  # the key's first use is recorded once

    def call(self, method: str, path: str, body=None, *, engine=False):
        client = self.engine if engine else self.client
        response = getattr(client, method)(path, body, content_type="application/json")
        assert response.status_code < 300, (method, path, response.status_code, response.content[:300])
        return response.json() if response.content else None

    def new_call(self) -> str:
        body = {"type": "session.created", "app_id": self.app_id, "caller_id": "+15550100"}
        return self.call("post", "/api/v1/engine/events", body, engine=True)["session_uuid"]

    def joined_call(self, room_id: str) -> str:
        session = self.new_call()
        self.call("post", f"/api/v1/sessions/{session}/commands/conference/join", {"room_id": room_id})
        report = {"type": "member.joined", "session_uuid": session, "room_id": room_id}
        self.call("post", "/api/v1/engine/events", report, engine=True)
        return session

    def grow(self, room_id: str, *, members: int, rooms: int, history: int) -> None:
        from conferences.actors import Actor
        from conferences.models import App
        from conferences.services import audit
        from conferences.services.rooms import create_room

        for _ in range(members):
            self.joined_call(room_id)
        app = App.objects.get(app_id=self.app_id)
        for n in range(rooms):
            create_room(actor=Actor.system("load"), app=app, name=f"filler-{n}")
        audit.record_many(
            [{"actor": Actor.system("load"), "action": "filler", "app_id": self.app_id, "room_id": room_id}] * history
        )


def statements_per_endpoint(world: World, *, grow: dict | None) -> dict[str, tuple[int, int]]:
    """(statements, transactions) of each endpoint, in order, for one room's life."""
    measured = {}

    def measure(name, method, path, body=None, *, engine=False):
        with round_trips() as counts:
            result = world.call(method, path, body, engine=engine)
        measured[name] = (counts["statements"], counts["transactions"])
        return result

    room_id = measure("POST /conferences", "post", "/api/v1/conferences", {"name": "measured"})["room_id"]
    world.joined_call(room_id)
    if grow:
        world.grow(room_id, **grow)
    room = f"/api/v1/conferences/{room_id}"
    session = world.new_call()
    commands = f"/api/v1/sessions/{session}/commands/conference"
    measure("GET /conferences", "get", "/api/v1/conferences?limit=50")
    measure("POST …/join", "post", f"{commands}/join", {"room_id": room_id})
    report = {"type": "member.joined", "session_uuid": session, "room_id": room_id}
    measure("engine member.joined", "post", "/api/v1/engine/events", report, engine=True)
    measure("GET /conferences/{id}", "get", room)
    measure("GET /sessions/{id}", "get", f"/api/v1/sessions/{session}")
    measure("POST …/mute", "post", f"{commands}/mute", {})
    measure("POST …/unmute", "post", f"{commands}/unmute", {})
    measure("POST /conferences/{id}/play", "post", f"{room}/play", {"urls": [LONG_PLAY]})
    measure("POST …/pause (pause)", "post", f"{room}/pause")
    measure("POST …/pause (resume)", "post", f"{room}/pause")
    measure("POST …/volume", "post", f"{room}/volume", {"volume": 3})
    measure("POST …/stop", "post", f"{room}/stop")
    measure("DELETE …/members/{id} (kick)", "delete", f"{room}/members/{session}")
    created = {"type": "session.created", "app_id": world.app_id, "caller_id": "+15550100"}
    ended = measure("engine session.created", "post", "/api/v1/engine/events", created, engine=True)["session_uuid"]
    world.call("post", f"/api/v1/sessions/{ended}/commands/conference/join", {"room_id": room_id})
    report = {"type": "session.ended", "session_uuid": ended}
    measure("engine session.ended (joining)", "post", "/api/v1/engine/events", report, engine=True)
    world.call("post", f"{room}/play", {"urls": [LONG_PLAY]})
    measure("DELETE /conferences/{id} (playing)", "delete", room)
    return measured


def sql_table(stack: Stack) -> list[str]:
    """The statements per endpoint, small world against large; the endpoints whose count grew."""
    small = statements_per_endpoint(World(stack.create_app("sql-small")), grow=None)
    large = World(stack.create_app("sql-large"))
    large = statements_per_endpoint(large, grow={"members": 10, "rooms": 300, "history": 5000})
    print("\nSQL per request: statements (+ transactions), one member and one room against 11 members,")
    print("301 live rooms and 5,000 more history rows")
    print(f"  {'endpoint':38} {'small':>9} {'large':>9}")
    grew = []
    for name, (statements, transactions) in small.items():
        big_statements, big_transactions = large[name]
        mark = "" if (big_statements, big_transactions) == (statements, transactions) else "  GREW"
        if mark:
            grew.append(name)
        print(f"  {name:38} {statements:>5} (+{transactions}) {big_statements:>5} (+{big_transactions}){mark}")
    return grew


# --- 2. create against the baseline --------------------------------------------------------------


class Recorder:
    """Latency and status of every request, by endpoint."""

    def __init__(self):
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.refusals: dict[tuple[str, int], str] = {}  # a sample error code per endpoint and 4xx/5xx
        self.started = self.ended = 0.0

    async def send(self, session, name: str, method: str, url: str, **kwargs):
        began = time.perf_counter()
        async with session.request(method, url, **kwargs) as response:
            body = await response.read()
        self.latencies[name].append(time.perf_counter() - began)
        self.statuses[name][response.status] += 1
        parsed = json.loads(body) if body else None
        if response.status >= 400:
            self.refusals.setdefault((name, response.status), str(parsed.get("code") if parsed else ""))
        return response.status, parsed

    def rate(self, name: str) -> float:
        return len(self.latencies[name]) / (self.ended - self.started)

    def server_errors(self) -> int:
        return sum(count for statuses in self.statuses.values() for status, count in statuses.items() if status >= 500)


async def flat_out(urls: list[str], name: str, path_and_headers, seconds: float) -> Recorder:
    """CONCURRENCY requests in flight against `urls` (round robin) for `seconds`."""
    recorder = Recorder()
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def one_client(n: int):
            while time.monotonic() < deadline:
                path, headers = path_and_headers(n)
                body = {"name": f"r{uuid.uuid4().hex[:20]}"}
                await recorder.send(session, name, "POST", f"{urls[n % len(urls)]}{path}", json=body, headers=headers)

        recorder.started = time.monotonic()
        await asyncio.gather(*(one_client(n) for n in range(CONCURRENCY)))
        recorder.ended = time.monotonic()
    return recorder


# --- 3. the mixed load ---------------------------------------------------------------------------


async def mixed_load(urls: list[str], apps: list[dict], seconds: float) -> Recorder:
    """USERS virtual users, each looping through a room's whole life with three calls."""
    recorder = Recorder()
    engine_headers = {"Authorization": f"Bearer {ENGINE_TOKEN}"}
    deadline = time.monotonic() + seconds

    async def one_user(n: int, session: aiohttp.ClientSession):
        app, base = apps[n % len(apps)], urls[n % len(urls)]
        api, app_headers = f"{base}/api/v1", headers_of(app)

        async def send(name, method, path, body=None, headers=None):
            headers = headers or app_headers
            return await recorder.send(session, name, method, f"{api}{path}", json=body, headers=headers)

        async def call_event(body):
            return await send(f"engine {body['type']}", "POST", "/engine/events", body, engine_headers)

        while time.monotonic() < deadline:
            status, body = await send("POST /conferences", "POST", "/conferences", {"name": f"u{n}-{uuid.uuid4().hex}"})
            if status != 201:
                continue
            room = f"/conferences/{body['room_id']}"
            calls = []
            for _ in range(3):
                created = {"type": "session.created", "app_id": app["app_id"], "caller_id": "+15550100"}
                status, body = await call_event(created)
                if status == 201:
                    calls.append(body["session_uuid"])
            for call in calls:
                await send("POST …/join", "POST", f"/sessions/{call}/commands/conference/join", {"room_id": room[13:]})
            for _ in range(50):  # the engine confirms the joins; give up after 10 s
                status, body = await send("GET /conferences/{id}", "GET", room)
                if status != 200 or all(member["state"] == "joined" for member in body["members"]):
                    break
                await asyncio.sleep(0.2)
            if calls:
                await send("POST …/mute", "POST", f"/sessions/{calls[0]}/commands/conference/mute", {})
            await send("POST …/play", "POST", f"{room}/play", {"urls": [LONG_PLAY]})
            await send("POST …/pause", "POST", f"{room}/pause")
            await send("POST …/pause", "POST", f"{room}/pause")
            await send("POST …/stop", "POST", f"{room}/stop")
            if len(calls) > 1:
                await send("DELETE …/members/{id}", "DELETE", f"{room}/members/{calls[1]}")
            await send("POST …/play", "POST", f"{room}/play", {"urls": [LONG_PLAY]})
            await send("DELETE /conferences/{id}", "DELETE", room)
            for call in calls:
                await call_event({"type": "session.ended", "session_uuid": call})

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=USERS)) as session:
        recorder.started = time.monotonic()
        await asyncio.gather(*(one_user(n, session) for n in range(USERS)))
        recorder.ended = time.monotonic()
    return recorder


# --- 4. what arrived -----------------------------------------------------------------------------


def drained(timeout: float) -> float | None:
    """Seconds until no delivery or engine command of the run is pending; None if not within `timeout`."""
    from django.db import connection

    began = time.monotonic()
    while time.monotonic() - began < timeout:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM conferences_delivery WHERE status = 'pending')"
                " + (SELECT count(*) FROM conferences_enginecommand WHERE status = 'pending')"
            )
            if cursor.fetchone()[0] == 0:
                return time.monotonic() - began
        time.sleep(0.5)
    return None


# --- the run -------------------------------------------------------------------------------------


def quiet_app(app_id: str) -> dict:
    """An app without a webhook endpoint."""
    from conferences.actors import Actor
    from conferences.services.tenants import create_app

    return {"app_id": app_id, "api_key": create_app(actor=Actor.system("load"), app_id=app_id).api_key}


def headers_of(app: dict) -> dict:
    return {"X-App-ID": app["app_id"], "X-API-Key": app["api_key"]}


def print_endpoints(title: str, recorder: Recorder) -> None:
    total = sum(len(latencies) for latencies in recorder.latencies.values())
    print(f"\n{title}: {total} requests in {recorder.ended - recorder.started:.1f} s")
    print(f"  {'endpoint':30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for name, latencies in sorted(recorder.latencies.items()):
        statuses = " ".join(
            f"{status}×{count}" + (f" ({recorder.refusals[name, status]})" if status >= 400 else "")
            for status, count in sorted(recorder.statuses[name].items())
        )
        print(
            f"  {name:30} {recorder.rate(name):8.1f} {percentile(latencies, 0.5) * 1000:8.1f}"
            f" {percentile(latencies, 0.99) * 1000:8.1f}  {statuses}"
        )


def create_against_baseline(stack: Stack, apps: list[dict], quiet_apps: list[dict], bare_app_pk: int) -> list[str]:
    """The bare write and the create, alternated twice, flat out; the ratios of their requests/s.
    `create` is by apps with a webhook endpoint: each create also makes a delivery, which the
    worker sends and the receiver verifies on the same cores. `create, no endpoint` is the
    request path alone."""
    routes = {
        "bare write": lambda n: (f"/bench/bare-write/{bare_app_pk}", {}),
        "create, no endpoint": lambda n: ("/api/v1/conferences", headers_of(quiet_apps[n % len(quiet_apps)])),
        "create": lambda n: ("/api/v1/conferences", headers_of(apps[n % len(apps)])),
    }
    runs, failures = defaultdict(list), []
    for _ in range(2):
        for name, route in routes.items():
            if drained(DRAIN_SECONDS) is None:  # each run starts with no backlog
                failures.append(f"webhooks not drained within {DRAIN_SECONDS} s")
            recorder = asyncio.run(flat_out(stack.web_urls, name, route, CREATE_SECONDS))
            if recorder.server_errors():
                failures.append(f"{name}: {recorder.server_errors()} 5xx")
            runs[name].append(recorder)
    print(
        f"\nCreate against the baseline ({CONCURRENCY} in flight, {len(stack.web_urls)} web process(es) of "
        f"{WEB_WORKERS} gunicorn workers, each run {CREATE_SECONDS:.0f} s):"
    )
    rates = {name: sum(r.rate(name) for r in recorders) / len(recorders) for name, recorders in runs.items()}
    for name, recorders in runs.items():
        latencies = [latency for recorder in recorders for latency in recorder.latencies[name]]
        print(
            f"  {name:20} {rates[name]:8.1f} req/s  p50 {percentile(latencies, 0.5) * 1000:6.1f} ms"
            f"  p99 {percentile(latencies, 0.99) * 1000:6.1f} ms"
            f"  ({' and '.join(f'{r.rate(name):.0f}' for r in recorders)} req/s)"
        )
    for name in ("create, no endpoint", "create"):
        print(f"  ratio {name} / bare write: {rates[name] / rates['bare write']:.2f}")
    return failures


def main() -> int:
    from .setup import point_django_at

    started = time.monotonic()
    if missing := Stack.missing("redis"):
        print(f"make load needs redis-server (one broker and cache for every process): {missing}")
        return 1
    server_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    webs, workers = (2, 2) if SCALE_OUT else (1, 1)
    failures = []
    with (
        tempfile.TemporaryDirectory(prefix="load-") as workdir,
        Stack(
            Path(workdir),
            broker="redis",
            database_url=server_url,
            database_name="conference_load",
            web=[{"NODE_HASH": f"web{n}L"} for n in range(webs)],
            workers=[{"NODE_HASH": f"wrk{n}L"} for n in range(workers)],
            env=STACK_ENV,
            engine="sim",
            web_workers=WEB_WORKERS,
        ) as stack,
    ):
        # This process measures and checks as a web process would, without an access line per request.
        os.environ.update({**stack.web[0].env, "LOG_LEVEL": "WARNING"})
        point_django_at(stack.database_url)
        from django.db.models import Max

        from conferences.models import App, Event

        print(
            f"load: {webs} web process(es) × {WEB_WORKERS} gunicorn workers, {workers} worker(s), one beat; "
            f"PostgreSQL {stack.database_url.rsplit('@', 1)[-1]}, Redis {stack.broker_url}"
        )
        failures += [f"SQL per request grew: {name}" for name in sql_table(stack)]
        apps = [stack.create_app(f"load-{n}") for n in range(APPS)]
        quiet_apps = [quiet_app(f"load-quiet-{n}") for n in range(APPS)]
        bare_app_pk = App.objects.get(app_id=quiet_app("load-bare")["app_id"]).pk
        failures += create_against_baseline(stack, apps, quiet_apps, bare_app_pk)
        if drained(DRAIN_SECONDS) is None:  # the mixed load starts with no backlog
            failures.append(f"the creates' webhooks not drained within {DRAIN_SECONDS} s")
        phase = Phase("mixed load", started=time.time(), first_event_id=Event.objects.aggregate(last=Max("id"))["last"])
        recorder = asyncio.run(mixed_load(stack.web_urls, apps, SECONDS))
        phase.fault_end = time.time()
        print_endpoints(f"Mixed load ({APPS} apps, {USERS} users, {SECONDS:.0f} s)", recorder)
        if recorder.server_errors():
            failures.append(f"mixed load: {recorder.server_errors()} 5xx")
        drain = drained(DRAIN_SECONDS)
        if drain is None:
            failures.append(f"not drained within {DRAIN_SECONDS} s")
        check_events(stack, phase)
        print(
            f"\nAfterwards: drained in {'—' if drain is None else f'{drain:.1f} s'}; "
            + ", ".join(f"{name} {value}" for name, value in phase.row.items())
        )
        failures += phase.failures
        failures += [f"{child.name} died" for child in stack.dead()]
    print(f"\nmake load: {time.monotonic() - started:.0f} s")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
