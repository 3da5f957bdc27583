"""Throwaway worlds to benchmark in, and the servers run in them.

A world is one run mode with a database of its own: the embedded default (a
SQLite file in a temporary SPARECYCLES_VAR_DIR, the in-memory channel layer,
one daphne) or scale-out (a fresh database on a running PostgreSQL, a Redis
key prefix of its own, `manage.py serve --workers N`). The chaos tests mix them
(SQLite with Redis, PostgreSQL without). Closing a world stops nothing it did
not start and drops only what it created.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sparecycles import secret_key

from . import procs

REPO = Path(__file__).resolve().parents[2]
EMBEDDED, SCALE_OUT = "embedded", "scale-out"
START_TIMEOUT_S = 60.0
# A load run from one address: the per-address abuse limits and the trust ramp would
# otherwise throttle the swarm, not measure the server.
LOAD_ENV = {
    "SPARECYCLES_MAX_CONNECTIONS_PER_IP": "0", "SPARECYCLES_CONNECTIONS_PER_IP_PER_MIN": "0",
    "SPARECYCLES_FRAMES_PER_S": "0", "SPARECYCLES_RESULTS_PER_S": "0",
    "SPARECYCLES_DAILY_QUOTA_START": "1000000", "SPARECYCLES_DAILY_QUOTA": "1000000",
    "SPARECYCLES_RETRY_AFTER_S": "1", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
}
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(Exception):
    """The benchmark could not set something up; the message says what and what to do."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with _no_proxy.open(f"{url}/healthz", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "DJANGO_ALLOW_ASYNC_UNSAFE")
           and not k.startswith("SPARECYCLES_")}
    env.update(LOAD_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "platform"), str(REPO)])
    env["DJANGO_SETTINGS_MODULE"] = "sparecycles.settings"
    return env


def _postgres_admin(url: str):
    import psycopg

    parsed = urllib.parse.urlsplit(url)
    admin = parsed._replace(path="/postgres", query="").geturl().replace("postgres://",
                                                                         "postgresql://", 1)
    try:
        return psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise BenchError(f"Cannot reach PostgreSQL at {parsed.hostname}:{parsed.port or 5432} "
                         f"({str(exc).strip()}); start it or pass --postgres-url.") from None


@dataclass
class World:
    workdir: Path
    env: dict[str, str]
    database: str  # what to print: a path or a database name
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    db_pids: Callable[[], list[int]] = lambda: []  # the database server's processes serving us

    @property
    def mode(self) -> str:
        """Scale-out as soon as there is a Redis channel layer (several processes can share it)."""
        return SCALE_OUT if self.env.get("REDIS_URL") else EMBEDDED

    @property
    def database_url(self) -> str:
        return self.env.get("DATABASE_URL") or f"sqlite:///{self.workdir}/sparecycles.sqlite3"

    def pending_results(self) -> int:
        """Results stored but not yet looked at by validation (`Replica.pending`): the
        validation a window owes. One cheap query on a connection of our own."""
        from sparecycles.scheduler.models import Replica

        table = Replica._meta.db_table
        if self.env.get("DATABASE_URL"):
            import psycopg

            url = self.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as db:
                return db.execute(f'SELECT count(*) FROM "{table}" WHERE pending').fetchone()[0]
        import sqlite3

        with contextlib.closing(sqlite3.connect(
                f"file:{self.workdir / 'sparecycles.sqlite3'}?mode=ro", uri=True,
                timeout=30)) as db:
            return db.execute(f'SELECT count(*) FROM "{table}" WHERE pending').fetchone()[0]

    def worker(self, action: str, *args: str, timeout: float = 600) -> dict:
        """Run one `tools.bench.worker` job against this world's database."""
        done = subprocess.run([sys.executable, "-m", "tools.bench.worker", action, *args],
                              cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise BenchError(f"bench worker {action} failed ({done.returncode}):\n"
                             f"{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def manage(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise BenchError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stderr[-4000:]}")
        return done.stdout

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep cleaning up; say what was left behind
                print(f"bench: cleanup of the {self.mode} world failed: {exc}", file=sys.stderr)
        self.cleanups.clear()


def world_create(*, tag: str, postgres_url: str = "", redis_url: str = "",
                 env: dict[str, str] | None = None) -> World:
    """A migrated, empty world: SQLite unless `postgres_url` (a server, on which a database
    of our own is made), the in-memory channel layer unless `redis_url` (a key prefix of our
    own). `env` adds settings for every process of the world."""
    workdir = Path(tempfile.mkdtemp(prefix=f"sparecycles-bench-{tag}-"))
    world_env = _base_env()
    world_env["SPARECYCLES_VAR_DIR"] = str(workdir)
    world_env.update(env or {})
    world_env = secret_key.development_key_environ(world_env, workdir)  # unless one is set
    world = World(workdir=workdir, env=world_env,
                  database=str(workdir / "sparecycles.sqlite3"))
    world.cleanups.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        if postgres_url:
            _postgres(world, tag=tag, postgres_url=postgres_url)
        if redis_url:
            _redis(world, tag=tag, redis_url=redis_url)
        world.manage("migrate", "--noinput", "-v0")
    except BaseException:
        world.close()
        raise
    return world


def _postgres(world: World, *, tag: str, postgres_url: str) -> None:
    import psycopg

    name = f"bench_{tag}".replace("-", "_")[:63]
    with _postgres_admin(postgres_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        # A connection of its own: the server may have restarted since (the chaos tests).
        with _postgres_admin(postgres_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    world.cleanups.append(drop)
    parsed = urllib.parse.urlsplit(postgres_url)
    world.env["DATABASE_URL"] = parsed._replace(path=f"/{name}", query="").geturl()
    world.database = f"PostgreSQL database {name}"

    watcher: list = []

    def backends() -> list[int]:
        """The server processes serving our database (for their CPU time)."""
        try:
            if not watcher or watcher[0].closed:
                watcher[:] = [_postgres_admin(postgres_url)]
            rows = watcher[0].execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                      [name]).fetchall()
        except psycopg.Error:
            watcher.clear()
            return []
        return [row[0] for row in rows]

    world.db_pids = backends
    world.cleanups.append(lambda: [each.close() for each in watcher])


def _redis(world: World, *, tag: str, redis_url: str) -> None:
    import redis

    prefix = f"bench-{tag}"
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Cannot reach Redis at {redis_url} ({exc}); start it or pass "
                         f"--redis-url.") from None

    def forget_keys() -> None:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
        client.close()

    world.cleanups.append(forget_keys)
    world.env.update({"REDIS_URL": redis_url, "REDIS_PREFIX": prefix})


# --- servers --------------------------------------------------------------------------------

PRODUCT_APP = "sparecycles.asgi:application"
DAPHNE_FLAGS = ["--websocket-max-message-size", "1048576"]


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    supervised: bool  # the process is a supervisor; the serving processes are its children
    listener: socket.socket | None = None  # held for daphnes sharing a socket we bound

    def pids(self) -> list[int]:
        """Every process doing the serving: the daphne(s), and under `serve` housekeeping
        too (not the supervisor, which only watches them)."""
        if not self.supervised:
            return [self.process.pid]
        return procs.children(self.process.pid)

    def daphne_pids(self) -> list[int]:
        return [pid for pid in self.pids()
                if any(name in procs.cmdline(pid) for name in ("daphne", "uvicorn"))]

    def usage(self) -> procs.Usage:
        return procs.total(self.pids())

    def daphne_usage(self) -> procs.Usage:
        return procs.total(self.daphne_pids())

    def validation_cpu_s(self) -> float | None:
        """CPU-seconds of the processes that validate, where they are not the sockets'
        (under `serve`: the validator and housekeeping); None where the web process
        validates in a thread of its own (embedded)."""
        if not self.supervised:
            return None
        daphne = set(self.daphne_pids())
        return procs.total([pid for pid in self.pids() if pid not in daphne]).cpu_s

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the (single) server process, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.listener is not None:
            self.listener.close()


def _wait_ready(server: Server, *, workers: int) -> Server:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        if healthy(server.url) and len(server.daphne_pids()) >= workers:
            if workers > 1:
                time.sleep(3)  # the other workers are still importing Django
            return server
        time.sleep(0.2)
    server.stop()
    raise BenchError(f"The server did not come up on port {server.port}. "
                     f"Its log:\n{server.log_tail()}")


def server_start(world: World, *, workers: int = 1, app: str = PRODUCT_APP,
                 port: int | None = None, env: dict[str, str] | None = None,
                 asgi_server: str = "daphne") -> Server:
    """`workers` daphne processes serving `world` (the product, or another ASGI `app`, e.g.
    the echo baseline); `port` to restart a server where its clients expect it.

    One worker is a plain daphne. Several run the product's own scale-out path,
    `manage.py serve --workers N` (one shared socket, plus housekeeping), which needs
    the world's Redis; another app gets the same shape from a small supervisor here.
    """
    port = port or free_port()
    log_path = world.workdir / f"server-{port}-{time.monotonic_ns()}.log"
    listener = None
    if workers == 1:
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                   *DAPHNE_FLAGS, app]
    elif app == PRODUCT_APP:
        if world.mode != SCALE_OUT:
            raise BenchError("Several workers need a Redis channel layer (redis_url).")
        command = [sys.executable, "manage.py", "serve", "--workers", str(workers),
                   "--port", str(port), "--server", asgi_server]
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(4096)
        listener.set_inheritable(True)
        command = [sys.executable, "-c", _SUPERVISOR, str(workers), str(listener.fileno()), app]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env={**world.env, **(env or {})},
                                   stdout=log,
                                   stderr=subprocess.STDOUT,
                                   pass_fds=[listener.fileno()] if listener else ())
    server = Server(url=f"http://127.0.0.1:{port}", port=port, process=process,
                    log_path=log_path, supervised=workers > 1, listener=listener)
    return _wait_ready(server, workers=workers)


# N daphne children on an inherited socket; SIGTERM stops them all (the echo baseline).
_SUPERVISOR = """
import signal, subprocess, sys
workers, fd, app = int(sys.argv[1]), sys.argv[2], sys.argv[3]
children = [subprocess.Popen([sys.executable, "-m", "daphne", "--fd", fd,
            "--websocket-max-message-size", "1048576", app], pass_fds=[int(fd)])
            for _ in range(workers)]
signal.signal(signal.SIGTERM, lambda *_: [c.terminate() for c in children])
for child in children:
    child.wait()
"""
