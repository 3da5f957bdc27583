"""Chaos: a daphne worker killed with SIGKILL, Redis restarted, PostgreSQL restarted — each in
the middle of a swarm run. Afterwards every acknowledged result is stored, no credit or token
was paid twice, every work unit completed, and the ledger verifies.

Each test builds a throwaway world (tools.bench.servers): its own database (a SQLite
file, or a fresh database on PostgreSQL when DATABASE_URL points at one, or on a throwaway
cluster for the PostgreSQL restart), its own Redis prefix or throwaway Redis. Reward epochs
last two seconds there (tests/chaos/fast_epochs.py) and are closed both by housekeeping
(every second) and by a `close_epochs --loop` beside it, so tokens are paid, by two closers
at once, while the faults happen. The volunteers take a little time per task, so the fault
lands mid-run.
"""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.bench.servers import REPO, Server, World, server_start, world_create
from tools.swarm.behaviours import BehaviourOptions
from tools.swarm.runner import Swarm, SwarmConfig, SwarmSummary

UNITS = 120  # at quorum 2: 240 results
VOLUNTEERS = 6
THINK_S = 0.4  # per task, so a run lasts seconds and the fault lands in the middle
FAULT_AT = 0.3  # share of the results acknowledged before the fault
RUN_LIMIT_S = 150.0
EPOCH_S = 2  # tests/chaos/fast_epochs.py
WORLD_ENV = {"DJANGO_SETTINGS_MODULE": "tests.chaos.fast_epochs",
             "SPARECYCLES_HOUSEKEEPING_INTERVAL_S": "1"}

ENV_DATABASE = os.environ.get("DATABASE_URL", "")
ENV_POSTGRES = ENV_DATABASE if ENV_DATABASE.startswith(("postgres://", "postgresql://")) else ""
ENV_REDIS = os.environ.get("REDIS_URL", "")


@contextmanager
def world(tag: str, **kwargs) -> Iterator[World]:
    made = world_create(tag=f"chaos-{os.getpid()}-{tag}", env=WORLD_ENV, **kwargs)
    try:
        yield made
    finally:
        made.close()


@contextmanager
def epoch_closer(grid: World) -> Iterator[subprocess.Popen]:
    """`close_epochs --loop` beside the server (and its housekeeping), for the whole run."""
    log = (grid.workdir / "close_epochs.log").open("wb")
    closer = subprocess.Popen([sys.executable, "manage.py", "close_epochs", "--loop",
                               "--interval", "0.5"], cwd=REPO, env=grid.env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        yield closer
    finally:
        closer.send_signal(signal.SIGTERM)
        try:
            closer.wait(timeout=20)
        except subprocess.TimeoutExpired:
            closer.kill()
            closer.wait()
        log.close()


def open_units(grid: World, batch_id: int) -> Callable[[], bool]:
    """An `until` for the swarm: no open work unit left in the batch (False while the
    database is unreachable, e.g. restarting)."""
    url = urllib.parse.urlsplit(grid.database_url)
    query = "SELECT COUNT(*) FROM projects_workunit WHERE batch_id = %s AND state = 'open'"

    def done() -> bool:
        try:
            if url.scheme == "sqlite":
                with sqlite3.connect(url.path, timeout=5) as db:
                    return db.execute(query.replace("%s", "?"), [batch_id]).fetchone()[0] == 0
            import psycopg

            with psycopg.connect(grid.database_url.replace("postgres://", "postgresql://", 1),
                                 connect_timeout=3) as db:
                return db.execute(query, [batch_id]).fetchone()[0] == 0
        except Exception:
            return False

    return done


def run_with_fault(grid: World, server: Server, fault: Callable[[], None]
                   ) -> tuple[SwarmSummary, Swarm, dict, float]:
    """Load a batch, run the swarm until it is done, injecting `fault` part way through.

    Returns the swarm's summary and runner, the audit, and how far along the run was when
    the fault struck (share of results acknowledged).
    """
    batch_id = grid.worker("work", "--open-units", str(UNITS))["batch_id"]
    runner = Swarm(SwarmConfig(
        url=server.url, volunteers=VOLUNTEERS, seed=41, duration_s=RUN_LIMIT_S,
        idle_stop_s=None, until=open_units(grid, batch_id), until_poll_s=0.5,
        reconnect_attempts=30, options=BehaviourOptions(think_s=THINK_S)))
    needed = 2 * UNITS

    async def go() -> tuple[SwarmSummary, float]:
        run = asyncio.create_task(runner.run())
        async with asyncio.timeout(RUN_LIMIT_S / 2):
            while (sum(c.stats.accepted for c in runner.clients) < FAULT_AT * needed
                   and not run.done()):
                await asyncio.sleep(0.02)
        struck_at = sum(c.stats.accepted for c in runner.clients) / needed
        await asyncio.to_thread(fault)
        return await run, struck_at

    with epoch_closer(grid):
        summary, struck_at = asyncio.run(go())
    time.sleep(EPOCH_S + 0.5)  # let the last grants' epoch end, so closing it pays them
    acked = grid.workdir / "acked.txt"
    acked.write_text("\n".join(sorted(runner.acked_task_ids())))
    audit = grid.worker("audit", "--acked", str(acked), "--batch", str(batch_id),
                        "--close-epochs")
    audit["closer_log"] = (grid.workdir / "close_epochs.log").read_text(errors="replace")[-3000:]
    return summary, runner, audit, struck_at


def logged_errors(log: str) -> Counter:
    """Each traceback in a server log, by its last line (the exception)."""
    errors: Counter = Counter()
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            for following in lines[index + 1:]:
                if following and not following.startswith((" ", "\t")):
                    errors[following[:160]] += 1
                    break
    return errors


def assert_nothing_lost(summary: SwarmSummary, audit: dict, server: Server,
                        struck_at: float) -> None:
    ledger = audit["ledger"]
    # What the fault did, for the log (pytest -s, or the report of a failure).
    print(f"\n[chaos] struck at {struck_at:.0%} of {2 * UNITS} results; "
          f"{summary.total.reconnects} reconnects, {summary.connection_failures} failed "
          f"connections, {summary.server_errors} server errors, {summary.retransmits} "
          f"results resent, {summary.total.duplicates} acked as duplicates; "
          f"{ledger.get('epochs', 0)} epochs paid; server errors logged: "
          f"{dict(logged_errors(server.log_tail(10**7))) or 'none'}")
    context = f"\nswarm: {summary.as_json()}\naudit: {audit}\nserver log:\n{server.log_tail()}"
    assert struck_at < 0.9, f"the fault struck too late to matter ({struck_at:.0%})" + context
    assert summary.stopped_because == "until", context  # every work unit finished, in time
    assert summary.problems == [], context
    assert audit["problems"] == [], context
    assert audit["acked"] >= 2 * UNITS and audit["acked_stored"] == audit["acked"], context
    assert audit["workunits"] == {"completed": UNITS}, context
    assert audit["grants"] == audit["valid_replicas"] >= 2 * UNITS, context
    if ledger["installed"]:
        assert ledger["verified"], context
        assert ledger["epochs"] >= 1 and ledger["grants_after_last_epoch"] == 0, context


def verify_ledger(grid: World) -> None:
    if "ledger" in grid.manage("help", "--commands"):
        grid.manage("verify_ledger")  # exits 1 (and BenchError here) when broken


def _sockets_of(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))
    except OSError:  # it exited meanwhile
        return 0


# --- the faults ---------------------------------------------------------------------------------

def test_a_worker_killed_with_sigkill_mid_run_loses_nothing():
    """With Redis (scale-out): one of two `serve` workers is SIGKILLed and replaced by the
    supervisor. Without: the only daphne is SIGKILLed and started again on its port."""
    with world("kill", postgres_url=ENV_POSTGRES, redis_url=ENV_REDIS) as grid:
        workers = 2 if ENV_REDIS else 1
        server = server_start(grid, workers=workers)
        restarted: list[Server] = []

        def kill_a_worker() -> None:
            if workers > 1:
                # The worker holding the most sockets: the kernel may have given every
                # volunteer to one of them, and killing an idle one tests nothing.
                victim = max(server.daphne_pids(), key=_sockets_of)
                os.kill(victim, signal.SIGKILL)
                deadline = time.monotonic() + 60
                while victim in server.daphne_pids() or len(server.daphne_pids()) < workers:
                    assert time.monotonic() < deadline, "serve did not replace the worker"
                    time.sleep(0.1)
            else:
                server.kill()
                time.sleep(0.5)  # clients notice and start retrying
                restarted.append(server_start(grid, port=server.port))

        try:
            summary, runner, audit, struck_at = run_with_fault(grid, server, kill_a_worker)
        finally:
            for each in [server, *restarted]:
                each.stop()
        assert_nothing_lost(summary, audit, restarted[0] if restarted else server, struck_at)
        # The fault was felt: the killed worker's volunteers came back, with their tokens.
        assert summary.total.reconnects >= 1
        verify_ledger(grid)


def test_redis_restarted_mid_run_loses_nothing(redis_server):
    """The channel layer's Redis (a throwaway one) goes away for a second and comes back empty."""
    with world("redis", postgres_url=ENV_POSTGRES, redis_url=redis_server.url) as grid:
        server = server_start(grid, workers=2)
        try:
            summary, runner, audit, struck_at = run_with_fault(grid, server,
                                                               redis_server.restart)
            assert server.alive(), f"serve died:\n{server.log_tail()}"
        finally:
            server.stop()
        assert_nothing_lost(summary, audit, server, struck_at)
        verify_ledger(grid)


def test_postgresql_restarted_mid_run_loses_nothing(postgres_cluster):
    """The database (a throwaway cluster) is stopped the hard way and started again."""
    with world("pg", postgres_url=postgres_cluster.url, redis_url=ENV_REDIS) as grid:
        server = server_start(grid, workers=2 if ENV_REDIS else 1)
        try:
            summary, runner, audit, struck_at = run_with_fault(grid, server,
                                                               postgres_cluster.restart)
            assert server.alive(), f"the server died:\n{server.log_tail()}"
        finally:
            server.stop()
        assert_nothing_lost(summary, audit, server, struck_at)
        verify_ledger(grid)
