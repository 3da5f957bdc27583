"""python manage.py bench_platform [--quick] [--modes embedded,scale-out] [--sizes 100,1000,10000]

Runs the swarm against a live server in each run mode and at each number of
connected volunteers, beside two ceilings measured in the same run (a bare
echo consumer, and the scheduler's services called in-process), profiles the
service loop, and writes docs/performance.md (and prints it).

Everything runs in throwaway worlds it creates and removes: a SQLite file in a
temporary folder for the embedded mode; for scale-out a fresh database on the
PostgreSQL server of --postgres-url and a key prefix of its own on the Redis of
--redis-url. The configured database is never touched. Loopback only.
"""

import asyncio
import datetime as dt
import importlib.util
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sparecycles.gateway.management.commands.serve import SERVERS as SERVE_SERVERS
from tools.bench import live, procs, report
from tools.bench.servers import (
    EMBEDDED,
    REPO,
    SCALE_OUT,
    BenchError,
    World,
    server_start,
    world_create,
)

FDS_PER_CONNECTION = 1  # per process: the swarm holds one end, the server the other
FD_HEADROOM = 1000


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _ints(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"{text!r}: give whole numbers separated by commas, "
                           f"e.g. 100,1000,10000.") from None
    if not values or min(values) < 1:
        raise CommandError(f"{text!r}: give at least one number, each at least 1.")
    return values


def _raise_fd_limit() -> int:
    """Raise this process's soft open-file limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _default_postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url
    return "postgres://postgres@127.0.0.1:5432/postgres"


def _versions() -> dict:
    import daphne
    import django

    found = {"Python": sys.version.split()[0], "Django": django.get_version(),
             "daphne": daphne.__version__}
    for name, command in (("PostgreSQL", ["psql", "--version"]),
                          ("Redis", ["redis-server", "--version"])):
        try:
            text = subprocess.run(command, capture_output=True, text=True, timeout=5).stdout
        except OSError:
            continue
        words = text.replace("v=", " ").split()
        version = next((w for w in words if w[:1].isdigit()), "")
        if version:
            found[name] = version
    return found


class Command(BaseCommand):
    help = ("Benchmark the platform: the swarm against a live server (embedded and scale-out, "
            "100 to 10,000 connected volunteers) beside its ceilings; writes "
            "docs/performance.md.")

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true",
                            help="A two-minute subset: 100 and 1,000 volunteers, short windows.")
        parser.add_argument("--modes", default="embedded,scale-out",
                            help="Run modes to measure. Default: %(default)s.")
        parser.add_argument("--sizes", help="Connected volunteers per run "
                                            "(default 100,1000,10000; --quick 100,1000).")
        parser.add_argument("--active", type=int, default=100,
                            help="Volunteers computing; the rest are idle. Default: %(default)s.")
        parser.add_argument("--window", type=float, help="Seconds measured per run "
                                                         "(default 20; --quick 8).")
        parser.add_argument("--warmup", type=float, help="Seconds before each window "
                                                         "(default 3; --quick 2).")
        parser.add_argument("--backlog", type=int, help="Work units kept open "
                                                        "(default 20000; --quick 8000).")
        parser.add_argument("--ceiling-seconds", type=float,
                            help="Seconds of the in-process service loop (default 12; --quick 5).")
        parser.add_argument("--workers", type=int, default=2,
                            help="daphne workers in scale-out. Default: %(default)s.")
        parser.add_argument("--idle-probe", type=float, default=3.0, metavar="SECONDS",
                            help="How long to measure the server with only idle volunteers "
                                 "connected. Default: %(default)s.")
        parser.add_argument("--paced-at", type=int, default=1000,
                            help="Also measure latency below saturation at this size "
                                 "(0: never). Default: %(default)s.")
        parser.add_argument("--paced", default="0.25,0.5", metavar="FRACTIONS",
                            help="Offered loads of the paced runs, as fractions of the "
                                 "saturated rate. Default: %(default)s.")
        parser.add_argument("--servers", default="daphne,uvicorn",
                            help="ASGI servers to run scale-out's live runs under, in the same "
                                 "world (`manage.py serve --server`); the first also gets "
                                 "the idle and 10,000-connection runs, the others the sizes up "
                                 "to --paced-at. Ones not installed are skipped. "
                                 "Default: %(default)s.")
        parser.add_argument("--no-echo", action="store_true", help="Skip the bare-echo baseline.")
        parser.add_argument("--no-profile", action="store_true", help="Skip the profile.")
        parser.add_argument("--postgres-url", default=_default_postgres_url(),
                            help="PostgreSQL server for scale-out (a database of our own is "
                                 "created on it and dropped). Default: DATABASE_URL's server, "
                                 "else postgres://postgres@127.0.0.1:5432/postgres.")
        parser.add_argument("--redis-url",
                            default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
                            help="Redis for scale-out (keys under a prefix of our own). "
                                 "Default: REDIS_URL, else %(default)s.")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "docs" /
                                                    "performance.md"),
                            help="Where to write the report ('-' for nowhere). "
                                 "Default: docs/performance.md.")
        parser.add_argument("--json", dest="json_path",
                            help="Also write the raw measurements as JSON here.")

    def handle(self, *args, **options):
        # SIGTERM stops a run like Ctrl-C: servers stopped, throwaway worlds removed.
        signal.signal(signal.SIGTERM, _interrupt)
        quick = options["quick"]
        sizes = _ints(options["sizes"] or ("100,1000" if quick else "100,1000,10000"))
        modes = [m.strip() for m in options["modes"].split(",") if m.strip()]
        for mode in modes:
            if mode not in (EMBEDDED, SCALE_OUT):
                raise CommandError(f"Unknown mode {mode!r}: use embedded and/or scale-out.")
        window = options["window"] or (8.0 if quick else 20.0)
        warmup = options["warmup"] if options["warmup"] is not None else (2.0 if quick else 3.0)
        backlog = options["backlog"] or (8000 if quick else 20000)
        ceiling_s = options["ceiling_seconds"] or (5.0 if quick else 12.0)
        active, workers = options["active"], options["workers"]
        try:
            paced = [float(x) for x in options["paced"].split(",") if x.strip()]
        except ValueError:
            raise CommandError("--paced takes fractions separated by commas, e.g. "
                               "0.25,0.5.") from None
        if any(not 0 < f < 1 for f in paced):
            raise CommandError("--paced fractions must be between 0 and 1.")
        notes: list[str] = []
        servers = []
        for name in (n.strip() for n in options["servers"].split(",") if n.strip()):
            if name not in SERVE_SERVERS:
                raise CommandError(f"--servers: {name!r} is not one of "
                                   f"{', '.join(sorted(SERVE_SERVERS))}.")
            if importlib.util.find_spec(name) is None:
                notes.append(f"Scale-out not measured under {name}: it is not installed.")
                continue
            servers.append(name)
        servers = servers or ["daphne"]
        if active < 1 or workers < 1:
            raise CommandError("--active and --workers must be at least 1.")
        for url in (options["postgres_url"], options["redis_url"]):
            host = urllib.parse.urlsplit(url).hostname or ""
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise CommandError(f"{url}: the benchmark only uses services on this machine "
                                   f"(127.0.0.1).")

        fd_limit = _raise_fd_limit()
        fit = [s for s in sizes if s * FDS_PER_CONNECTION + FD_HEADROOM <= fd_limit]
        if fit != sizes:
            notes.append(f"Skipped {', '.join(f'{s:,}' for s in sizes if s not in fit)} "
                         f"connected volunteers: the open-file limit is {fd_limit:,} per "
                         f"process (raise the hard limit, `ulimit -Hn`).")
            sizes = fit
        command = "python manage.py bench_platform" + "".join(
            f" {shlex.quote(a)}" for a in sys.argv[2:])
        started = dt.datetime.now(dt.UTC)
        results: dict = {
            "command": command, "started": started.isoformat(), "machine": procs.machine(),
            "versions": _versions(), "load": {"start": list(procs.load_average())},
            "fd_limit": fd_limit, "notes": notes, "modes": [],
            "settings": {"sizes": sizes, "active": active, "window_s": window,
                         "warmup_s": warmup, "backlog": backlog, "workers": workers,
                         "ceiling_s": ceiling_s},
        }
        self.log(f"Benchmark: modes {', '.join(modes)}; sizes {sizes}; {active} computing; "
                 f"{window:.0f}-s windows; load average {results['load']['start'][0]:.2f}.")
        for mode in modes:
            results["modes"].append(self.mode_run(
                mode, sizes=sizes, active=active, window=window, warmup=warmup,
                backlog=backlog, ceiling_s=ceiling_s, workers=workers if mode == SCALE_OUT else 1,
                paced_at=options["paced_at"], paced=paced, idle_probe=options["idle_probe"],
                echo=not options["no_echo"],
                profile=not options["no_profile"], postgres_url=options["postgres_url"],
                redis_url=options["redis_url"], quick=quick,
                servers=servers if mode == SCALE_OUT else ["daphne"]))
        results["load"]["end"] = list(procs.load_average())
        results["duration_s"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
        text = report.render(results)
        if options["output"] != "-":
            path = Path(options["output"])
            report.section_write(path, text)  # other commands' sections stay
            self.log(f"Wrote {path}.")
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(results, indent=2, default=str))
        self.stdout.write("\n" + text)

    def log(self, line: str) -> None:
        self.stderr.write(line)
        self.stderr.flush()

    # --- one run mode ---------------------------------------------------------------------
    def mode_run(self, mode: str, *, sizes: list[int], active: int, window: float,
                 warmup: float, backlog: int, ceiling_s: float, workers: int, paced_at: int,
                 paced: list[float], idle_probe: float, echo: bool, profile: bool,
                 postgres_url: str, redis_url: str, quick: bool,
                 servers: list[str]) -> dict:
        self.log(f"\n== {mode}")
        data: dict = {"mode": mode, "workers": workers, "sizes": [], "server": servers[0]}
        try:
            scale_out = mode == SCALE_OUT
            world = world_create(tag=f"{os.getpid()}-{mode}",
                                 postgres_url=postgres_url if scale_out else "",
                                 redis_url=redis_url if scale_out else "")
        except BenchError as exc:
            self.log(f"  skipped: {exc}")
            return {**data, "skipped": str(exc)}
        try:
            data["database"] = world.database
            loaded = world.worker("work", "--open-units", str(backlog))
            self.log(f"  {world.database}: {loaded['added']:,} work units loaded in "
                     f"{loaded['seconds']} s")
            if echo:
                try:
                    data["echo"] = self.echo_run(world, workers=workers,
                                                 seconds=min(window, 10))
                except Exception as exc:
                    self.log(f"  bare echo failed: {type(exc).__name__}: {exc}")
                    data.setdefault("problems", []).append(f"bare echo failed: {exc}")
            data["ceiling"] = self.ceiling_run(world, processes=workers, devices=active,
                                               seconds=ceiling_s)
            if workers > 1:
                # The same loop in one process: if several are slower together, they fight
                # over the same rows.
                data["ceiling_one"] = self.ceiling_run(world, processes=1, devices=active,
                                                       seconds=ceiling_s)
            if profile:
                world.worker("work", "--open-units", str(backlog))
                data["profile"] = world.worker("profile", "--devices", str(active), "--seconds",
                                               str(min(3.0 if quick else 6.0, ceiling_s)))
                self.log(f"  profile: {data['profile']['queries_per_result']} queries per "
                         f"result")
                data["live_profile"] = self.live_profile(world, active=active,
                                                         seconds=4.0 if quick else 8.0)
            data.update(self.live_runs(world, sizes=sizes, active=active, window=window,
                                       warmup=warmup, backlog=backlog, workers=workers,
                                       paced_at=paced_at, paced=paced,
                                       idle_probe=idle_probe, server=servers[0]))
            # The same world, the same ceilings, another ASGI server: which serves cheaper.
            others = [s for s in sizes if s <= max(paced_at, min(sizes))]
            for other in servers[1:]:
                self.log(f"  under {other}:")
                try:
                    data.setdefault("alternatives", []).append({"server": other, **self.live_runs(
                        world, sizes=others, active=active, window=window, warmup=warmup,
                        backlog=backlog, workers=workers, paced_at=paced_at, paced=paced,
                        idle_probe=idle_probe, server=other)})
                except Exception as exc:
                    self.log(f"  {other} failed: {type(exc).__name__}: {exc}")
                    data.setdefault("problems", []).append(f"{other} failed: {exc}")
        except Exception as exc:  # one mode failing must not lose the other's numbers
            self.log(f"  failed: {type(exc).__name__}: {exc}")
            data["skipped"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            world.close()
        return data

    def echo_run(self, world: World, *, workers: int, seconds: float) -> dict:
        server = server_start(world, workers=workers, app="tools.bench.echo:application")
        try:
            before, busy = server.usage(), procs.machine_busy_s()[0]
            result = asyncio.run(live.echo_run(url=server.url, connections=100, seconds=seconds))
            after = server.usage()
            result["server_cores"] = round((after.cpu_s - before.cpu_s) / result["seconds"], 3)
            result["server_waiting"] = round((after.wait_s - before.wait_s) / result["seconds"], 3)
            result["machine_busy"] = round((procs.machine_busy_s()[0] - busy) / result["seconds"],
                                           3)
            result["per_cpu_s"] = round(result["round_trips"] / max(1e-9, after.cpu_s -
                                                                    before.cpu_s), 1)
        finally:
            server.stop()
        self.log(f"  bare echo: {result['round_trips_per_s']:,.0f} round trips/s, server "
                 f"{result['server_cores']:.2f} cores")
        return result

    def live_profile(self, world: World, *, active: int, seconds: float) -> dict | None:
        """A short run against one profiled daphne: where the live server's time goes."""
        out = world.workdir / "live-profile.json"
        server = server_start(world, app="tools.bench.instrumented:application",
                              env={"BENCH_PROFILE_OUT": str(out)})
        try:
            swarm = asyncio.run(live.profiled_run(url=server.url, active=active,
                                                  seconds=seconds))
            server.process.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 60
            while not out.exists() and server.alive() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            server.stop()
        if not out.exists():
            self.log(f"  live profile: the server wrote nothing:\n{server.log_tail(2000)}")
            return None
        result = {**json.loads(out.read_text()), **swarm}
        self.log(f"  live profile: {result['queries'] / max(1, swarm['accepted']):.1f} queries "
                 f"per accepted result")
        return result

    def ceiling_run(self, world: World, *, processes: int, devices: int, seconds: float) -> dict:
        per = max(1, devices // processes)
        children = [subprocess.Popen(
            [sys.executable, "-m", "tools.bench.worker", "ceiling", "--devices", str(per),
             "--seconds", str(seconds)], cwd=REPO, env=world.env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True) for _ in range(processes)]
        busy = procs.machine_busy_s()[0]
        wall = time.perf_counter()
        runs = []
        for child in children:
            out, err = child.communicate(timeout=seconds + 300)
            if child.returncode != 0:
                raise BenchError(f"the service loop failed:\n{err[-3000:]}")
            runs.append(json.loads(out.strip().splitlines()[-1]))
        busy = (procs.machine_busy_s()[0] - busy) / (time.perf_counter() - wall)
        since = min(r["since"] for r in runs)
        until = max(r["until"] for r in runs)
        span = (dt.datetime.fromisoformat(until) - dt.datetime.fromisoformat(since)
                ).total_seconds()
        counts = world.worker("counts", "--windows", json.dumps([[since, until]]))[0]
        result = {
            "processes": processes, "devices": per * processes,
            "results_per_s": round(sum(r["results_per_s"] for r in runs), 1),
            "validated_per_s": round(counts["validated"] / span, 1),
            "dispatch_ms": round(sum(r["dispatch_ms"] for r in runs) / len(runs), 3),
            "report_ms": round(sum(r["report_ms"] for r in runs) / len(runs), 3),
            "refused": [r["refused"] for r in runs if r["refused"]],
            "errors": dict(sum((Counter(r.get("errors", {})) for r in runs), Counter())),
            "cores": round(sum(r["cpu_s"] / r["seconds"] for r in runs), 3),
            "waiting": round(sum(r["waiting_s"] / r["seconds"] for r in runs), 3),
            "per_cpu_s": round(sum(r["results"] for r in runs) / max(1e-9, sum(
                r["cpu_s"] for r in runs)), 1),
            "machine_busy": round(busy, 3),
        }
        self.log(f"  service loop ({processes} process{'es' if processes > 1 else ''}): "
                 f"{result['results_per_s']:,.0f} results/s, {result['validated_per_s']:,.0f} "
                 f"validated/s" + (f"; database errors: {result['errors']}"
                                   if result["errors"] else ""))
        return result

    def live_runs(self, world: World, *, sizes: list[int], active: int, window: float,
                  warmup: float, backlog: int, workers: int, paced_at: int,
                  paced: list[float], idle_probe: float, server: str = "daphne") -> dict:
        loaded = world.worker("work", "--open-units", str(backlog))
        open_units = loaded["open_before"] + loaded["added"]
        server = server_start(world, workers=workers, asgi_server=server)
        runs: list[dict] = []
        acked: set[str] = set()
        fastest = 0.0
        try:
            time.sleep(1.0)
            empty = round(server.daphne_usage().rss_kb / 1024, 1)
            self.log(f"  server up ({len(server.daphne_pids())} daphne, {empty:.0f} MB)")
            for size in sizes:
                self.log(f"  {size:,} connected:")
                # Two phases of (warm-up + window) at the fastest rate seen, with room to spare:
                # the volunteers must never run out of work inside a window.
                needed = 2 * 2 * (warmup + window + 5) * max(fastest, 500.0) / 2
                if open_units - acked_units(acked) < needed:
                    top = world.worker("work", "--open-units", str(int(needed) + backlog))
                    open_units = top["open_before"] + top["added"] + acked_units(acked)
                run = asyncio.run(live.size_run(
                    url=server.url, server=server, size=size, active=active, window_s=window,
                    warmup_s=warmup, idle_probe_s=idle_probe,
                    paced_fractions=paced if size == paced_at else [],
                    db_pids=world.db_pids, log=self.log, pending=world.pending_results))
                runs.append(run.as_dict())
                acked |= run.acked_task_ids
                fastest = max([fastest, *(p.accepted_per_s for p in run.phases)])
                if server.process.poll() is not None:
                    raise BenchError(f"the server died:\n{server.log_tail()}")
        finally:
            server.stop()
        phases = [phase for run in runs for phase in run["phases"]]
        if phases:
            found = world.worker("counts", "--windows", json.dumps(
                [[phase["since"], phase["until"]] for phase in phases]))
            for phase, counts in zip(phases, found, strict=True):
                live.phase_counts_add(phase, counts)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
            file.write("\n".join(sorted(acked)))
        try:
            audit = world.worker("audit", "--acked", file.name)
        finally:
            os.unlink(file.name)
        self.log(f"  audit: {audit['acked']:,} acked results, problems: "
                 f"{audit['problems'] or 'none'}")
        return {"sizes": runs, "empty_rss_mb": empty, "audit": audit}


def acked_units(acked: set[str]) -> float:
    """Work units the acknowledged results used up, at quorum 2."""
    return len(acked) / 2
