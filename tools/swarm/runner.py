"""Run N simulated volunteers at once and sum up what happened.

A run ends at the first of: `duration_s` elapsed; no work left (every
volunteer still around holds nothing and was told "no tasks" after the last
ack anyone received, and that has lasted `idle_stop_s`; idle volunteers, which
never ask, don't count); an optional `until()` predicate holding; `stop()`
called; every volunteer gone. It is always bounded by `duration_s`.
"""

import asyncio
import ipaddress
import json
import multiprocessing
import os
import random
import urllib.parse
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from .behaviours import BEHAVIOURS, BehaviourOptions, behaviour_create
from .client import CodeCache, SimulatedVolunteer, SwarmError, endpoints, http_get

LOOPBACK_NAMES = {"localhost"}


def parse_mix(text: str) -> dict[str, float]:
    """"honest=0.7,cheater=0.2,flaky=0.1" -> weights normalised to 1. A bare name weighs 1."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in BEHAVIOURS:
            raise SwarmError(f"Unknown behaviour {name!r} in --mix; choose from "
                             f"{', '.join(BEHAVIOURS)} (e.g. honest=0.7,cheater=0.3).")
        try:
            weight = float(value) if value.strip() else 1.0
        except ValueError:
            raise SwarmError(f"--mix needs name=weight pairs; {part!r} has no number after '='."
                             ) from None
        if not weight >= 0 or weight == float("inf"):
            raise SwarmError(f"--mix weights must be finite and not negative; got {part!r}.")
        if name in weights:
            raise SwarmError(f"--mix names {name!r} twice.")
        weights[name] = weight
    total = sum(weights.values())
    if total <= 0:
        raise SwarmError("--mix needs at least one behaviour with a positive weight, "
                         "e.g. honest=1.")
    return {name: weight / total for name, weight in weights.items() if weight > 0}


def behaviour_counts(mix: dict[str, float], volunteers: int) -> dict[str, int]:
    """Split `volunteers` by the mix's weights (largest remainder, so the counts add up)."""
    exact = {name: weight * volunteers for name, weight in mix.items()}
    counts = {name: int(value) for name, value in exact.items()}
    short = volunteers - sum(counts.values())
    by_remainder = sorted(exact, key=lambda n: (exact[n] - counts[n], mix[n]), reverse=True)
    for name in by_remainder[:short]:
        counts[name] += 1
    return counts


def require_loopback(url: str) -> None:
    """The swarm is a load generator: refuse to aim it at anything but this machine."""
    host = urllib.parse.urlsplit(endpoints(url)[0]).hostname or ""
    if host in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SwarmError(f"{host} is not a loopback address; the swarm only targets servers on "
                     f"this machine (e.g. http://127.0.0.1:8000).")


@dataclass(frozen=True)
class SwarmConfig:
    url: str
    volunteers: int = 10
    mix: dict[str, float] = field(default_factory=lambda: {"honest": 1.0})
    duration_s: float = 60.0
    idle_stop_s: float | None = 3.0  # None: always run the whole duration
    seed: int | None = None
    options: BehaviourOptions = BehaviourOptions()
    duplicate_p: float = 0.0  # chance each acked result is sent once more
    keep_acked: bool = False  # keep accepted result frames on each client (for tests)
    # Checked in a worker thread every `until_poll_s`; a true answer ends the run.
    until: Callable[[], bool] | None = None
    until_poll_s: float = 0.5
    connect_concurrency: int = 50  # simultaneous handshakes while the swarm comes up
    drain_s: float = 2.0  # on stop, how long to wait for outstanding acks
    reconnect_attempts: int = 5  # failed connections in a row before a volunteer gives up
    # App code runs in one thread by default: pure-Python apps hold the GIL, so more threads
    # only contend. `processes` > 0 runs it in that many worker processes instead.
    threads: int = 1
    processes: int = 0
    # Plain v1 frames (`request`, one `result` each) even when the server offers the batch
    # extension: keeps the v1 path exercised and measurable. SPARECYCLES_SWARM_V1_FRAMES=1
    # sets it for swarms made elsewhere (bench_platform's, for an A/B in one checkout).
    v1_frames: bool = field(
        default_factory=lambda: os.environ.get("SPARECYCLES_SWARM_V1_FRAMES", "") == "1")

    def check(self) -> None:
        if self.volunteers < 1:
            raise SwarmError("--volunteers must be at least 1.")
        if not 0 < self.duration_s <= 24 * 3600:
            raise SwarmError("--duration must be between 0 and 86400 seconds.")
        if self.threads < 1 or not 0 <= self.processes <= 64:
            raise SwarmError("Use at least 1 thread, and 0 to 64 worker processes.")
        if not 0.0 <= self.duplicate_p <= 1.0:
            raise SwarmError("duplicate_p must be between 0 and 1.")
        try:
            self.options.check()
        except ValueError as exc:
            raise SwarmError(str(exc)) from None
        require_loopback(self.url)


@dataclass
class Latency:
    n: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, samples_s: list[float]) -> "Latency":
        if not samples_s:
            return cls(0, None, None, None, None)
        ordered = sorted(samples_s)

        def pct(p: float) -> float:  # nearest rank
            index = min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 100)) - 1))
            return round(ordered[index] * 1000, 2)

        return cls(len(ordered), pct(50), pct(90), pct(99), round(ordered[-1] * 1000, 2))


@dataclass
class Outcomes:
    volunteers: int = 0
    tasks_received: int = 0
    results_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    errors_reported: int = 0
    cancelled: int = 0
    reconnects: int = 0
    vanished: int = 0

    def add(self, client: SimulatedVolunteer) -> None:
        s = client.stats
        self.volunteers += 1
        self.tasks_received += s.tasks_received
        self.results_sent += s.results_sent
        self.accepted += s.accepted
        self.duplicates += s.duplicates
        self.refused += sum(s.refused.values())
        self.errors_reported += s.errors_reported
        self.cancelled += s.cancelled
        self.reconnects += s.reconnects
        self.vanished += s.vanished


@dataclass
class SwarmSummary:
    url: str
    volunteers: int
    mix: dict[str, float]
    seed: int | None
    stopped_because: str  # "no work left", "duration", "until", "stopped", "all volunteers gone"
    wall_s: float  # from start to stop
    active_s: float  # from the first request to the last ack
    throughput_per_s: float  # accepted (non-duplicate) results per active second
    total: Outcomes
    per_behaviour: dict[str, Outcomes]
    refused_by_reason: dict[str, int]
    error_frames: dict[str, int]
    dispatch_latency: Latency  # request sent -> tasks received
    ack_latency: Latency  # result sent -> ack received
    retransmits: int
    duplicates_sent: int
    code_fetches: int
    code_errors: int
    connection_failures: int
    unacked_at_stop: int
    held_at_stop: int
    rate_limited: int  # frames/results the server refused for now, sent again later
    problems: list[str]  # why volunteers gave up, one line each (deduplicated)
    server_errors: int = 0  # "server_error" frames; what they dropped was sent again

    def as_dict(self) -> dict:
        return asdict(self)

    def as_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)


class Swarm:
    """N simulated volunteers against one server. `await Swarm(config).run()` -> SwarmSummary."""

    def __init__(self, config: SwarmConfig):
        config.check()
        self.config = config
        self.http_base, _ = endpoints(config.url)
        self.rng = random.Random(config.seed)
        self.code_cache = CodeCache(self.http_base)
        self.clients: list[SimulatedVolunteer] = []
        self.last_ack_at = -1.0
        self._stop_asked = asyncio.Event()

    def stop(self) -> None:
        """End the run soon, from the event loop running it (e.g. a benchmark's own clock)."""
        self._stop_asked.set()

    @property
    def connected(self) -> int:
        """Volunteers holding an open, welcomed socket right now."""
        return sum(1 for c in self.clients if c.connected)

    def acked_task_ids(self) -> set[str]:
        """Every task whose result the server acknowledged as stored (duplicates too)."""
        return set().union(*(c.acked_task_ids for c in self.clients))

    def _make_clients(self, executor: Executor) -> None:
        names: list[str] = []
        for name, count in behaviour_counts(self.config.mix, self.config.volunteers).items():
            names += [name] * count
        self.rng.shuffle(names)
        for index, name in enumerate(names):
            rng = random.Random(self.rng.getrandbits(64))
            self.clients.append(SimulatedVolunteer(
                url=self.config.url,
                behaviour=behaviour_create(name, rng=rng, options=self.config.options),
                code_cache=self.code_cache, executor=executor, rng=rng,
                label=f"{name}-{index}", duplicate_p=self.config.duplicate_p,
                keep_acked=self.config.keep_acked, on_ack=self._on_ack,
                reconnect_attempts=self.config.reconnect_attempts,
                v1_frames=self.config.v1_frames,
            ))

    def _on_ack(self, at: float) -> None:
        self.last_ack_at = max(self.last_ack_at, at)

    async def preflight(self) -> None:
        """Fail fast, with a clear message, when no server answers at the URL."""
        url = f"{self.http_base}/healthz"
        try:
            status, body = await asyncio.to_thread(http_get, url, timeout=10)
        except SwarmError as exc:
            raise SwarmError(f"No Spare Cycles server at {self.http_base} ({exc}) "
                             f"Start one (e.g. `make run`) or pass --url.") from None
        if status != 200:
            raise SwarmError(f"{url} answered HTTP {status}, not 200: is this a Spare Cycles "
                             f"server, and is its database up? {body[:200]!r}")

    async def run(self) -> SwarmSummary:
        config = self.config
        await self.preflight()
        loop = asyncio.get_running_loop()
        executor: Executor
        if config.processes > 0:
            executor = ProcessPoolExecutor(max_workers=config.processes,
                                           mp_context=multiprocessing.get_context("spawn"))
        else:
            executor = ThreadPoolExecutor(max_workers=max(1, config.threads),
                                          thread_name_prefix="swarm-app")
        stop = asyncio.Event()
        started = loop.time()
        deadline = started + config.duration_s
        self._make_clients(executor)
        gate = asyncio.Semaphore(max(1, config.connect_concurrency))

        runs = [asyncio.create_task(client.run(stop, drain_s=config.drain_s, gate=gate))
                for client in self.clients]
        why = "duration"
        try:
            why = await self._watch(stop, runs, deadline)
        finally:
            stop.set()
            done, pending = await asyncio.wait(runs, timeout=config.drain_s + 10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            executor.shutdown(wait=False, cancel_futures=True)
        stopped = loop.time()
        problems = [f"{c.label}: crashed: {type(t.exception()).__name__}: {t.exception()}"
                    for c, t in zip(self.clients, runs, strict=True)
                    if t.done() and not t.cancelled() and t.exception() is not None]
        return self._summarise(why=why, wall_s=stopped - started, started=started,
                               extra_problems=problems)

    async def _watch(self, stop: asyncio.Event, runs: list[asyncio.Task], deadline: float
                     ) -> str:
        loop = asyncio.get_running_loop()
        config = self.config
        quiet_since: float | None = None
        next_until = loop.time() + config.until_poll_s
        until_check: asyncio.Future | None = None
        while True:
            now = loop.time()
            if now >= deadline:
                return "duration"
            if self._stop_asked.is_set():
                return "stopped"
            if all(task.done() for task in runs):
                return "all volunteers gone"
            if until_check is not None and until_check.done():
                if until_check.result():
                    return "until"
                until_check = None
                next_until = now + config.until_poll_s
            if config.until is not None and until_check is None and now >= next_until:
                until_check = asyncio.ensure_future(asyncio.to_thread(config.until))
            if config.idle_stop_s is not None:
                if self._quiet():
                    quiet_since = now if quiet_since is None else quiet_since
                    if now - quiet_since >= config.idle_stop_s:
                        return "no work left"
                else:
                    quiet_since = None
            await asyncio.sleep(min(0.1, max(0.0, deadline - now)))

    def _quiet(self) -> bool:
        """Nobody holds work, and everyone still here heard "no tasks" since the last ack."""
        present = [c for c in self.clients if not c.gone and c.behaviour.requests_work]
        if not present:
            return True
        return all(not c.away and not c.busy and c.last_empty_at > self.last_ack_at
                   for c in present)

    def _summarise(self, *, why: str, wall_s: float, started: float,
                   extra_problems: list[str]) -> SwarmSummary:
        total = Outcomes()
        per_behaviour: dict[str, Outcomes] = {}
        refused: Counter = Counter()
        error_frames: Counter = Counter()
        dispatch: list[float] = []
        ack: list[float] = []
        problems = Counter(extra_problems)
        for client in self.clients:
            total.add(client)
            per_behaviour.setdefault(client.behaviour.name, Outcomes()).add(client)
            refused.update(client.stats.refused)
            error_frames.update(client.stats.error_frames)
            dispatch += client.stats.dispatch_latency_s
            ack += client.stats.ack_latency_s
            if client.problem:
                problems[client.problem] += 1
        active_s = max(self.last_ack_at - started, 0.0) if self.last_ack_at > 0 else 0.0
        stats = [c.stats for c in self.clients]
        return SwarmSummary(
            url=self.http_base,
            volunteers=len(self.clients),
            mix=dict(self.config.mix),
            seed=self.config.seed,
            stopped_because=why,
            wall_s=round(wall_s, 3),
            active_s=round(active_s, 3),
            throughput_per_s=round(total.accepted / active_s, 2) if active_s else 0.0,
            total=total,
            per_behaviour=dict(sorted(per_behaviour.items())),
            refused_by_reason=dict(refused),
            error_frames=dict(error_frames),
            dispatch_latency=Latency.of(dispatch),
            ack_latency=Latency.of(ack),
            retransmits=sum(s.retransmits for s in stats),
            duplicates_sent=sum(s.duplicates_sent for s in stats),
            code_fetches=self.code_cache.fetches,
            code_errors=sum(s.code_errors for s in stats),
            connection_failures=sum(s.connection_failures for s in stats),
            unacked_at_stop=sum(s.unacked_at_stop for s in stats),
            held_at_stop=sum(s.held_at_stop for s in stats),
            rate_limited=sum(s.rate_limited for s in stats),
            problems=[f"{text} (x{n})" if n > 1 else text for text, n in problems.items()],
            server_errors=sum(s.server_errors for s in stats),
        )


def swarm_run(config: SwarmConfig) -> SwarmSummary:
    """Run a swarm to its end from synchronous code (a command, a test)."""
    return asyncio.run(Swarm(config).run())


def summary_table(summary: SwarmSummary) -> str:
    """The summary as a few readable lines of text."""
    columns = ("volunteers", "tasks_received", "results_sent", "accepted", "duplicates",
               "refused", "errors_reported", "cancelled", "reconnects", "vanished")
    headers = ("behaviour", "volunteers", "tasks", "results", "accepted", "duplicate",
               "refused", "errors", "cancelled", "reconnects", "vanished")
    rows = [[name, *(getattr(o, c) for c in columns)]
            for name, o in summary.per_behaviour.items()]
    rows.append(["total", *(getattr(summary.total, c) for c in columns)])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]

    def line(cells) -> str:
        first, *rest = cells
        return "  ".join([str(first).ljust(widths[0]),
                          *(str(c).rjust(w) for c, w in zip(rest, widths[1:], strict=True))])

    mix = ", ".join(f"{name} {weight:.0%}" for name, weight in summary.mix.items())
    out = [
        f"Swarm of {summary.volunteers} volunteers ({mix}) against {summary.url}",
        f"stopped after {summary.wall_s:.1f} s: {summary.stopped_because}"
        + (f" (seed {summary.seed})" if summary.seed is not None else ""),
        "",
        line(headers),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows[:-1]),
        line(["-" * w for w in widths]),
        line(rows[-1]),
        "",
        f"{'throughput':<17}{summary.throughput_per_s:.1f} accepted results/s "
        f"over {summary.active_s:.1f} s of work",
    ]
    for label, lat in (("dispatch", summary.dispatch_latency), ("ack", summary.ack_latency)):
        if lat.n:
            out.append(f"{label + ' latency':<17}p50 {lat.p50_ms:.1f} ms  p90 {lat.p90_ms:.1f} ms"
                       f"  p99 {lat.p99_ms:.1f} ms  max {lat.max_ms:.1f} ms  (n={lat.n})")
        else:
            out.append(f"{label + ' latency':<17}no samples")
    if summary.refused_by_reason:
        out.append("refused          " + ", ".join(
            f"{reason} {n}" for reason, n in sorted(summary.refused_by_reason.items())))
    if summary.error_frames:
        out.append("error frames     " + ", ".join(
            f"{code} {n}" for code, n in sorted(summary.error_frames.items())))
    extras = [f"{n} {label}" for n, label in (
        (summary.retransmits, "results retransmitted after reconnects"),
        (summary.duplicates_sent, "acked results resent on purpose"),
        (summary.code_errors, "code fetch/hash errors"),
        (summary.connection_failures, "failed connections"),
        (summary.unacked_at_stop, "results unacked at stop"),
        (summary.held_at_stop, "tasks unfinished at stop"),
        (summary.rate_limited, "times rate-limited (results sent again)"),
        (summary.server_errors, "server errors (what they dropped was sent again)"),
    ) if n]
    if extras:
        out.append("also             " + "; ".join(extras))
    out.append(f"code fetched     {summary.code_fetches} time(s)")
    for problem in summary.problems:
        out.append(f"problem          {problem}")
    return "\n".join(out)
