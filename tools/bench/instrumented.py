"""The product's ASGI app with a profiler in every thread and every query counted.

`daphne tools.bench.instrumented:application` serves exactly what
`sparecycles.asgi:application` serves; on SIGUSR1 (or at exit) it writes, to the
JSON file named by BENCH_PROFILE_OUT: the cProfile statistics of all its threads merged (the
event loop and the ORM thread alike), and every query by shape and by the
Spare Cycles function that issued it. bench_platform uses it for a short extra
run, to say where the live server's time goes beyond the service loop.
"""

import atexit
import cProfile
import json
import os
import pstats
import signal
import sys
import threading
import time
from collections import Counter

from django.db.backends.signals import connection_created

from sparecycles.asgi import application  # noqa: F401  (what daphne serves)

from .ceiling import _area, _short, _statement

OUT = os.environ.get("BENCH_PROFILE_OUT", "")
_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_queries: Counter = Counter()
_query_s: Counter = Counter()
_started = time.perf_counter()


def _thread_bootstrap(frame, event, arg):
    """Runs at a new thread's first profile event: give the thread a profiler of its own
    (enabling it replaces this function for the thread)."""
    profile = cProfile.Profile()
    with _lock:
        _profiles.append(profile)
    profile.enable()


def _origin() -> str:
    """The innermost Spare Cycles function (not this module) on the stack: who asked."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if "/sparecycles/" in filename and "/bench/" not in filename:
            return f"{_short(filename)}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "(elsewhere)"


def _count(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        key = (_origin(), sql)  # placeholders, not values: shapes are made at the end
        _queries[key] += 1
        _query_s[key] += time.perf_counter() - started


def _wrap(sender, connection, **kwargs):
    # Fired again on every reconnect of the same connection object: wrap it once.
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def _dump() -> None:
    if not OUT or os.path.exists(OUT):
        return
    with _lock:
        profiles = list(_profiles)
    stats = None
    for profile in profiles:
        try:
            profile.create_stats()
        except Exception:  # another thread's profiler: take what it has
            profile.snapshot_stats()
        if not getattr(profile, "stats", None):
            continue
        stats = pstats.Stats(profile) if stats is None else (stats.add(profile) or stats)
    areas: Counter = Counter()
    functions = []
    if stats is not None:
        for function, row in stats.stats.items():
            areas[_area(function)] += row[2]
        functions = [{"function": f"{_short(fn[0])}:{fn[1]}({fn[2]})", "calls": row[1],
                      "tottime_s": round(row[2], 4), "cumtime_s": round(row[3], 4)}
                     for fn, row in sorted(stats.stats.items(), key=lambda i: -i[1][2])[:25]]
    by_origin: Counter = Counter()
    by_origin_s: Counter = Counter()
    shapes: Counter = Counter()
    shape_s: Counter = Counter()
    queries = dict(_queries)  # a copy: the store and validation threads keep counting
    for (origin, sql), n in queries.items():
        by_origin[origin] += n
        by_origin_s[origin] += _query_s.get((origin, sql), 0.0)
        shapes[(origin, _statement(sql))] += n
        shape_s[(origin, _statement(sql))] += _query_s.get((origin, sql), 0.0)
    with open(OUT + ".tmp", "w") as file:
        json.dump({
            "seconds": round(time.perf_counter() - _started, 2),
            "threads": len(profiles),
            "areas_s": {area: round(t, 3) for area, t in areas.most_common()},
            "functions": functions,
            "queries": sum(queries.values()),
            "by_origin": [{"origin": origin, "queries": n,
                           "seconds": round(by_origin_s[origin], 3)}
                          for origin, n in by_origin.most_common(25)],
            "statements": [{"origin": origin, "sql": sql, "queries": n,
                            "seconds": round(shape_s[(origin, sql)], 3)}
                           for (origin, sql), n in shapes.most_common(25)],
        }, file)
    os.replace(OUT + ".tmp", OUT)  # whole, or not at all


if OUT:
    connection_created.connect(_wrap)
    threading.setprofile(_thread_bootstrap)
    _main = cProfile.Profile()
    _profiles.append(_main)
    _main.enable()
    atexit.register(_dump)
    # Asked for by the benchmark as soon as its swarm is done: a daphne that is stopped
    # while its ORM thread still has work queued may take too long to exit for atexit.
    signal.signal(signal.SIGUSR1, lambda *_: _dump())
