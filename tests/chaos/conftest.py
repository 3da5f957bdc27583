"""Throwaway Redis and PostgreSQL servers on spare ports, for tests that kill or restart them.

Never the machine's shared services: those stay up for the rest of CI. Each
fixture skips its test, saying what is missing, when the server binaries (or,
as root, the `postgres` user PostgreSQL must run as) are not there.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.bench.servers import free_port

START_TIMEOUT_S = 30.0


@dataclass
class RedisServer:
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "redis.pid"

    def _ping(self) -> bool:
        done = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True, timeout=5)
        return done.stdout.strip() == "PONG"

    def start(self) -> None:
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--daemonize", "yes",
                        "--pidfile", str(self.pidfile), "--dir", str(self.workdir),
                        "--logfile", str(self.workdir / "redis.log")], check=True, timeout=10)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ping():
            assert time.monotonic() < deadline, "the throwaway Redis did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (no save: it has nothing to save) and wait until it is gone."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, *, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture
def redis_server(tmp_path_factory):
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server and redis-cli are needed to restart a throwaway Redis "
                    "(apt-get install redis-server).")
    server = RedisServer(port=free_port(), workdir=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian 12 and 13 differ: look it up)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()])
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path  # owned by the server's user
    port: int
    as_postgres: bool  # we are root: run the server as the postgres user

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (f"{' '.join(args[:2])} failed:\n{done.stdout}\n"
                                      f"{done.stderr}\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def init(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        # fsync off: a throwaway cluster needs no durability against power loss; a killed
        # server process still loses nothing it committed.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                   f"-c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", str(int(START_TIMEOUT_S)), "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def restart(self, *, down_s: float = 1.0) -> None:
        """Stop it the hard way (immediate: no checkpoint, clients cut off), then start it."""
        self.stop("immediate")
        time.sleep(down_s)
        self.start()


@pytest.fixture
def postgres_cluster():
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        pytest.skip("PostgreSQL's initdb and pg_ctl are needed for a throwaway cluster "
                    "(apt-get install postgresql).")
    as_postgres = os.geteuid() == 0
    if as_postgres:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("Running as root, PostgreSQL needs a 'postgres' user to run as.")
        if not shutil.which("runuser"):
            pytest.skip("Running as root, runuser is needed to start PostgreSQL as postgres.")
    root = Path(tempfile.mkdtemp(prefix="sparecycles-chaos-pg-"))
    if as_postgres:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = PostgresCluster(bindir=bindir, root=root, port=free_port(), as_postgres=as_postgres)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
