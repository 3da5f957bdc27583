"""The live measurement: the swarm against a running server, in windows.

For one number of connected volunteers: idle volunteers connect first (they only
say hello and ping), then a bounded number of honest ones compute as fast as the
server lets them. After a warm-up, a window is cut out of the run; everything
reported (results, latencies, CPU of the server, of its database backends and
of this client) is the difference between the two ends of that window.
"""

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from tools.swarm.behaviours import BehaviourOptions
from tools.swarm.runner import Latency, Swarm, SwarmConfig

from . import procs
from .servers import Server

ECHO_PATH = "/ws/echo/"
RAMP_TIMEOUT_S = 150.0  # bounds a run; what connected by then is reported
CONNECT_CONCURRENCY = 100
DRAIN_LIMIT_S = 180.0  # for the server to validate a phase's backlog afterwards


@dataclass
class Mark:
    """One end of a window."""

    wall: dt.datetime
    mono: float
    server_cpu_s: float
    server_wait_s: float
    machine_busy_s: float
    db_cpu_s: dict[int, float]  # by backend: backends come and go within a window
    client_cpu_s: float
    accepted: int
    reconnects: int  # every volunteer, idle ones too
    latency_marks: list[tuple[int, int]]  # per active client: samples so far (dispatch, ack)


def _db_cpu(pids: list[int]) -> dict[int, float]:
    return {pid: used.cpu_s for pid in pids if (used := procs.usage(pid)) is not None}


def _db_cores(start: Mark, end: Mark, seconds: float) -> float:
    """A backend that started inside the window counts whole; one that ended is lost."""
    used = sum(cpu - start.db_cpu_s.get(pid, 0.0) for pid, cpu in end.db_cpu_s.items())
    return max(0.0, used) / seconds


def _mark(server: Server, db_pids: list[int], active: Swarm | None, idle: Swarm | None
          ) -> Mark:
    clients = active.clients if active is not None else []
    everyone = clients + (idle.clients if idle is not None else [])
    usage = server.usage()
    return Mark(
        wall=dt.datetime.now(dt.UTC), mono=time.perf_counter(),
        server_cpu_s=usage.cpu_s, server_wait_s=usage.wait_s,
        machine_busy_s=procs.machine_busy_s()[0], db_cpu_s=_db_cpu(db_pids),
        client_cpu_s=time.process_time(),
        accepted=sum(c.stats.accepted for c in clients),
        reconnects=sum(c.stats.reconnects for c in everyone),
        latency_marks=[(len(c.stats.dispatch_latency_s), len(c.stats.ack_latency_s))
                       for c in clients],
    )


@dataclass
class Phase:
    """One window of computing volunteers on top of the idle ones."""

    name: str  # "saturated" or "paced"
    active: int
    think_s: float
    window_s: float
    connected: int = 0
    accepted: int = 0
    accepted_per_s: float = 0.0
    validated: int = 0
    validated_per_s: float = 0.0
    completed_units: int = 0
    dispatch: dict = field(default_factory=dict)
    ack: dict = field(default_factory=dict)
    server_cores: float = 0.0  # CPU seconds per second, all server processes
    server_waiting: float = 0.0  # runnable but without a CPU (the machine was busy elsewhere)
    machine_busy: float = 0.0  # every process on the machine, cores busy
    per_cpu_s: float = 0.0  # accepted results per CPU-second of the server, owed validation in
    backlog_start: int = 0  # results stored but not yet validated, at the window's start
    backlog_end: int = 0  # ... and at its end
    owed_cpu_s: float = 0.0  # server CPU-s the validation of the backlog the window added took
    drain_s: float = 0.0  # how long the server took to validate its backlog after the phase
    client_lag: dict = field(default_factory=dict)  # the swarm's own event loop, late by (ms)
    db_cores: float = 0.0  # the database server's backends serving us (scale-out)
    client_cores: float = 0.0  # this process: the swarm itself
    server_rss_mb: float = 0.0
    daphne_rss_mb: float = 0.0
    refused: dict = field(default_factory=dict)
    reconnects: int = 0  # volunteers (idle ones too) that lost their socket and came back
    server_errors: int = 0
    problems: list[str] = field(default_factory=list)
    offered_per_s: float | None = None  # paced: what the volunteers were set to send
    fraction: float | None = None  # paced: of the saturated rate
    since: str = ""  # the window, for counting in the database afterwards (phase_counts_add)
    until: str = ""


def phase_counts_add(phase: dict, counts: dict) -> None:
    """Fill in what the database says happened in a phase's window."""
    phase["validated"] = counts["validated"]
    phase["completed_units"] = counts["completed_units"]
    phase["validated_per_s"] = round(counts["validated"] / phase["window_s"], 1)


@dataclass
class SizeRun:
    """Everything measured at one number of connected volunteers."""

    size: int
    idle: int
    connected_idle: int = 0
    ramp_s: float = 0.0
    idle_server_cores: float = 0.0  # idle connections alone
    idle_rss_mb: float = 0.0  # daphne RSS with only the idle connections
    phases: list[Phase] = field(default_factory=list)
    acked_task_ids: set[str] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("acked_task_ids")
        return data


def _window_latency(swarm: Swarm, start: Mark, which: int) -> dict:
    samples: list[float] = []
    for client, marks in zip(swarm.clients, start.latency_marks, strict=False):
        series = client.stats.dispatch_latency_s if which == 0 else client.stats.ack_latency_s
        samples += series[marks[which]:]
    return asdict(Latency.of(samples))


async def _phase(*, url: str, server: Server, db_pids: Callable[[], list[int]],
                 phase: Phase, idle: Swarm | None, warmup_s: float, seed: int,
                 pending: Callable[[], int] | None = None) -> tuple[Phase, set[str]]:
    """One window. With `pending` (results awaiting validation), the window is charged the
    validation it leaves behind: after the phase the server validates its backlog with no
    new results coming, and the CPU that takes, per result, times the growth of the
    backlog over the window, is added to the window's CPU. A server whose validator falls
    behind at saturation would otherwise look cheaper per result than it is, and bill
    that validation to whatever phase comes next. Each phase starts with none owed."""
    active = Swarm(SwarmConfig(
        url=url, volunteers=phase.active, mix={"honest": 1.0}, seed=seed,
        duration_s=warmup_s + phase.window_s + 60, idle_stop_s=None, drain_s=2.0,
        connect_concurrency=CONNECT_CONCURRENCY,
        options=BehaviourOptions(think_s=phase.think_s)))
    run = asyncio.create_task(active.run())
    try:
        # The warm-up starts once every computing volunteer is connected.
        ready_by = time.perf_counter() + 60
        while (active.connected < phase.active and not run.done()
               and time.perf_counter() < ready_by):
            await asyncio.sleep(0.05)
        await asyncio.sleep(warmup_s)
        start = _mark(server, db_pids(), active, idle)
        if pending is not None:
            phase.backlog_start = await asyncio.to_thread(pending)
        lags: list[float] = []
        probe = asyncio.create_task(_loop_lag(lags))
        await asyncio.sleep(phase.window_s)
        probe.cancel()
        phase.client_lag = asdict(Latency.of(lags))
        end = _mark(server, db_pids(), active, idle)
        validating_at_end = server.validation_cpu_s()
        if pending is not None:
            phase.backlog_end = await asyncio.to_thread(pending)
        phase.connected = active.connected + (idle.connected if idle is not None else 0)
        rss = server.usage()
        phase.server_rss_mb = round(rss.rss_kb / 1024, 1)
        phase.daphne_rss_mb = round(server.daphne_usage().rss_kb / 1024, 1)
    finally:
        active.stop()
        summary = await run
    if pending is not None:
        stored_after = sum(c.stats.accepted for c in active.clients) - end.accepted
        await _drain(phase, server, pending, validating_at_end=validating_at_end,
                     stored_after=stored_after)
    seconds = end.mono - start.mono
    phase.window_s = round(seconds, 2)
    phase.accepted = end.accepted - start.accepted
    phase.reconnects = end.reconnects - start.reconnects
    phase.accepted_per_s = round(phase.accepted / seconds, 1)
    phase.dispatch = _window_latency(active, start, 0)
    phase.ack = _window_latency(active, start, 1)
    phase.server_cores = round((end.server_cpu_s - start.server_cpu_s) / seconds, 3)
    phase.server_waiting = round(max(0.0, end.server_wait_s - start.server_wait_s) / seconds, 3)
    phase.machine_busy = round((end.machine_busy_s - start.machine_busy_s) / seconds, 3)
    phase.per_cpu_s = round(phase.accepted / max(
        1e-9, end.server_cpu_s - start.server_cpu_s + phase.owed_cpu_s), 1)
    phase.db_cores = round(_db_cores(start, end, seconds), 3)
    phase.client_cores = round((end.client_cpu_s - start.client_cpu_s) / seconds, 3)
    phase.refused = summary.refused_by_reason
    phase.server_errors = summary.server_errors
    phase.problems = summary.problems + phase.problems
    phase.since, phase.until = start.wall.isoformat(), end.wall.isoformat()
    return phase, active.acked_task_ids()


async def _loop_lag(lags: list[float], every_s: float = 0.02) -> None:
    """How late this process's event loop wakes a sleeper (seconds), every `every_s`: the
    swarm's own delay, part of every latency it measures (a result's ack waits in the
    client's queue as long as the loop is behind)."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        lags.append(max(0.0, loop.time() - due))


async def _drain(phase: Phase, server: Server, pending: Callable[[], int], *,
                 validating_at_end: float | None = None, stored_after: int = 0) -> None:
    """Wait (up to DRAIN_LIMIT_S) until the server has validated every stored result, and
    charge the window its share: CPU per result drained × the backlog the window added.

    Where validation has processes of its own (`serve`), their CPU is counted from the
    window's end, over every result validated since (the backlog then, and what the
    swarm's last acks stored): the validator keeps going while the swarm drains its
    acks, and counting only from here missed that work. Where the web process
    validates (embedded), its CPU is counted from here: before, it was also serving
    the swarm's drain."""
    cpu_before, started = server.usage().cpu_s, time.perf_counter()
    backlog = await asyncio.to_thread(pending)
    left = backlog
    while left and time.perf_counter() - started < DRAIN_LIMIT_S:
        await asyncio.sleep(0.25)
        left = await asyncio.to_thread(pending)
    phase.drain_s = round(time.perf_counter() - started, 2)
    added = max(0, phase.backlog_end - phase.backlog_start)
    if validating_at_end is not None:
        drained = phase.backlog_end + max(0, stored_after) - left
        used = server.validation_cpu_s() - validating_at_end
    else:
        drained, used = backlog - left, server.usage().cpu_s - cpu_before
    if drained > 0:
        phase.owed_cpu_s = round(used / drained * added, 3)
    if left:
        phase.problems.append(f"{left:,} results still awaiting validation "
                              f"{DRAIN_LIMIT_S:.0f} s after the phase")


async def size_run(*, url: str, server: Server, size: int, active: int, window_s: float,
                   warmup_s: float, idle_probe_s: float, paced_fractions: list[float],
                   db_pids: Callable[[], list[int]], log: Callable[[str], None],
                   seed: int = 1, pending: Callable[[], int] | None = None) -> SizeRun:
    """Hold `size` volunteers (`active` computing), measure a saturated window, then one
    paced window per `paced_fractions`, offering that fraction of the saturated rate."""
    active = min(active, size)
    result = SizeRun(size=size, idle=size - active)
    idle: Swarm | None = None
    idle_run: asyncio.Task | None = None
    if result.idle:
        idle = Swarm(SwarmConfig(url=url, volunteers=result.idle, mix={"idle": 1.0}, seed=seed,
                                 duration_s=24 * 3600, idle_stop_s=None, drain_s=0.5,
                                 connect_concurrency=CONNECT_CONCURRENCY, reconnect_attempts=20))
        idle_run = asyncio.create_task(idle.run())
    try:
        started = time.perf_counter()
        if idle is not None:
            log(f"    connecting {result.idle:,} idle volunteers…")
            while (idle.connected < result.idle and not idle_run.done()
                   and time.perf_counter() - started < RAMP_TIMEOUT_S):
                await asyncio.sleep(0.25)
            result.connected_idle = idle.connected
        result.ramp_s = round(time.perf_counter() - started, 1)
        await asyncio.sleep(1.0)  # let the last hellos settle
        before = server.usage().cpu_s
        probe_started = time.perf_counter()
        await asyncio.sleep(idle_probe_s)
        result.idle_server_cores = round(
            (server.usage().cpu_s - before) / (time.perf_counter() - probe_started), 3)
        result.idle_rss_mb = round(server.daphne_usage().rss_kb / 1024, 1)
        if result.idle:
            log(f"    {result.connected_idle:,} idle connected in {result.ramp_s} s; "
                f"idle server CPU {result.idle_server_cores:.2f} cores, daphne RSS "
                f"{result.idle_rss_mb:.0f} MB")
        saturated, acked = await _phase(
            url=url, server=server, db_pids=db_pids, idle=idle,
            phase=Phase(name="saturated", active=active, think_s=0.0, window_s=window_s),
            warmup_s=warmup_s, seed=seed + 1, pending=pending)
        result.phases.append(saturated)
        result.acked_task_ids |= acked
        log(f"    saturated: {saturated.accepted_per_s:,.0f} accepted/s, ack p99 "
            f"{saturated.ack.get('p99_ms')} ms, server {saturated.server_cores:.2f} cores "
            f"(+{saturated.server_waiting:.2f} waiting for a CPU), machine busy "
            f"{saturated.machine_busy:.2f} cores; validation owed "
            f"{saturated.owed_cpu_s:.1f} CPU-s (backlog {saturated.backlog_start:,} → "
            f"{saturated.backlog_end:,}, drained in {saturated.drain_s:.1f} s); "
            f"{saturated.per_cpu_s:,.0f} results per server CPU-s")
        for fraction in paced_fractions if saturated.accepted_per_s > 0 else []:
            offered = fraction * saturated.accepted_per_s
            # Each volunteer keeps max_inflight (4) tasks, each held ~think_s before reporting.
            think = 4 * active / offered
            paced, acked = await _phase(
                url=url, server=server, db_pids=db_pids, idle=idle,
                phase=Phase(name="paced", active=active, think_s=round(think, 3),
                            window_s=window_s, offered_per_s=round(offered, 1),
                            fraction=fraction),
                warmup_s=warmup_s + think, seed=seed + 2, pending=pending)
            result.phases.append(paced)
            result.acked_task_ids |= acked
            log(f"    paced at {offered:,.0f}/s: {paced.accepted_per_s:,.0f} accepted/s, ack "
                f"p50 {paced.ack.get('p50_ms')} ms p99 {paced.ack.get('p99_ms')} ms, server "
                f"{paced.server_cores:.2f} cores, validation owed {paced.owed_cpu_s:.1f} CPU-s; "
                f"{paced.per_cpu_s:,.0f} results per server CPU-s; the swarm's loop late by "
                f"p50 {paced.client_lag.get('p50_ms')} ms p99 {paced.client_lag.get('p99_ms')} ms")
    finally:
        if idle is not None:
            idle.stop()
            await idle_run
    return result


async def profiled_run(*, url: str, active: int, seconds: float, warmup_s: float = 1.0
                       ) -> dict:
    """`active` honest volunteers for `seconds` against the instrumented server."""
    swarm = Swarm(SwarmConfig(url=url, volunteers=active, mix={"honest": 1.0}, seed=5,
                              duration_s=warmup_s + seconds + 60, idle_stop_s=None,
                              connect_concurrency=CONNECT_CONCURRENCY))
    run = asyncio.create_task(swarm.run())
    await asyncio.sleep(warmup_s)
    await asyncio.sleep(seconds)
    swarm.stop()
    summary = await run
    return {"accepted": summary.total.accepted, "requests": sum(
        c.stats.requests for c in swarm.clients), "stats_frames": sum(
        c.stats.stats_frames for c in swarm.clients), "wall_s": summary.wall_s}


async def echo_run(*, url: str, connections: int, seconds: float, inflight: int = 4) -> dict:
    """`connections` clients each keeping `inflight` frames outstanding for `seconds`."""
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://").rstrip("/") + ECHO_PATH
    sockets = []
    try:
        for _ in range(connections):
            sockets.append(await connect(ws_url, proxy=None, compression=None, open_timeout=20))
        counts = [0] * connections
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def drive(index: int, ws) -> None:
            sent_at: dict[int, float] = {}
            n = 0
            for _ in range(inflight):
                n += 1
                sent_at[n] = time.perf_counter()
                await ws.send(json.dumps({"type": "ping", "n": n}))
            while sent_at:
                reply = json.loads(await ws.recv())
                now = time.perf_counter()
                latencies.append(now - sent_at.pop(reply["n"]))
                counts[index] += 1
                if now < stop_at:
                    n += 1
                    sent_at[n] = now
                    await ws.send(json.dumps({"type": "ping", "n": n}))

        started = time.perf_counter()
        cpu_started = time.process_time()
        stop_at = started + seconds
        await asyncio.wait_for(
            asyncio.gather(*(drive(i, ws) for i, ws in enumerate(sockets))), seconds + 30)
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    lat = Latency.of(latencies)
    return {"connections": connections, "inflight": inflight, "seconds": round(elapsed, 2),
            "round_trips": sum(counts), "round_trips_per_s": round(sum(counts) / elapsed, 1),
            "p50_ms": lat.p50_ms, "p99_ms": lat.p99_ms,
            "client_cores": round((time.process_time() - cpu_started) / elapsed, 3)}
