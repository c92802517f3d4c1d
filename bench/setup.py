"""A fresh benchmark database next to DATABASE_URL's, and Django pointed at it."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "conference_bench"


def use_fresh_database() -> str:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    admin_url = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    bench_url = urlunsplit(url._replace(path=f"/{BENCH_DB}"))
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ["WEBHOOK_ALLOW_PRIVATE"] = "1"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    return bench_url


def start_worker(concurrency: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=threads",
         f"--concurrency={concurrency}", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel=WARNING"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
    )
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
