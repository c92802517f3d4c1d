"""`make faults`: the system under a steady load while things break, then proof that nothing
was lost. Loopback only; every loop is bounded; the run prints its table and exits 1 on a FAIL.

The system runs as separate processes (bench/stack.py): a PostgreSQL, a broker (Redis, or
RabbitMQ with BROKER=rabbitmq) and a webhook receiver of its own, one gunicorn web process,
two Celery workers, one beat, and a fake media engine on HTTP (ENGINE=http) that remembers
who is in which room. Load threads drive rooms, calls, joins, mutes, plays, stops, kicks,
hang-ups and deletes at a modest steady rate, through each fault in turn:

- the broker stopped for 30 s;
- a worker killed with SIGKILL while it has deliveries in flight (started again 20 s later,
  as a supervisor would);
- the webhook receiver down (socket closed) for 2 minutes;
- PostgreSQL stopped for 15 s and started again: the API must answer 503 with the error shape
  and /readyz 503 meanwhile, and everything recover without restarting any of our processes.

After each, once the load stopped and the system settled: every event arrived (signature
verified), none out of per-room order (first arrivals), duplicates only under the same
webhook-id, exactly one terminal event per play, and the engine's members (room, muted) equal
the database's. FAULTS_QUICK=1 shortens the outages for development.
"""

import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .stack import ENGINE_NODE, Stack

QUICK = os.environ.get("FAULTS_QUICK") == "1"
BROKER = os.environ.get("BROKER", "redis")
BROKER_DOWN_SECONDS = 8 if QUICK else 30
RECEIVER_DOWN_SECONDS = 15 if QUICK else 120
DATABASE_DOWN_SECONDS = 5 if QUICK else 15
WORKER_DOWN_SECONDS = 20
LOAD_BEFORE_SECONDS = 5 if QUICK else 10  # load before each fault, and again after it
SETTLE_TIMEOUT_SECONDS = 180
LOAD_THREADS = 4
PACE_SECONDS = 0.25  # between one thread's requests: about 12 requests/s in all
REQUEST_TIMEOUT_SECONDS = 30
MEDIA = "http://127.0.0.1:9/media"  # never fetched: the fake engine only reads the #duration

STACK_ENV = {
    # Retries outlast the 2-minute receiver outage (about 165 s in all, -20% jitter: 132 s).
    "WEBHOOK_RETRY_SCHEDULE": "1,2,4,8" + ",15" * 10,
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    "JOIN_TIMEOUT_SECONDS": "5",
    "NODE_HASH": "faul7",
}
WORKER_ENV = [{"NODE_HASH": "wrkA1"}, {"NODE_HASH": "wrkB2"}]
TERMINAL = ("conference.play.finished", "conference.play.failed", "conference.play.stopped")


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Response:
    started: float
    seconds: float
    status: str  # the HTTP status, or "timeout" / "refused"
    shaped: bool  # an error with the spec's shape (or not an error)


@dataclass
class Load:
    """Threads looping room cycles until stopped; each finishes its cycle first."""

    api: str
    engine: str
    apps: list[dict]
    responses: list[Response] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.stopping.clear()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(LOAD_THREADS)]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=120)
            if thread.is_alive():
                raise RuntimeError("a load thread did not finish its cycle within 120 s")

    def _run(self, number: int) -> None:
        app = self.apps[number % len(self.apps)]
        headers = {"X-App-ID": app["app_id"], "X-API-Key": app["api_key"]}
        with (
            httpx.Client(base_url=self.api, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS) as api,
            httpx.Client(base_url=self.engine, timeout=REQUEST_TIMEOUT_SECONDS) as engine,
        ):
            while not self.stopping.is_set():
                self._cycle(api, engine, app["app_id"])

    def _call(self, client: httpx.Client, method: str, path: str, body: dict | None = None) -> httpx.Response | None:
        time.sleep(PACE_SECONDS)
        started = time.time()
        try:
            response = client.request(method, path, json=body)
        except httpx.TimeoutException:
            self.responses.append(Response(started, time.time() - started, "timeout", False))
            return None
        except httpx.TransportError:
            self.responses.append(Response(started, time.time() - started, "refused", False))
            return None
        shaped = response.status_code < 400 or _has_error_shape(response)
        self.responses.append(Response(started, time.time() - started, str(response.status_code), shaped))
        return response

    def _call_until_answered(self, client: httpx.Client, method: str, path: str) -> None:
        """As an app would with what it must not leave half done (a pause to resume, a room to
        delete): again after a 503, which changed nothing, for up to a minute (not after a timeout,
        which may have: a toggle is not sent twice)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = self._call(client, method, path)
            if response is None or response.status_code != 503:
                return
            time.sleep(1)

    def _cycle(self, api: httpx.Client, engine: httpx.Client, app_id: str) -> None:
        """A room's life: three calls join, mutes, a play (stopped, paused or left to finish), a
        kick, then either a delete and hang-ups, or a hang-up and the room left live."""
        created = self._call(api, "POST", "/api/v1/conferences", {"name": f"r{uuid.uuid4().hex[:20]}"})
        if created is None or created.status_code != 201:
            return
        room = created.json()["room_id"]
        calls = []
        for n in range(3):
            made = engine.post("/_calls", json={"app_id": app_id, "caller_id": f"+1555{n:04d}"}).json()
            if made["status"] == 201:
                calls.append(made["session_uuid"])
        for session in calls:
            self._call(api, "POST", f"/api/v1/sessions/{session}/commands/conference/join", {"room_id": room})
        for _ in range(4):  # as an app would: act on members once they have joined
            detail = self._call(api, "GET", f"/api/v1/conferences/{room}")
            if (
                detail is None
                or detail.status_code != 200
                or all(m["state"] == "joined" for m in detail.json()["members"])
            ):
                break
        command = "/api/v1/sessions/{}/commands/conference/{}"
        if calls:
            self._call(api, "POST", command.format(calls[0], "mute"), {})
        urls = [f"{MEDIA}/a.wav#duration={random.choice((0.5, 1, 1.5))}", f"{MEDIA}/b.wav#duration=1"]
        self._call(api, "POST", f"/api/v1/conferences/{room}/play", {"urls": urls})
        if calls:
            self._call(api, "POST", command.format(calls[0], "unmute"), {})
        if len(calls) > 1:
            self._call(api, "POST", command.format(calls[1], "mute"), {})
        ending = random.random()
        if ending < 0.3:
            self._call(api, "POST", f"/api/v1/conferences/{room}/stop")
        elif ending < 0.6:
            self._call_until_answered(api, "POST", f"/api/v1/conferences/{room}/pause")
            self._call_until_answered(api, "POST", f"/api/v1/conferences/{room}/pause")  # a toggle: resumes
        if len(calls) > 2:
            self._call(api, "DELETE", f"/api/v1/conferences/{room}/members/{calls[2]}")
        if random.random() < 0.5:
            self._call_until_answered(api, "DELETE", f"/api/v1/conferences/{room}")
            for session in calls:
                engine.post("/_hangup", json={"session_uuid": session})
        elif calls:
            engine.post("/_hangup", json={"session_uuid": calls[0]})  # the room stays with calls[1]


def _has_error_shape(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) == {"success", "error", "code", "detail"}
        and body["success"] is False
        and isinstance(body["error"], str)
        and isinstance(body["code"], str)
        and (body["detail"] is None or isinstance(body["detail"], dict))
    )


class ReadyzProbe:
    """/readyz once a second, in a thread: (time, status)."""

    def __init__(self, base: str):
        self.base, self.seen, self.stopping = base, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.wait(1):
                try:
                    status = client.get(f"{self.base}/readyz").status_code
                except httpx.HTTPError:
                    status = 0
                self.seen.append((time.time(), status))

    def between(self, start: float, end: float) -> Counter:
        return Counter(status for at, status in self.seen if start <= at <= end)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


# --- the faults ----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    started: float = 0.0
    fault_start: float = 0.0
    fault_end: float = 0.0
    first_event_id: int = 0
    outage: tuple[float, float] = (0.0, 0.0)  # when the database was down
    restarted: str = ""  # the process the fault itself started again
    # Per worker and beat: how many crash lines their logs had when the phase began, and when
    # the system had had LOAD_BEFORE_SECONDS to recover from the fault.
    crash_lines_at_start: dict = field(default_factory=dict)
    crash_lines_at_recovery: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    row: dict = field(default_factory=dict)


def broker_stopped(stack: Stack, phase: Phase) -> None:
    stack.stop_broker()
    time.sleep(BROKER_DOWN_SECONDS)
    stack.start_broker()


def worker_killed(stack: Stack, phase: Phase) -> None:
    from conferences.models import DeliveryAttempt

    stack.set_receiver_delay(0.5)  # deliveries stay in flight long enough to be cut
    deadline = time.monotonic() + 30
    while (victim := stack.worker_mid_delivery()) is None:
        if time.monotonic() > deadline:
            phase.failures.append("no worker had a delivery in flight within 30 s: nothing to cut")
            victim = 0
            break
        time.sleep(0.02)
    killed_at = _now()
    stack.kill_worker(victim)
    phase.fault_start = time.time()
    stack.set_receiver_delay(0)
    time.sleep(WORKER_DOWN_SECONDS)
    cut = _db(lambda: DeliveryAttempt.objects.filter(started_at__lte=killed_at, duration_ms__isnull=True).count())
    phase.notes.append(f"worker{victim} killed holding {cut} attempts (started, never finished); started again")
    phase.restarted = f"worker{victim}"
    stack.start_worker(victim)


def receiver_down(stack: Stack, phase: Phase) -> None:
    phase.restarted = "receiver"
    stack.stop_receiver()
    time.sleep(RECEIVER_DOWN_SECONDS)
    stack.start_receiver()


def database_restarted(stack: Stack, phase: Phase) -> None:
    stack.stop_database()
    phase.outage = (time.time(), time.time() + DATABASE_DOWN_SECONDS)
    time.sleep(DATABASE_DOWN_SECONDS)
    stack.start_database()


FAULTS = [
    (f"broker stopped {BROKER_DOWN_SECONDS}s", broker_stopped),
    ("worker SIGKILL mid-delivery", worker_killed),
    (f"receiver down {RECEIVER_DOWN_SECONDS}s", receiver_down),
    (f"PostgreSQL down {DATABASE_DOWN_SECONDS}s", database_restarted),
]


# --- the checks ------------------------------------------------------------------------------------


def _now():
    from django.utils import timezone

    return timezone.now()


def _db(query):
    """Run a query on a fresh connection (the server may have restarted since the last)."""
    from django.db import connections

    connections.close_all()
    return query()


def settled(stack: Stack) -> tuple[bool, str]:
    """Whether nothing is left to happen, else what is still moving."""
    from conferences.models import Delivery, EngineCommand, Member, Room

    engine = stack.engine_state()
    waiting = {
        "pending deliveries": Delivery.objects.filter(status="pending").count(),
        "pending engine commands": EngineCommand.objects.filter(status="pending").count(),
        "joining members": Member.objects.filter(state="joining").count(),
        "rooms playing": Room.objects.exclude(playback_status="stopped").count(),
        "engine reports in flight": engine["reporting"],
        "engine plays": len(engine["plays"]),
        "members the engine disagrees on": len(member_disagreements(engine)),
    }
    moving = ", ".join(f"{name} {count}" for name, count in waiting.items() if count)
    return not moving, moving


def member_disagreements(engine: dict) -> list[str]:
    from conferences.models import Member

    ours = {
        m["session__session_uuid"]: {"room": m["room__room_id"], "muted": m["muted"], "state": m["state"]}
        for m in Member.objects.filter(state__in=("joining", "joined"), session__node=ENGINE_NODE).values(
            "session__session_uuid", "room__room_id", "muted", "state"
        )
    }
    theirs = engine["members"]
    differing = []
    for session in sorted(set(ours) | set(theirs)):
        mine, engine_view = ours.get(session), theirs.get(session)
        if (
            mine is None
            or engine_view is None
            or mine["state"] != "joined"
            or (mine["room"], mine["muted"]) != (engine_view["room"], engine_view["muted"])
        ):
            differing.append(f"{session}: ours {mine}, engine's {engine_view}")
    return differing


def semantic_key(event_type: str, body: dict) -> tuple:
    """What makes an event one occurrence: two events sharing it are one thing told twice."""
    if event_type in ("conference.created", "conference.destroyed"):
        return event_type, body["room_id"]
    if event_type.startswith("conference.member."):
        return event_type, body["session_uuid"], body["room_id"]
    return event_type, body.get("operation_id")


def check_events(stack: Stack, phase: Phase) -> None:
    from conferences.models import Event

    events = list(
        Event.objects.filter(id__gt=phase.first_event_id)
        .order_by("id")
        .values("id", "uuid", "ordering_key", "room", "event_type", "payload", "created_at")
    )
    by_webhook_id = {f"msg_{e['uuid'].hex}": e for e in events}
    all_receipts = stack.receipts()
    known_ids = set(by_webhook_id)
    receipts = [r for r in all_receipts if r["id"] in known_ids]
    first_arrival: dict[str, dict] = {}
    for receipt in receipts:
        first_arrival.setdefault(receipt["id"], receipt)
    counts = Counter(r["id"] for r in receipts)
    unsigned = sum(1 for r in receipts if not r["signed"])
    delivered = sum(1 for webhook_id in by_webhook_id if webhook_id in first_arrival)
    lost = [webhook_id for webhook_id in by_webhook_id if webhook_id not in first_arrival]
    duplicates_same_id = sum(count - 1 for count in counts.values())
    # Phantoms: deliveries since this phase began whose webhook-id no event has.
    every_id = {f"msg_{u.hex}" for u in Event.objects.values_list("uuid", flat=True)}
    phantoms = sum(1 for r in all_receipts if r["t"] >= phase.started and r["id"] not in every_id)
    told_twice = sum(
        count - 1 for count in Counter(semantic_key(e["event_type"], e["payload"]) for e in events).values()
    )

    out_of_order = 0
    arrivals = sorted(first_arrival.values(), key=lambda r: r["t"])
    highest: dict[str, int] = {}
    for receipt in arrivals:
        event = by_webhook_id[receipt["id"]]
        key = event["ordering_key"]
        if event["id"] < highest.get(key, 0):
            out_of_order += 1
        highest[key] = max(highest.get(key, 0), event["id"])

    # Whole rooms: a play may have started before this phase (when the previous one did not settle).
    rooms = {e["room"] for e in events if e["room"] is not None}
    plays, terminal_errors = 0, []
    by_room = defaultdict(list)
    for event in Event.objects.filter(room__in=rooms).order_by("id").values("event_type", "payload"):
        by_room[event["payload"]["room_id"]].append(event)
    for room, room_events in by_room.items():
        playing = None
        for event in room_events:
            kind, operation = event["event_type"], event["payload"].get("operation_id")
            if kind == "conference.play.started":
                plays += 1
                if playing:
                    terminal_errors.append(f"{room}: play {playing} has no terminal event before the next play")
                playing = operation
            elif kind in TERMINAL:
                if playing is None or (kind != "conference.play.stopped" and operation != playing):
                    terminal_errors.append(f"{room}: {kind} {operation} ends no play in progress")
                playing = None
            elif kind == "conference.destroyed" and playing:
                terminal_errors.append(f"{room}: destroyed while play {playing} had no terminal event")
                playing = None
        if playing:
            terminal_errors.append(f"{room}: play {playing} never ended")

    # Recovery: every event written before the fault ended has arrived, how long after it ended.
    before_end = [w for w, e in by_webhook_id.items() if e["created_at"].timestamp() <= phase.fault_end]
    arrivals_before_end = [first_arrival[w]["t"] for w in before_end if w in first_arrival]
    drain = max((t - phase.fault_end for t in arrivals_before_end), default=0.0)

    phase.row.update(
        events=len(events),
        delivered=delivered,
        lost=len(lost),
        out_of_order=out_of_order,
        duplicates=f"{duplicates_same_id}/{told_twice + phantoms}",
        terminal=f"{plays - len(terminal_errors)}/{plays} ok",
        drain=f"{max(drain, 0):.1f}s" if len(arrivals_before_end) == len(before_end) else "never",
    )
    if lost:
        phase.failures.append(f"{len(lost)} events never arrived, e.g. {lost[:3]}")
    if out_of_order:
        phase.failures.append(f"{out_of_order} events arrived before an earlier event of their room or session")
    if told_twice or phantoms:
        phase.failures.append(f"{told_twice} events told twice under a new id; {phantoms} unknown webhook-ids")
    if unsigned:
        phase.failures.append(f"{unsigned} deliveries whose signature did not verify")
    if terminal_errors:
        phase.failures.append(f"terminal events: {terminal_errors[:3]}")
    phase.notes.append(
        f"signatures verified on all {len(receipts)} receipts" if not unsigned else f"{unsigned} unsigned receipts"
    )


def check_responses(load: Load, probe: ReadyzProbe, phase: Phase) -> None:
    during = [r for r in load.responses if phase.fault_start <= r.started <= phase.fault_end]
    statuses = Counter(r.status for r in load.responses)
    phase.row.update(
        requests=len(load.responses),
        statuses=" ".join(f"{s}:{n}" for s, n in sorted(statuses.items())),
        max_latency=f"{max((r.seconds for r in during), default=0):.2f}s",
    )
    server_errors = [r for r in load.responses if r.status.startswith("5") and r.status != "503"]
    unshaped = [r for r in load.responses if not r.shaped and r.status not in ("timeout", "refused")]
    if server_errors:
        phase.failures.append(
            f"{len(server_errors)} 5xx responses other than 503: {Counter(r.status for r in server_errors)}"
        )
    if unshaped:
        phase.failures.append(f"{len(unshaped)} error responses without the error shape")
    if statuses["timeout"] or statuses["refused"]:
        phase.failures.append(f"{statuses['timeout']} requests timed out, {statuses['refused']} refused")
    readyz = probe.between(phase.fault_start, phase.fault_end)
    phase.notes.append(f"/readyz during the fault: {dict(readyz)}")
    if phase.outage[1]:
        down_from, down_until = phase.outage
        outage = [r for r in load.responses if r.started >= down_from and r.started + r.seconds <= down_until]
        if not any(r.status == "503" for r in outage):
            phase.failures.append("no 503 from the API while the database was down")
        if any(r.status not in ("503",) for r in outage):
            phase.failures.append(f"API statuses while the database was down: {Counter(r.status for r in outage)}")
        if not readyz[503]:
            phase.failures.append("/readyz never answered 503 while the database was down")
        late = [r for r in load.responses if r.started > phase.fault_end + 10 and r.status == "503"]
        if late:
            phase.failures.append(f"{len(late)} 503s more than 10 s after the database came back")


def check_processes(stack: Stack, phase: Phase, pids_before: dict) -> list:
    """Failures for processes that died, were restarted or keep failing after the fault;
    returns the ones still running that keep failing."""
    dead = stack.dead()
    for child in dead:
        tail = child.log_path.read_text(errors="replace").splitlines()[-5:]
        phase.failures.append(f"{child.name} (pid {child.pid}) exited with {child.process.returncode}: {tail}")
    changed = [c.name for c in stack.children() if c.name != phase.restarted and pids_before.get(c.name) != c.pid]
    if changed:
        phase.failures.append(f"processes restarted: {changed}")
    failing = []
    for child in (*stack.workers, stack.beat):
        findings = child.log_lines(CRASH_LINES)
        during = findings[phase.crash_lines_at_start[child.name] : phase.crash_lines_at_recovery[child.name]]
        after = findings[phase.crash_lines_at_recovery[child.name] :]
        if during:
            phase.notes.append(f"{child.name} log during the fault: {len(during)} lines like {during[0].strip()[:200]}")
        if after:
            phase.failures.append(f"{child.name} log after recovery: {len(after)} lines like {after[0].strip()[:300]}")
            failing.append(child)
    return failing


# Lines of a worker's or beat's log that say it crashed or could not schedule.
CRASH_LINES = r"CRITICAL|Unrecoverable|SchedulingError"


def run_phase(stack: Stack, load: Load, probe: ReadyzProbe, name: str, fault) -> Phase:
    from conferences.models import Event

    phase = Phase(name)
    phase.first_event_id = _db(lambda: Event.objects.order_by("-id").values_list("id", flat=True).first() or 0)
    pids_before = {c.name: c.pid for c in stack.children()}
    phase.crash_lines_at_start = {c.name: len(c.log_lines(CRASH_LINES)) for c in (*stack.workers, stack.beat)}
    load.responses = []
    phase.started = time.time()
    load.start()
    time.sleep(LOAD_BEFORE_SECONDS)
    print(f"faults: {name}: fault begins", flush=True)
    phase.fault_start = time.time()
    fault(stack, phase)
    phase.fault_end = time.time()
    print(f"faults: {name}: fault over after {phase.fault_end - phase.fault_start:.0f} s", flush=True)
    time.sleep(LOAD_BEFORE_SECONDS)
    phase.crash_lines_at_recovery = {c.name: len(c.log_lines(CRASH_LINES)) for c in (*stack.workers, stack.beat)}
    load.stop()
    load_end = time.time()
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        try:
            done, moving = _db(lambda: settled(stack))
        except Exception as exc:  # the database may still be coming back
            done, moving = False, f"{type(exc).__name__}: {exc}"
        if done or time.monotonic() > deadline or stack.dead():
            break
        time.sleep(1)
    phase.row["settle"] = f"{time.time() - load_end:.0f}s"
    if not done:
        phase.failures.append(
            f"not settled when the checks ran (processes died, or {SETTLE_TIMEOUT_SECONDS} s passed): {moving}"
        )
    engine = stack.engine_state()
    disagreements = _db(lambda: member_disagreements(engine))
    phase.row["engine"] = f"{len(disagreements)} differ" if disagreements else "agrees"
    if disagreements:
        phase.failures.append(f"members the engine disagrees on: {disagreements[:3]}")
    phase.row["seconds"] = f"{phase.fault_end - phase.fault_start:.0f}"
    check_responses(load, probe, phase)
    _db(lambda: check_events(stack, phase))
    # What died or keeps failing is started again, so that the next faults test only themselves.
    for child in check_processes(stack, phase, pids_before):
        child.stop()
    for child in stack.restart_dead():
        phase.notes.append(f"{child.name} started again (pid {child.pid}) so that the next faults can run")
    phase.row["result"] = "FAIL" if phase.failures else "PASS"
    return phase


COLUMNS = [
    ("fault", "name", 31),
    ("secs", "seconds", 5),
    ("reqs", "requests", 5),
    ("statuses", "statuses", 42),
    ("max lat", "max_latency", 8),
    ("events", "events", 7),
    ("deliv", "delivered", 6),
    ("lost", "lost", 5),
    ("ooo", "out_of_order", 4),
    ("dup same/new", "duplicates", 12),
    ("terminal", "terminal", 11),
    ("engine", "engine", 9),
    ("drain", "drain", 7),
    ("settle", "settle", 7),
    ("result", "result", 6),
]


def print_table(phases: list[Phase], broker: str, total: float) -> None:
    print(f"\nmake faults, broker {broker}{' (FAULTS_QUICK)' if QUICK else ''}: {total:.0f} s in all\n")
    print("  ".join(title.ljust(width) for title, _, width in COLUMNS))
    for phase in phases:
        values = {"name": phase.name, **phase.row}
        print("  ".join(str(values.get(key, "-")).ljust(width) for _, key, width in COLUMNS))
    print(
        "\nreqs/statuses: the API's answers to the load over the whole phase; max lat: the slowest"
        " API answer started during the fault; dup same/new: extra deliveries under the same webhook-id / events"
        " told again under a new id; terminal: plays with exactly one terminal event; drain: from the fault's end"
        " until the last event written before it arrived; settle: from the load's end until nothing was pending"
        " and the engine agreed.\n"
    )
    for phase in phases:
        for line in phase.notes:
            print(f"  {phase.name}: {line}")
        for line in phase.failures:
            print(f"  {phase.name}: FAIL: {line}")


def main() -> int:
    started = time.monotonic()
    missing = Stack.missing(BROKER)
    if missing:
        print(f"\n*** make faults SKIPPED for broker {BROKER}: {missing} ***\n", flush=True)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix=f"faults-{BROKER}-"))
    print(f"faults: broker {BROKER}, logs in {workdir}", flush=True)
    phases = []
    with Stack(
        workdir,
        broker=BROKER,
        database_name="conference_faults",
        workers=WORKER_ENV,
        env=STACK_ENV,
        web=[{"LOG_LEVEL": "WARNING"}],
    ) as stack:
        os.environ["DATABASE_URL"] = stack.database_url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
        import django

        django.setup()
        apps = [stack.create_app(app_id) for app_id in ("faults-a", "faults-b")]
        load = Load(stack.web_urls[0], stack.engine_url, apps)
        probe = ReadyzProbe(stack.web_urls[0])
        try:
            for name, fault in FAULTS:
                phases.append(run_phase(stack, load, probe, name, fault))
                print(f"faults: {name}: {phases[-1].row['result']}", flush=True)
        finally:
            load.stopping.set()
            probe.stop()
    print_table(phases, BROKER, time.monotonic() - started)
    failed = any(phase.failures for phase in phases)
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs kept in {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
