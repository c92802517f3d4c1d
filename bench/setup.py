"""Benchmark databases next to DATABASE_URL's, and Django pointed at them.

`conference_bench` is made afresh for every run; a bench that needs a large data set (the
admin bench) keeps its own database between runs, marked with what it was built for.
"""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "conference_bench"
# In a kept database: one row saying what the data was built for (not a migrated table).
MARKER_TABLE = "bench_marker"


def _url(path: str) -> str:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    return urlunsplit(url._replace(path=path))


def use_fresh_database() -> str:
    with psycopg.connect(_url("/postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    bench_url = _url(f"/{BENCH_DB}")
    point_django_at(bench_url)
    return bench_url


def use_kept_database(name: str, fingerprint: str) -> bool:
    """Django pointed at database `name` (beside DATABASE_URL's), kept between runs: reused when
    its marker says it was built for `fingerprint`, otherwise made afresh. Returns whether it was
    reused; a fresh one is migrated and empty, for the caller to fill and then `mark_built`."""
    kept_url = _url(f"/{name}")
    with psycopg.connect(_url("/postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
    reused = exists and _marker(kept_url) == fingerprint
    if not reused:
        with psycopg.connect(_url("/postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    point_django_at(kept_url)
    return reused


def mark_built(fingerprint: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (fingerprint text NOT NULL)")
        cursor.execute(f"DELETE FROM {MARKER_TABLE}")
        cursor.execute(f"INSERT INTO {MARKER_TABLE} (fingerprint) VALUES (%s)", [fingerprint])


def _marker(url: str) -> str | None:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(f"SELECT fingerprint FROM {MARKER_TABLE}").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return row[0] if row else None


def point_django_at(url: str) -> None:
    """Migrate the database at `url` and point Django (and the processes started from now on) at it."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ["WEBHOOK_ALLOW_PRIVATE"] = "1"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
        return
    # An earlier bench of this run set Django up on another database: switch its connection.
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = urlsplit(url).path.lstrip("/")


def start_worker(concurrency: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "project",
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
