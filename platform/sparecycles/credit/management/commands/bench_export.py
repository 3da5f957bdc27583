"""python manage.py bench_export: time the stats export of a large seeded site, count queries.

Seeds 100,000 volunteers and 200,000 hosts (by default), each host with a credited grant,
into a throwaway database of its own — var/bench-<pid>.sqlite3, or bench_<pid>_<name> beside
the configured PostgreSQL database — runs stats_export once into a temporary directory,
prints seconds, queries and rows, and drops the database again. The configured database and
the stats directory are never touched.
"""

import tempfile
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection

from sparecycles.credit import bench_export
from sparecycles.db.throwaway import throwaway_database


class Command(BaseCommand):
    help = "Time the BOINC stats export on a large seeded site (throwaway DB), with queries."

    def add_arguments(self, parser):
        parser.add_argument("--volunteers", type=int, default=100_000)
        parser.add_argument("--hosts", type=int, default=200_000)
        parser.add_argument("--teams", type=int, default=1_000)

    def handle(self, *args, volunteers, hosts, teams, **options):
        log = self.stdout.write
        with throwaway_database(log):
            started = time.perf_counter()
            log(f"Seeding {volunteers:,} volunteers, {hosts:,} hosts, {teams:,} teams…")
            bench_export.seed(volunteers=volunteers, hosts=hosts, teams=teams, log=log)
            log(f"  seeded in {time.perf_counter() - started:.1f} s")
            with tempfile.TemporaryDirectory() as tmp:
                result = bench_export.time_export(Path(tmp) / "stats")
                sizes = {p.name: p.stat().st_size
                         for p in (Path(tmp) / "stats").iterdir()}
            log(f"\nstats_export ({connection.vendor}): {result.seconds:.1f} s, "
                f"{result.queries} queries")
            log("rows written: " + ", ".join(f"{v:,} {k}" for k, v in result.counts.items()))
            log("files: " + ", ".join(f"{k} {v / 2**20:.1f} MiB"
                                      for k, v in sorted(sizes.items())))
