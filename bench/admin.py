"""The admin at scale: every support page timed over a production-sized history.

- data, built once in bulk SQL (INSERT ... SELECT generate_series) into its own database,
  `conference_bench_admin`, and kept between runs (a marker names the sizes, the build and the
  migrations it was built for; anything else rebuilds it): 20 apps, 100,000 rooms (5,000 live,
  750 of them playing or paused), 150,000 sessions with ~194,000 memberships, 1,005,000 events,
  ~1,080,000 deliveries (mostly delivered, 1.6% failed, a few pending) with ~1,280,000
  attempts, 1,005,000 history entries and 60,000 engine commands; then VACUUM ANALYZE, so
  autovacuum does not run during the timings. BENCH_ADMIN_SCALE=0.1 builds a tenth of it.
- pages, through django.test.Client in this process for a superuser and a member of the
  `support` group: every conferences changelist registered in the admin, searches and filters
  support uses, a busy room's change page and the timelines; one warm-up, then the median of 3,
  with the number of queries. Pages at 1 s or more, or not 200, are flagged; a 5xx fails the run.
"""

import hashlib
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from .setup import BENCH_DB, ROOT, mark_built, use_kept_database

ADMIN_DB = f"{BENCH_DB}_admin"
RUNS = 3
SLOW_MS = 1000
STATEMENT_TIMEOUT_MS = 60_000  # bounds every query of a page
WARM_BUDGET_S = 20  # a page slower than this to warm is timed once, not RUNS more times
SUPERUSER, SUPPORT_USER, SUPPORT_GROUP = "bench-admin", "bench-support", "support"

APP_IDS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "aperture",
    "gringotts",
    "oscorp",
    "vandelay",
    "dunder",
    "pied-piper",
    "monarch",
    "massive",
    "nakatomi",
)
NODES = ("k3v9q", "p7x2m", "z1b4n", "h8c5t", "w2r6d")


@dataclass(frozen=True)
class Sizes:
    rooms: int  # room ids 1..rooms, oldest first; the newest `live` are live, the rest destroyed
    live: int
    sessions: int  # the newest `active` are active, 4 per live room; the others ended
    active: int
    busy_members: int  # extra past stays in the busy room (the oldest live room)
    busy_events: int  # extra events and history entries of the busy room
    pending: int  # the newest deliveries, still pending
    engine_rooms: int  # the newest rooms have 3 engine commands each

    @classmethod
    def at(cls, scale: float) -> "Sizes":
        rooms = max(400, round(100_000 * scale / 400) * 400)
        live = max(20, round(rooms * 0.05 / 20) * 20)  # rooms - live stays a multiple of the 20 apps
        return cls(
            rooms=rooms,
            live=live,
            sessions=rooms * 3 // 2,
            active=4 * live,
            busy_members=max(10, round(500 * scale)),
            busy_events=max(100, round(5000 * scale)),
            pending=max(10, round(500 * scale)),
            engine_rooms=max(20, round(20_000 * scale)),
        )


# --- SQL expressions shared by the statements below ----------------------------------------

_NODES = "ARRAY[" + ",".join(f"'{node}'" for node in NODES) + "]"
_APPS = "ARRAY[" + ",".join(f"'{app_id}'" for app_id in APP_IDS) + "]"


def node(x: str) -> str:
    return f"({_NODES})[1 + mod({x}, 5)]"


def room_id(r: str) -> str:
    return f"({node(r)} || '-room-' || md5('room' || {r})::uuid)"


def session_uuid(i: str) -> str:
    return f"({node(i)} || '-' || md5('session' || {i})::uuid)"


def caller_id(i: str) -> str:
    return f"('+1555' || lpad(mod({i}, 10000000)::text, 7, '0'))"


def app_pk(r: str) -> str:
    return f"(1 + mod({r}, {len(APP_IDS)}))"


def app_id(r: str) -> str:
    return f"({_APPS})[1 + mod({r}, {len(APP_IDS)})]"


def created(r: str) -> str:
    """Rooms are created over 90 days, oldest first; the newest an hour ago."""
    return f"(%(t0)s::timestamptz + {r} * %(step)s * interval '1 second')"


def urls(r: str) -> str:
    return f"jsonb_build_array('https://media.example.com/' || {app_id(r)} || '/hold-' || mod({r}, 7) || '.mp3')"


def playback(r: str) -> str:
    return (
        f"CASE WHEN {r} > %(dead)s AND mod({r}, 10) = 0 THEN 'playing' "
        f"WHEN {r} > %(dead)s AND mod({r}, 20) = 5 THEN 'paused' ELSE 'stopped' END"
    )


def primary_room(i: str) -> str:
    """Where session i is (active) or was last (ended): an ended session in a destroyed room,
    an active one in a live room (4 per room)."""
    return (
        f"CASE WHEN {i} <= %(ended)s THEN 1 + mod({i} - 1, %(dead)s) "
        f"ELSE %(dead)s + 1 + mod({i} - %(ended)s - 1, %(live)s) END"
    )


def room_session(r: str) -> str:
    """A session that is (or was) in room r: the first whose primary room it is."""
    return f"CASE WHEN {r} <= %(dead)s THEN {r} ELSE %(ended)s + {r} - %(dead)s END"


def busy_session(j: str) -> str:
    """The j-th ended session of the busy room's app (an ended session's app is its room's)."""
    return f"(mod(%(busy)s - 1, {len(APP_IDS)}) + 1 + {len(APP_IDS)} * {j})"


def member_payload(t: str, su: str, rid: str, cid: str, reason: str) -> str:
    return (
        f"CASE WHEN {t} = 'conference.member.left' THEN jsonb_build_object('event', {t}, 'session_uuid', {su}, "
        f"'room_id', {rid}, 'reason', {reason}, 'caller_id', {cid}) "
        f"ELSE jsonb_build_object('event', {t}, 'session_uuid', {su}, 'room_id', {rid}, 'caller_id', {cid}) END"
    )


REASONS = "(ARRAY['hangup','removed','orphan'])"

# In order, on one connection: what the lanes below read.
BUILD = [
    (
        "apps",
        f"""
    INSERT INTO conferences_app (app_id, name, enabled, created_at)
    SELECT app_id, initcap(replace(app_id, '-', ' ')) || ' Inc.', n <> 20, %(t0)s::timestamptz - interval '30 days'
    FROM unnest({_APPS}) WITH ORDINALITY AS a (app_id, n) ORDER BY n
    """,
    ),
    (
        "api keys",
        f"""
    INSERT INTO conferences_apikey (app_id, prefix, key_hash, label, created_at, last_used_at, revoked_at)
    SELECT a, 'ck_' || left(md5('key' || a), 8), md5('hash' || a) || md5('hash2' || a), 'production',
           %(t0)s::timestamptz - interval '30 days', %(now)s::timestamptz - interval '1 minute', NULL
    FROM generate_series(1, {len(APP_IDS)}) AS a
    """,
    ),
    (
        "webhook endpoints",
        f"""
    INSERT INTO conferences_webhookendpoint (endpoint_id, app_id, url, description, secret, previous_secret,
        previous_secret_expires_at, event_types, enabled, disabled_reason, created_at, deleted_at)
    SELECT 'ep_' || md5('endpoint' || a || '-' || n), a,
           CASE n WHEN 1 THEN 'https://hooks.' || app || '.example.com/conference-events'
                  ELSE 'https://staging.' || app || '.example.com/hooks' END,
           CASE n WHEN 1 THEN 'Production receiver' ELSE 'Staging: rooms only' END,
           'whsec_' || md5('secret' || a || '-' || n), '', NULL,
           CASE n WHEN 1 THEN '{{}}'::varchar[] ELSE ARRAY['conference.created', 'conference.destroyed']::varchar[] END,
           NOT (n = 1 AND a = 7 OR n = 2 AND mod(a, 4) = 0),
           CASE WHEN n = 1 AND a = 7 THEN 'Disabled by staff' ELSE '' END,
           %(t0)s::timestamptz - interval '29 days',
           CASE WHEN n = 2 AND mod(a, 4) = 0 THEN %(t0)s::timestamptz + interval '45 days' END
    FROM generate_series(1, 2) AS n, generate_series(1, {len(APP_IDS)}) AS a,
         LATERAL (SELECT ({_APPS})[a] AS app) AS x
    WHERE n = 1 OR mod(a, 2) = 0
    ORDER BY n, a
    """,
    ),
    (
        "rooms",
        f"""
    INSERT INTO conferences_room (room_id, app_id, name, node, playback_status, playback_operation_id, playback_urls,
                                  volume, created_at, destroyed_at)
    SELECT {room_id("r")}, {app_pk("r")}, 'room-' || r, {node("r")}, pb,
           CASE WHEN pb <> 'stopped' THEN md5('op' || r)::uuid END,
           CASE WHEN pb <> 'stopped' THEN {urls("r")} ELSE '[]'::jsonb END,
           CASE WHEN mod(r, 7) = 0 THEN mod(r, 20) - 12 ELSE 0 END,
           {created("r")},
           CASE WHEN r <= %(dead)s THEN {created("r")} + (10 + mod(r, 110)) * interval '1 minute' END
    FROM generate_series(1, %(rooms)s) AS r, LATERAL (SELECT {playback("r")} AS pb) AS p
    """,
    ),
    (
        "playback operations",
        f"""
    INSERT INTO conferences_playbackoperation (operation_id, room_id, urls, state, dispatched_at, deadline_at,
                                               remaining_ms, ended_at, error)
    SELECT md5('op' || r)::uuid, r, {urls("r")}, state, at,
           CASE WHEN state = 'playing' THEN %(now)s::timestamptz + interval '1 hour' END,
           CASE WHEN state = 'paused' THEN 45000 END,
           CASE WHEN state NOT IN ('playing', 'paused') THEN at + interval '2 minutes' END,
           CASE WHEN state = 'failed' THEN 'playback_timeout' ELSE '' END
    FROM generate_series(1, %(rooms)s) AS r,
         LATERAL (SELECT {created("r")} + interval '5 minutes' AS at,
                         CASE {playback("r")} WHEN 'stopped' THEN
                             CASE WHEN mod(r, 30) = 0 THEN 'stopped' WHEN mod(r, 100) = 1 THEN 'failed'
                                  ELSE 'finished' END
                         ELSE {playback("r")} END AS state) AS p
    """,
    ),
    (
        "sessions",
        f"""
    INSERT INTO conferences_session (session_uuid, app_id, caller_id, node, state, created_at, last_seen_at, ended_at)
    SELECT {session_uuid("i")}, {app_pk("pr")}, {caller_id("i")}, {node("i")},
           CASE WHEN i > %(ended)s THEN 'active' ELSE 'ended' END,
           {created("pr")} + interval '1 minute',
           CASE WHEN i > %(ended)s THEN %(now)s::timestamptz - mod(i, 20) * interval '1 second'
                ELSE {created("pr")} + interval '9 minutes' END,
           CASE WHEN i <= %(ended)s THEN {created("pr")} + interval '9 minutes' END
    FROM generate_series(1, %(sessions)s) AS i, LATERAL (SELECT {primary_room("i")} AS pr) AS p
    """,
    ),
    # Every session's last stay; the active ones are joined (1 in 50 still joining).
    (
        "members",
        f"""
    INSERT INTO conferences_member (room_id, session_id, state, muted, join_operation_id, join_command_uid,
                                    join_deadline_at, requested_at, joined_at, ended_at, end_reason)
    SELECT pr, i, state, mod(i, 7) = 0, md5('join' || i)::uuid, md5('uid' || i)::uuid::text,
           requested + interval '30 seconds', requested,
           CASE WHEN state <> 'joining' AND state <> 'failed' THEN requested + interval '2 seconds' END,
           CASE WHEN state IN ('left', 'failed') THEN {created("pr")} + interval '9 minutes' END,
           CASE state WHEN 'left' THEN {REASONS}[1 + mod(i, 3)] WHEN 'failed' THEN 'join_timeout' ELSE '' END
    FROM generate_series(1, %(sessions)s) AS i,
         LATERAL (SELECT {primary_room("i")} AS pr,
                         CASE WHEN i > %(ended)s THEN CASE WHEN mod(i, 50) = 0 THEN 'joining' ELSE 'joined' END
                              ELSE CASE WHEN mod(i, 40) = 0 THEN 'failed' ELSE 'left' END END AS state) AS p,
         LATERAL (SELECT CASE WHEN state = 'joining' THEN %(now)s::timestamptz - interval '5 seconds'
                              ELSE {created("pr")} + interval '1 minute' END AS requested) AS q
    """,
    ),
    # An earlier stay of every third ended session, in another room of its app.
    (
        "members (earlier stays)",
        f"""
    INSERT INTO conferences_member (room_id, session_id, state, muted, join_operation_id, join_command_uid,
                                    join_deadline_at, requested_at, joined_at, ended_at, end_reason)
    SELECT r2, i, 'left', false, md5('join2' || i)::uuid, md5('uid2' || i)::uuid::text,
           {created("r2")} + interval '30 seconds', {created("r2")}, {created("r2")} + interval '2 seconds',
           {created("r2")} + interval '5 minutes', 'removed'
    FROM generate_series(3, %(ended)s, 3) AS i,
         LATERAL (SELECT 1 + mod({primary_room("i")} - 1 + {len(APP_IDS)} * (1 + mod(i, 50)), %(dead)s) AS r2) AS p
    """,
    ),
    (
        "members (busy room)",
        f"""
    INSERT INTO conferences_member (room_id, session_id, state, muted, join_operation_id, join_command_uid,
                                    join_deadline_at, requested_at, joined_at, ended_at, end_reason)
    SELECT %(busy)s, i, 'left', mod(j, 5) = 0, md5('joinb' || i)::uuid, md5('uidb' || i)::uuid::text,
           at + interval '30 seconds', at, at + interval '2 seconds', at + interval '40 minutes', 'hangup'
    FROM generate_series(0, %(busy_members)s - 1) AS j,
         LATERAL (SELECT {busy_session("j")} AS i, {created("%(busy)s")} + j * interval '10 seconds' AS at) AS p
    """,
    ),
    ("ANALYZE", "ANALYZE conferences_room, conferences_session, conferences_member"),
]

# Then two lanes at once, one connection each (two cores): events with their deliveries and
# attempts; history and engine commands. Each reads the rooms and sessions made above.
EVENTS_LANE = [
    # Ten per room: created, a member's join (and its command.result, keyed by the session),
    # mute, unmute, a play, then how it ended, the member leaving, the room destroyed; a live
    # room's last two are more joins.
    (
        "events",
        f"""
    INSERT INTO conferences_event (uuid, app_id, event_type, ordering_key, room_id, payload, created_at)
    SELECT md5('event' || g)::uuid, rm.app_id, t,
           CASE WHEN t = 'command.result' THEN se.session_uuid ELSE rm.room_id END,
           CASE WHEN t <> 'command.result' THEN r END,
           CASE
             WHEN t = 'conference.created' THEN
               jsonb_build_object('event', t, 'app_id', app, 'room_id', rm.room_id, 'name', rm.name)
             WHEN t = 'conference.destroyed' THEN jsonb_build_object('event', t, 'app_id', app, 'room_id', rm.room_id)
             WHEN t LIKE 'conference.member.%%' THEN
               {member_payload("t", "se.session_uuid", "rm.room_id", "se.caller_id", f"{REASONS}[1 + mod(r, 3)]")}
             WHEN t = 'command.result' THEN
               jsonb_build_object('event', t, 'operation_id', md5('join' || se.id)::uuid::text,
                                  'command_uid', md5('uid' || se.id)::uuid::text, 'session_uuid', se.session_uuid,
                                  'command', 'conference/join', 'success', true, 'error', NULL::text)
             WHEN t = 'conference.play.started' THEN
               jsonb_build_object('event', t, 'room_id', rm.room_id, 'urls', {urls("r")}, 'operation_id', op)
             WHEN t = 'conference.play.volume_changed' THEN
               jsonb_build_object('event', t, 'room_id', rm.room_id, 'volume', mod(g, 15) - 10,
                                  'operation_id', md5('vol' || g)::uuid::text)
             WHEN t = 'conference.play.finished' THEN
               jsonb_build_object('event', t, 'room_id', rm.room_id, 'operation_id', op, 'urls', {urls("r")})
             WHEN t = 'conference.play.failed' THEN
               jsonb_build_object('event', t, 'room_id', rm.room_id, 'operation_id', op, 'urls', {urls("r")},
                                  'error', 'playback_timeout')
             ELSE jsonb_build_object('event', t, 'room_id', rm.room_id, 'operation_id', op)
           END,
           rm.created_at + k * interval '1 minute' + mod(g, 50) * interval '1 second'
    FROM generate_series(0, 10 * %(rooms)s - 1) AS g
         CROSS JOIN LATERAL (SELECT g / 10 + 1 AS r, mod(g, 10) AS k) AS a
         JOIN conferences_room AS rm ON rm.id = r
         JOIN conferences_session AS se
           ON se.id = {room_session("r")} + CASE WHEN r > %(dead)s AND k >= 8 THEN (k - 7) * %(live)s ELSE 0 END
         CROSS JOIN LATERAL (
             SELECT {app_id("r")} AS app,
                    CASE WHEN k IN (5, 7) THEN md5('op' || r)::uuid::text END AS op,
                    CASE k
                      WHEN 0 THEN 'conference.created'
                      WHEN 1 THEN 'conference.member.joined'
                      WHEN 2 THEN 'command.result'
                      WHEN 3 THEN 'conference.member.muted'
                      WHEN 4 THEN 'conference.member.unmuted'
                      WHEN 5 THEN 'conference.play.started'
                      WHEN 6 THEN 'conference.play.volume_changed'
                      WHEN 7 THEN CASE rm.playback_status WHEN 'playing' THEN 'conference.play.volume_changed'
                                                          WHEN 'paused' THEN 'conference.play.paused'
                                  ELSE CASE WHEN mod(r, 30) = 0 THEN 'conference.play.stopped'
                                            WHEN mod(r, 100) = 1 THEN 'conference.play.failed'
                                            ELSE 'conference.play.finished' END END
                      WHEN 8 THEN CASE WHEN r > %(dead)s THEN 'conference.member.joined'
                                       ELSE 'conference.member.left' END
                      ELSE CASE WHEN r > %(dead)s THEN 'conference.member.joined' ELSE 'conference.destroyed' END
                    END AS t) AS c
    """,
    ),
    (
        "events (busy room)",
        f"""
    INSERT INTO conferences_event (uuid, app_id, event_type, ordering_key, room_id, payload, created_at)
    SELECT md5('busyevent' || g)::uuid, {app_pk("%(busy)s")}, t, rid, %(busy)s,
           {member_payload("t", session_uuid("i"), "rid", caller_id("i"), "'hangup'")},
           {created("%(busy)s")} + interval '10 minutes' + g * interval '20 seconds'
    FROM generate_series(0, %(busy_events)s - 1) AS g,
         LATERAL (SELECT {busy_session("mod(g / 4, %(busy_members)s)")} AS i, {room_id("%(busy)s")} AS rid,
                         (ARRAY['conference.member.joined', 'conference.member.muted', 'conference.member.unmuted',
                                'conference.member.left'])[1 + mod(g, 4)] AS t) AS a
    """,
    ),
    # Every event to its app's first endpoint; room creations and destructions to the second
    # endpoint of even apps (deleted half-way through in apps 4, 8, ...).
    (
        "deliveries",
        f"""
    INSERT INTO conferences_delivery (event_id, endpoint_id, ordering_key, status, attempts, total_attempts,
                                      next_attempt_at, lease_expires_at, created_at, completed_at, last_status_code,
                                      last_error)
    SELECT id, endpoint, ordering_key, status, tries, tries,
           CASE WHEN status = 'pending' AND tries > 0 THEN %(now)s::timestamptz + interval '5 minutes'
                ELSE created_at END,
           NULL, created_at,
           CASE WHEN status <> 'pending' THEN created_at + (tries - 1) * interval '7 minutes' + interval '80 ms' END,
           CASE WHEN status = 'delivered' THEN 200 WHEN tries = 0 THEN NULL WHEN mod(id, 2) = 0 THEN 500
                WHEN status = 'pending' THEN 503 END,
           CASE WHEN status = 'delivered' OR tries = 0 THEN '' WHEN mod(id, 2) = 0 THEN 'HTTP 500'
                WHEN status = 'pending' THEN 'HTTP 503' ELSE 'timeout after 10 s' END
    FROM (
        SELECT e.id, e.ordering_key, e.created_at, ep.endpoint,
               CASE WHEN ep.endpoint <= {len(APP_IDS)} AND e.id > %(events)s - %(pending)s THEN 'pending'
                    WHEN mod(e.id, 61) = 0 THEN 'failed' ELSE 'delivered' END AS status
        FROM conferences_event AS e,
             LATERAL (SELECT e.app_id AS endpoint
                      UNION ALL
                      SELECT {len(APP_IDS)} + e.app_id / 2
                      WHERE mod(e.app_id, 2) = 0 AND e.event_type IN ('conference.created', 'conference.destroyed')
                        AND (mod(e.app_id, 4) <> 0 OR e.created_at < %(t0)s::timestamptz + interval '45 days')) AS ep
        ORDER BY ep.endpoint > {len(APP_IDS)}, e.id
    ) AS d,
    LATERAL (SELECT CASE status WHEN 'failed' THEN 8 WHEN 'pending' THEN mod(id, 2)
                                ELSE CASE WHEN mod(id, 13) = 0 THEN 2 ELSE 1 END END AS tries) AS t
    """,
    ),
    (
        "delivery attempts",
        """
    INSERT INTO conferences_deliveryattempt (delivery_id, number, started_at, duration_ms, status_code,
                                             response_excerpt, error)
    SELECT d.id, n, d.created_at + (n - 1) * interval '7 minutes' + interval '20 ms', 20 + mod(d.id * 7 + n, 250),
           code, CASE WHEN code = 200 THEN '{"ok":true}' WHEN code IS NOT NULL THEN 'upstream error' ELSE '' END,
           CASE WHEN code IS NULL THEN 'timeout after 10 s' ELSE '' END
    FROM conferences_delivery AS d, generate_series(1, d.total_attempts) AS n,
         LATERAL (SELECT CASE WHEN d.status = 'delivered' AND n = d.total_attempts THEN 200
                              WHEN mod(d.id, 2) = 0 THEN 500 WHEN d.status = 'pending' THEN 503 END AS code) AS c
    ORDER BY d.id, n
    """,
    ),
]

HISTORY_LANE = [
    # Ten per room, beside its events: app commands (with their API key), engine reports,
    # system sweeps, some staff; outcomes mostly ok.
    (
        "audit history",
        f"""
    INSERT INTO conferences_auditentry (occurred_at, actor_kind, actor, api_key_prefix, action, app_id, room_id,
                                        session_uuid, operation_id, request, outcome, detail)
    SELECT rm.created_at + k * interval '1 minute' + mod(g, 50) * interval '1 second' - interval '1 second',
           kind, CASE kind WHEN 'app' THEN app WHEN 'engine' THEN rm.node
                           WHEN 'staff' THEN 'support-jo' ELSE 'playback-watchdog' END,
           CASE WHEN kind = 'app' THEN 'ck_' || left(md5('key' || rm.app_id), 8) ELSE '' END,
           action, app,
           CASE WHEN action IN ('session.create', 'conference/join', 'conference/mute') THEN '' ELSE rm.room_id END,
           CASE WHEN action IN ('conference.create', 'conference.destroy') OR action LIKE 'playback.%%' THEN ''
                ELSE se.session_uuid END,
           CASE WHEN action IN ('conference/join', 'member.joined', 'member.end') THEN md5('join' || se.id)::uuid::text
                WHEN action = 'conference/mute' AND mod(r, 50) = 0 THEN ''
                WHEN action = 'conference/mute' THEN md5('mute' || g)::uuid::text
                WHEN action = 'playback.volume' THEN md5('vol' || g)::uuid::text
                WHEN action LIKE 'playback.%%' THEN md5('op' || r)::uuid::text ELSE '' END,
           CASE action
             WHEN 'conference.create' THEN jsonb_build_object('name', rm.name)
             WHEN 'session.create' THEN jsonb_build_object('caller_id', se.caller_id)
             WHEN 'conference/join' THEN jsonb_build_object('room_id', rm.room_id, 'muted', false)
             WHEN 'conference/mute' THEN '{{}}'::jsonb
             WHEN 'playback.play' THEN jsonb_build_object('urls', {urls("r")})
             WHEN 'playback.volume' THEN jsonb_build_object('volume', mod(g, 15) - 10)
           END,
           CASE WHEN action = 'conference/mute' AND mod(r, 50) = 0 THEN 'not_in_conference' ELSE 'ok' END,
           CASE WHEN action = 'member.end' THEN jsonb_build_object('reason', {REASONS}[1 + mod(r, 3)], 'state', 'left')
                WHEN action = 'conference/mute' AND mod(r, 50) = 0 THEN jsonb_build_object('state', 'left') END
    FROM generate_series(0, 10 * %(rooms)s - 1) AS g
         CROSS JOIN LATERAL (SELECT g / 10 + 1 AS r, mod(g, 10) AS k) AS a
         JOIN conferences_room AS rm ON rm.id = r
         JOIN conferences_session AS se
           ON se.id = {room_session("r")} + CASE WHEN r > %(dead)s AND k >= 8 THEN %(live)s ELSE 0 END
         CROSS JOIN LATERAL (
             SELECT {app_id("r")} AS app,
                    CASE k
                      WHEN 0 THEN 'conference.create'
                      WHEN 1 THEN 'session.create'
                      WHEN 2 THEN 'conference/join'
                      WHEN 3 THEN 'member.joined'
                      WHEN 4 THEN 'conference/mute'
                      WHEN 5 THEN 'playback.play'
                      WHEN 6 THEN 'playback.volume'
                      WHEN 7 THEN CASE rm.playback_status WHEN 'playing' THEN 'playback.volume'
                                                          WHEN 'paused' THEN 'playback.pause'
                                  ELSE CASE WHEN mod(r, 30) = 0 THEN 'playback.stop'
                                            WHEN mod(r, 100) = 1 THEN 'playback.timeout'
                                            ELSE 'playback.finished' END END
                      WHEN 8 THEN CASE WHEN r > %(dead)s THEN 'conference/join' ELSE 'member.end' END
                      ELSE CASE WHEN r > %(dead)s THEN 'member.joined' ELSE 'conference.destroy' END
                    END AS action) AS c
         CROSS JOIN LATERAL (
             SELECT CASE WHEN action IN ('session.create', 'member.joined', 'playback.finished') THEN 'engine'
                         WHEN action = 'member.end' AND mod(r, 200) = 0 THEN 'staff'
                         WHEN action = 'member.end' THEN 'engine'
                         WHEN action = 'playback.timeout' THEN 'system'
                         ELSE 'app' END AS kind) AS d
    """,
    ),
    (
        "audit history (busy room)",
        f"""
    INSERT INTO conferences_auditentry (occurred_at, actor_kind, actor, api_key_prefix, action, app_id, room_id,
                                        session_uuid, operation_id, request, outcome, detail)
    SELECT {created("%(busy)s")} + interval '10 minutes' + g * interval '20 seconds',
           CASE WHEN action LIKE 'conference/%%' THEN 'app' ELSE 'engine' END,
           CASE WHEN action LIKE 'conference/%%' THEN {app_id("%(busy)s")} ELSE {node("%(busy)s")} END,
           CASE WHEN action LIKE 'conference/%%' THEN 'ck_' || left(md5('key' || {app_pk("%(busy)s")}), 8) ELSE '' END,
           action, {app_id("%(busy)s")},
           CASE WHEN action LIKE 'conference/%%' THEN '' ELSE {room_id("%(busy)s")} END,
           {session_uuid("i")}, md5('busyop' || g)::uuid::text,
           CASE WHEN action LIKE 'conference/%%' THEN '{{}}'::jsonb END, 'ok',
           CASE WHEN action = 'member.end' THEN '{{"reason": "hangup", "state": "left"}}'::jsonb END
    FROM generate_series(0, %(busy_events)s - 1) AS g,
         LATERAL (SELECT {busy_session("mod(g / 4, %(busy_members)s)")} AS i,
                         (ARRAY['member.joined', 'conference/mute', 'conference/unmute', 'member.end'])[1 + mod(g, 4)]
                         AS action) AS a
    """,
    ),
    # The newest rooms' commands to the engine: a join, a volume change, then the room's
    # destruction (or its play, or a mute); a few failed, the newest few still pending.
    (
        "engine commands",
        f"""
    INSERT INTO conferences_enginecommand (room_id, command, arguments, status, attempts, next_attempt_at, give_up_at,
                                           lease_expires_at, created_at, completed_at, last_error)
    SELECT r, command,
           CASE command
             WHEN 'join' THEN jsonb_build_object('session_uuid', {session_uuid(room_session("r"))}, 'room_id', rid,
                                                 'muted', false,
                                                 'operation_id', md5('join' || ({room_session("r")}))::uuid::text)
             WHEN 'set_volume' THEN jsonb_build_object('room_id', rid, 'volume', mod(r, 8))
             WHEN 'destroy_room' THEN jsonb_build_object('room_id', rid)
             WHEN 'play' THEN jsonb_build_object('room_id', rid, 'operation_id', md5('op' || r)::uuid::text,
                                                 'urls', {urls("r")}, 'volume', 0)
             ELSE jsonb_build_object('session_uuid', {session_uuid(room_session("r"))}, 'room_id', rid)
           END,
           status, CASE WHEN status = 'failed' THEN 5 WHEN status = 'sent' THEN 1 ELSE 0 END,
           at, CASE WHEN command IN ('join', 'play') THEN at + interval '30 seconds' END, NULL, at,
           CASE WHEN status <> 'pending' THEN at + interval '40 ms' END,
           CASE WHEN status = 'failed' THEN 'engine_unavailable: connect error: Connection refused' ELSE '' END
    FROM generate_series(%(rooms)s - %(engine_rooms)s + 1, %(rooms)s) AS r, generate_series(0, 2) AS c,
         LATERAL (SELECT {room_id("r")} AS rid, {created("r")} + c * interval '1 minute' AS at,
                         CASE c WHEN 0 THEN 'join' WHEN 1 THEN 'set_volume'
                                ELSE CASE WHEN r <= %(dead)s THEN 'destroy_room'
                                          WHEN {playback("r")} = 'playing' THEN 'play' ELSE 'mute' END END AS command,
                         CASE WHEN r > %(rooms)s - 10 AND c = 2 THEN 'pending'
                              WHEN mod(r * 3 + c, 101) = 0 THEN 'failed' ELSE 'sent' END AS status) AS x
    ORDER BY r, c
    """,
    ),
]

# Last, once both lanes have committed (a transaction still open elsewhere keeps VACUUM from
# marking pages all-visible), again in two lanes; then once more over the pages still not
# all-visible (an autovacuum or auto-analyze that started during the lanes can leave some).
# Autovacuum then has nothing to do while the pages are timed.
VACUUM_LANES = [
    [
        (
            "VACUUM ANALYZE events and deliveries",
            "VACUUM (ANALYZE) conferences_event, conferences_delivery, conferences_deliveryattempt",
        )
    ],
    [
        (
            "VACUUM ANALYZE the rest",
            "VACUUM (ANALYZE) "
            + ", ".join(
                f"conferences_{name}"
                for name in (
                    "auditentry",
                    "enginecommand",
                    "app",
                    "apikey",
                    "webhookendpoint",
                    "room",
                    "playbackoperation",
                    "session",
                    "member",
                )
            ),
        )
    ],
]

FINAL = [
    (
        "VACUUM what is left",
        "VACUUM "
        + ", ".join(
            f"conferences_{name}"
            for name in (
                "event",
                "delivery",
                "deliveryattempt",
                "auditentry",
                "enginecommand",
                "room",
                "playbackoperation",
                "session",
                "member",
            )
        ),
    )
]

TABLES = (
    "conferences_app",
    "conferences_apikey",
    "conferences_webhookendpoint",
    "conferences_room",
    "conferences_playbackoperation",
    "conferences_session",
    "conferences_member",
    "conferences_event",
    "conferences_delivery",
    "conferences_deliveryattempt",
    "conferences_auditentry",
    "conferences_enginecommand",
)


def parameters(sizes: Sizes, now: datetime) -> dict:
    t0 = now - timedelta(days=90, hours=1)
    dead, ended = sizes.rooms - sizes.live, sizes.sessions - sizes.active
    return {
        **asdict(sizes),
        "now": now,
        "t0": t0,
        "step": 90 * 86400 / sizes.rooms,
        "dead": dead,
        "ended": ended,
        "busy": dead + 1,
        "events": 10 * sizes.rooms + sizes.busy_events,
    }


def fingerprint(sizes: Sizes) -> str:
    """The sizes, the build statements and the migrations the data was built for."""
    statements = (BUILD, EVENTS_LANE, HISTORY_LANE, VACUUM_LANES, FINAL)
    digest = hashlib.sha256(repr((sorted(asdict(sizes).items()), statements)).encode())
    for path in sorted((ROOT / "conferences" / "migrations").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run(statements, params: dict) -> None:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            # Session settings only: commits need not wait for the WAL flush; joins hash in memory.
            cursor.execute("SET synchronous_commit = off")
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for name, sql in statements:
                begin = time.perf_counter()
                cursor.execute(sql, params)
                rows = f"{cursor.rowcount:>10,} rows" if cursor.rowcount >= 0 else ""
                print(f"  {name:<38} {rows:>15} {time.perf_counter() - begin:6.1f} s", flush=True)
    finally:
        connection.close()


def build(sizes: Sizes) -> None:
    from django.db import connection

    params = parameters(sizes, datetime.now(UTC))
    started = time.perf_counter()
    run(BUILD, params)
    for lanes in ((EVENTS_LANE, HISTORY_LANE), VACUUM_LANES):
        with ThreadPoolExecutor(max_workers=2) as pool:
            for lane in [pool.submit(run, lane, params) for lane in lanes]:
                lane.result()
    run(FINAL, params)
    with connection.cursor() as cursor:
        # Ids are positions (room r is row r, session i row i, endpoint of app a row a, the
        # events of room r rows 10r-9 .. 10r): the build counts on it, so check.
        for table, expected in (
            ("conferences_app", len(APP_IDS)),
            ("conferences_room", sizes.rooms),
            ("conferences_session", sizes.sessions),
            ("conferences_webhookendpoint", len(APP_IDS) + len(APP_IDS) // 2),
            ("conferences_event", params["events"]),
        ):
            cursor.execute(f"SELECT min(id), max(id), count(*) FROM {table}")
            if cursor.fetchone() != (1, expected, expected):
                raise RuntimeError(f"{table}: ids are not 1..{expected}; the build needs a fresh database")
        cursor.execute(
            "SELECT count(*) FROM conferences_event WHERE id <= %s AND room_id <> (id - 1) / 10 + 1", [10 * sizes.rooms]
        )
        if cursor.fetchone()[0]:
            raise RuntimeError("events are not in room order")
    print(f"  built in {time.perf_counter() - started:.0f} s")


# --- the pages ------------------------------------------------------------------------------


@dataclass
class Timing:
    status: int | str
    ms: float
    queries: int
    error: str = ""


def users():
    """A superuser and a member of the `support` group (made by a data migration)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    User = get_user_model()
    superuser, _ = User.objects.get_or_create(username=SUPERUSER, defaults={"is_staff": True, "is_superuser": True})
    support, _ = User.objects.get_or_create(username=SUPPORT_USER, defaults={"is_staff": True})
    group = Group.objects.filter(name=SUPPORT_GROUP).first()
    if group is None:
        group = Group.objects.create(name=SUPPORT_GROUP)
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label__in=["conferences", "django_celery_beat"], codename__startswith="view_"
            )
        )
        print(f"  note: no '{SUPPORT_GROUP}' group in the migrations; made one here with the view permissions")
    support.groups.add(group)
    return superuser, support


def time_page(client, url: str) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get() -> Timing:
        with CaptureQueriesContext(connection) as queries:
            begin = time.perf_counter()
            try:
                status, error = client.get(url).status_code, ""
            except Exception as exc:  # the test client re-raises what the view raised
                status, error = 500, f"{type(exc).__name__}: {exc}"
            ms = (time.perf_counter() - begin) * 1000
        return Timing(status, ms, len(queries), error)

    warm = get()
    if warm.error or warm.ms > WARM_BUDGET_S * 1000:
        return warm  # timed once
    samples = [get() for _ in range(RUNS)]
    return Timing(
        samples[-1].status,
        statistics.median(s.ms for s in samples),
        samples[-1].queries,
        next((s.error for s in samples if s.error), ""),
    )


def filter_query(response, alternatives) -> str | None:
    """The query string of the first changelist filter choice that matches: each alternative is
    (choice names, words) where a choice's display is one of the names, in a filter whose field,
    parameter or title mentions one of the words (any filter when there are no words)."""
    changelist = (getattr(response, "context_data", None) or {}).get("cl")
    if changelist is None:
        return None
    for choice_names, spec_words in alternatives:
        for spec in changelist.filter_specs:
            about = " ".join(str(getattr(spec, attr, "") or "") for attr in ("field_path", "parameter_name", "title"))
            if spec_words and not any(word in about.lower() for word in spec_words):
                continue
            for choice in spec.choices(changelist):
                if str(choice.get("display", "")).strip().lower() in choice_names:
                    return choice["query_string"]
    return None


def pages(sizes: Sizes, superuser_client) -> list[tuple[str, str | None, str]]:
    """(label, url or None, why not) for every page to time."""
    from urllib.parse import urlencode

    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    from conferences.models import CallSession, Room

    params = parameters(sizes, datetime.now(UTC))
    busy = Room.objects.get(pk=params["busy"])
    searched_room = Room.objects.get(pk=params["dead"] // 2)  # a destroyed room, mid-history
    active_session = CallSession.objects.get(pk=params["ended"] + 1)  # a member of the busy room
    timeline_session = CallSession.objects.get(pk=(params["busy"] - 1) % len(APP_IDS) + 1)  # many stays and events
    registered = {
        model._meta.model_name: model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "conferences"
    }
    changelists = {name: reverse(f"admin:conferences_{name}_changelist") for name in sorted(registered)}
    result: list[tuple[str, str | None, str]] = [(f"{name} list", url, "") for name, url in changelists.items()]
    result.append(("periodic task list", reverse("admin:django_celery_beat_periodictask_changelist"), ""))

    def search(label: str, model_name: str, q: str) -> None:
        if model_name not in registered:
            result.append((label, None, f"{model_name} is not in the admin"))
        elif not registered[model_name].search_fields:
            result.append((label, None, f"the {model_name} admin has no search"))
        else:
            result.append((label, f"{changelists[model_name]}?{urlencode({'q': q})}", ""))

    def filtered(label: str, model_name: str, *alternatives) -> None:
        if model_name not in registered:
            result.append((label, None, f"{model_name} is not in the admin"))
            return
        query = filter_query(superuser_client.get(changelists[model_name]), alternatives)
        if query is None:
            result.append((label, None, f"no such filter in the {model_name} admin"))
        else:
            result.append((label, changelists[model_name] + query, ""))

    search("rooms by a member's session", "room", active_session.session_uuid)
    filtered("rooms live", "room", (("live",), ()), (("empty",), ("destroyed",)))
    filtered("history by actor kind (staff)", "auditentry", (("staff",), ("actor",)))
    search("history by room_id", "auditentry", searched_room.room_id)
    filtered("deliveries failed", "delivery", (("failed",), ("status",)))
    search("events by room_id", "event", searched_room.room_id)
    for label, name, args in (
        ("busy room change", "admin:conferences_room_change", [busy.pk]),
        ("busy room timeline", "admin:conferences_room_timeline", [busy.pk]),
        ("session timeline", "admin:conferences_callsession_timeline", [timeline_session.pk]),
    ):
        try:
            result.append((label, reverse(name, args=args), ""))
        except NoReverseMatch:
            result.append((label, None, f"no URL {name}"))
    return result


def main() -> None:
    scale = float(os.environ.get("BENCH_ADMIN_SCALE", "1"))
    sizes = Sizes.at(scale)
    mark = fingerprint(sizes)
    print(f"admin at scale (BENCH_ADMIN_SCALE={scale:g}; database {ADMIN_DB})")
    if use_kept_database(ADMIN_DB, mark):
        print("  data: reused the database built earlier for these sizes and migrations")
    else:
        print("  data: building (bulk SQL)", flush=True)
        build(sizes)
        mark_built(mark)

    from django.db import connection, connections
    from django.test import Client

    with connection.cursor() as cursor:
        counts = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table.removeprefix("conferences_")] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    print("  rows: " + ", ".join(f"{name} {count:,}" for name, count in counts.items()) + f"; database {size}")

    superuser, support = users()
    # Every query of a page is bounded; a page that hits the bound is a 5xx below.
    options = connections["default"].settings_dict.setdefault("OPTIONS", {})
    options["options"] = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
    connections.close_all()
    clients = []
    for user in (superuser, support):
        client = Client()
        client.force_login(user)
        clients.append(client)

    rows = []
    for label, url, note in pages(sizes, clients[0]):
        if url is None:
            rows.append((label, None, note))
            continue
        rows.append((label, [time_page(client, url) for client in clients], url))

    print(f"\n  admin pages: median of {RUNS} after a warm-up, in this process (django.test.Client)")
    print(f"  {'page':<32} {'superuser':>22}   {'support':>22}")
    print(f"  {'':<32} {'status':>7} {'ms':>8} {'queries':>7}   {'status':>7} {'ms':>8} {'queries':>7}")
    failures, flags = [], []
    for label, timings, detail in rows:
        if timings is None:
            print(f"  {label:<32} skipped: {detail}")
            continue
        cells = []
        for who, timing in zip(("superuser", "support"), timings, strict=True):
            mark_ = ""
            if isinstance(timing.status, int) and timing.status >= 500:
                failures.append(f"{label} ({who}): {timing.status} {timing.error} {detail}")
                mark_ = "!!"
            elif timing.status != 200 or timing.ms >= SLOW_MS:
                mark_ = "!"
                flags.append(f"{label} ({who}): {timing.status}, {timing.ms:.0f} ms")
            cells.append(f"{timing.status!s:>7} {timing.ms:8.1f} {timing.queries:7d}{mark_:<2}")
        print(f"  {label:<32} " + " ".join(cells))
    print("\n  urls:")
    for label, timings, detail in rows:
        if timings is not None and not label.endswith(" list"):
            print(f"    {label:<32} {detail}")
    if flags:
        print(f"\n  flagged (not 200, or {SLOW_MS} ms or more):")
        for flag in flags:
            print(f"    {flag}")
    if failures:
        print("\n  pages that failed:", file=sys.stderr)
        for failure in failures:
            print(f"    {failure}", file=sys.stderr)
        raise SystemExit(1)
