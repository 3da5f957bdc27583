"""The ceiling: the scheduler's services called in a loop, in-process, with no socket.

A round of simulated devices asks for tasks together (tasks_dispatch_many +
task_payload, as the socket's feeder does) and computes them natively; the
round's results are stored in one batch (results_store) and validated in
another (workunits_validate), as the socket's intake does under load.
What the live server adds on top of this — WebSocket framing, JSON, the event
loop, the hop to the ORM thread — is what the live/ceiling ratio measures.

The loop runs where the server runs its ORM calls: in the thread-sensitive sync
thread under a running event loop (`sync_to_async`), so the after-commit pushes
(`async_to_sync(group_send)`) hop to that loop as they do in daphne, instead of
starting a new thread and event loop per push as they would from plain sync code.
"""

import asyncio
import cProfile
import datetime as dt
import json
import os
import pstats
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from sparecycles.scheduler.dispatch import Ask, tasks_dispatch_many
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.services import _rng, task_payload
from sparecycles.validation.services import workunits_validate
from sparecycles.volunteers.services import device_connect

from . import procs
from .work import bench_app_version, window_counts

SLOTS = 4
GROUP = 25  # devices per round: their results are stored and validated together
CAPABILITIES = {"runtimes": ["pyodide"], "cores": 1, "memory_mb": 1024, "mobile": False}


@dataclass
class Loop:
    devices: list
    main: object
    results: int = 0
    dispatches: int = 0
    dispatch_s: float = 0.0
    report_s: float = 0.0
    refused: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # database errors, by kind
    # With a query counter (the profile's), queries are counted per phase too.
    queries_now: Callable[[], int] | None = None
    dispatch_queries: int = 0
    report_queries: int = 0

    def _queries(self) -> int:
        return self.queries_now() if self.queries_now else 0

    def step(self, index: int) -> None:
        """One device asks for tasks and reports them. A database error (e.g. a deadlock the
        database broke) is counted and the work left for a later step, as a client whose
        frame failed would send it again: the dispatch returns the device's unreported tasks."""
        try:
            self._step(index)
        except DatabaseError as exc:
            self.errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"] += 1

    def _step(self, index: int) -> None:
        """A round of GROUP devices: they ask for tasks together and compute them; their
        results are stored in one batch and validated in another, as the server's feeder
        and intake do under load."""
        group = min(GROUP, len(self.devices))  # each device asks once per round
        devices = [self.devices[(index * group + offset) % len(self.devices)]
                   for offset in range(group)]
        started, counted = time.perf_counter(), self._queries()
        dispatches = tasks_dispatch_many([Ask(device_id=d.pk, slots=SLOTS) for d in devices],
                                         rng=_rng)
        payloads = [[task_payload(r) for r in d.replicas] for d in dispatches]
        self.dispatch_s += time.perf_counter() - started
        self.dispatch_queries += self._queries() - counted
        self.dispatches += len(devices)
        reports = []
        for device, tasks in zip(devices, payloads, strict=True):
            for task in tasks:
                output = json.loads(json.dumps(self.main(task["input"])))  # as on the wire
                reports.append(Report(device_id=device.pk, task_id=task["task_id"], ok=True,
                                      output=output, elapsed_ms=1))
        if not reports:
            return
        started, counted = time.perf_counter(), self._queries()
        stored = results_store(reports)
        if stored.workunit_ids:
            workunits_validate(workunit_ids=stored.workunit_ids)
        self.report_s += time.perf_counter() - started
        self.report_queries += self._queries() - counted
        for ack in stored.acks:
            if ack.accepted:
                self.results += 1
            else:
                self.refused[ack.reason] += 1


def _loop(devices: int) -> Loop:
    version = bench_app_version()
    namespace: dict = {}
    exec(compile(bytes(version.code), f"<{version}>", "exec"), namespace)  # our own code
    made = [device_connect(token=None, client_name="bench-ceiling", client_version="1",
                           capabilities=CAPABILITIES).device for _ in range(devices)]
    return Loop(devices=made, main=namespace[version.entry])


def _as_in_the_server(function, **kwargs):
    """Call `function` in the ORM thread of a running event loop, as daphne would."""
    async def main():
        try:
            return await sync_to_async(function, thread_sensitive=True)(**kwargs)
        finally:
            await sync_to_async(close_old_connections, thread_sensitive=True)()

    return asyncio.run(main())


def ceiling_run(*, devices: int, seconds: float) -> dict:
    """Run the loop for `seconds`; results/s and what the database says was validated."""
    return _as_in_the_server(_ceiling, devices=devices, seconds=seconds)


def _ceiling(*, devices: int, seconds: float) -> dict:
    loop = _loop(devices)
    since = timezone.now()
    started, cpu_started = time.perf_counter(), time.process_time()
    waited = procs.usage(os.getpid()).wait_s
    index = 0
    while time.perf_counter() - started < seconds:
        loop.step(index)
        index += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    waited = procs.usage(os.getpid()).wait_s - waited
    until = timezone.now()
    counts = window_counts(since=since, until=until)
    return {
        "devices": devices, "seconds": round(elapsed, 3),
        "cpu_s": round(cpu, 3), "waiting_s": round(waited, 3),
        "since": since.isoformat(), "until": until.isoformat(),
        "results": loop.results, "results_per_s": round(loop.results / elapsed, 1),
        "dispatches": loop.dispatches,
        "dispatch_ms": round(1000 * loop.dispatch_s / max(1, loop.dispatches), 3),
        "report_ms": round(1000 * loop.report_s / max(1, loop.results), 3),
        "refused": dict(loop.refused), "errors": dict(loop.errors), **counts,
    }


# --- where the time goes ---------------------------------------------------------------------

AREAS = (
    # Not work: a thread waiting for the network, a lock or its next job.
    ("idle: waiting for the network, a lock or the next job",
     ("'poll' of 'select.epoll'", "'select' of", "'acquire' of '_thread.lock'",
      "'get' of '_queue.SimpleQueue'", "_thread.lock' objects>")),
    ("the profiler's own bookkeeping", ("/tools/bench/",)),
    ("database driver and server round trips", ("sqlite3", "psycopg")),
    ("Django ORM (building SQL, making model instances)", ("/django/db/",)),
    ("WebSocket and HTTP server and sockets (twisted, autobahn, daphne)",
     ("/twisted/", "/autobahn/", "/daphne/", "/txaio/", "/zope/", "_socket.socket")),
    ("Channels, asgiref and asyncio (consumers, channel layer, hops to the ORM thread)",
     ("/channels/", "/channels_redis/", "/redis/", "/asgiref/", "/asyncio/", "/concurrent/",
      "/threading.py", "/queue.py", "_contextvars")),
    ("other Django", ("/django/",)),
    ("Spare Cycles code", ("/sparecycles/",)),
    ("JSON", ("/json/", "_json")),
)


def _area(function: tuple) -> str:
    filename, _, name = function
    text = f"{filename} {name}"
    for area, needles in AREAS:
        if any(needle in text for needle in needles):
            return area
    return "Python and the rest (json, stdlib, interpreter)"


def _statement(sql: str) -> str:
    """A query's shape: literals and parameter lists folded, first 110 characters."""
    shape = re.sub(r"'[^']*'", "?", sql)
    shape = re.sub(r"\b\d+(\.\d+)?\b", "?", shape)
    shape = re.sub(r"\((\?, )+\?\)", "(…)", shape)
    shape = re.sub(r"\s+", " ", shape)
    return shape[:110]


def profile_run(*, devices: int, seconds: float, top: int = 12) -> dict:
    """The same loop under cProfile, with every query captured: where each result's time goes."""
    return _as_in_the_server(_profile, devices=devices, seconds=seconds, top=top)


def _profile(*, devices: int, seconds: float, top: int) -> dict:
    loop = _loop(devices)
    profiler = cProfile.Profile()
    counted: Counter = Counter()  # by SQL as sent (placeholders, not values)
    took_s: Counter = Counter()
    slowest: dict[str, tuple[float, str, object]] = {}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            counted[sql] += 1
            took_s[sql] += took
            if took >= slowest.get(sql, (-1.0,))[0]:
                slowest[sql] = (took, sql, params)

    loop.queries_now = lambda: counted.total()
    started = time.perf_counter()
    index = 0
    with connection.execute_wrapper(timed):
        profiler.enable()
        while time.perf_counter() - started < seconds:
            loop.step(index)
            index += 1
        profiler.disable()
    elapsed = time.perf_counter() - started
    shapes: Counter = Counter()
    shape_time: Counter = Counter()
    for sql, n in counted.items():
        shapes[_statement(sql)] += n
        shape_time[_statement(sql)] += took_s[sql]
    heaviest = next((sql for sql, _ in took_s.most_common()
                     if sql.lstrip().upper().startswith("SELECT")), None)
    stats = pstats.Stats(profiler)
    total_tt = sum(row[2] for row in stats.stats.values()) or 1.0
    areas: Counter = Counter()
    for function, row in stats.stats.items():
        areas[_area(function)] += row[2]
    functions = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    results = max(1, loop.results)
    return {
        "devices": devices, "seconds": round(elapsed, 2), "results": loop.results,
        "results_per_s": round(loop.results / elapsed, 1),
        "queries": counted.total(),
        "queries_per_result": round(counted.total() / results, 2),
        "dispatches": loop.dispatches,
        "queries_per_dispatch": round(loop.dispatch_queries / max(1, loop.dispatches), 2),
        "queries_per_report": round(loop.report_queries / results, 2),
        "tasks_per_dispatch": round(loop.results / max(1, loop.dispatches), 2),
        "dispatch_share": round(loop.dispatch_s / max(1e-9, loop.dispatch_s + loop.report_s), 3),
        "dispatch_ms": round(1000 * loop.dispatch_s / max(1, loop.dispatches), 3),
        "report_ms": round(1000 * loop.report_s / results, 3),
        "areas": [(area, round(100 * t / total_tt, 1)) for area, t in areas.most_common()],
        "functions": [
            {"function": f"{_short(fn[0])}:{fn[1]}({fn[2]})", "calls": row[1],
             "tottime_ms_per_result": round(1000 * row[2] / results, 3),
             "cumtime_ms_per_result": round(1000 * row[3] / results, 3)}
            for fn, row in functions],
        "statements": [
            {"sql": shape, "per_result": round(n / results, 2),
             "ms_per_result": round(1000 * shape_time[shape] / results, 3)}
            for shape, n in shapes.most_common(top)],
        "database": connection.vendor,
        "plan": _plan(*slowest[heaviest][1:]) if heaviest else None,
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }


def _plan(sql: str, params) -> dict:
    """The database's plan for the slowest run of the SELECT that took the most time."""
    from django.db import transaction

    explain = ("EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql"
               else "EXPLAIN QUERY PLAN ")
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(explain + sql, params)
                rows = cursor.fetchall()
                shown = cursor.db.ops.last_executed_query(cursor, sql, params)
            transaction.set_rollback(True)  # EXPLAIN ANALYZE ran it (and took its locks)
    except Exception as exc:  # a plan is a bonus; say why it is missing
        return {"sql": sql, "plan": f"(no plan: {exc})"}
    lines = [str(row[-1]) if connection.vendor != "postgresql" else str(row[0]) for row in rows]
    return {"sql": str(shown or sql).removeprefix(explain), "plan": "\n".join(lines)}


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/platform/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
