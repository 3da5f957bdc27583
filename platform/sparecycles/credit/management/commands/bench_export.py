"""python manage.py bench_export: time the stats export of a large seeded site, count queries.

Seeds 100,000 volunteers and 200,000 hosts (by default), each host with a credited grant,
into a throwaway database of its own — var/bench-<pid>.sqlite3, or bench_<pid>_<name> beside
the configured PostgreSQL database — runs stats_export once into a temporary directory,
prints seconds, queries and rows, and drops the database again. The configured database and
the stats directory are never touched.
"""

import os
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from sparecycles.credit import bench_export


class Command(BaseCommand):
    help = "Time the BOINC stats export on a large seeded site (throwaway DB), with queries."

    def add_arguments(self, parser):
        parser.add_argument("--volunteers", type=int, default=100_000)
        parser.add_argument("--hosts", type=int, default=200_000)
        parser.add_argument("--teams", type=int, default=1_000)

    def handle(self, *args, volunteers, hosts, teams, **options):
        log = self.stdout.write
        old_name = connection.settings_dict["NAME"]
        connection.settings_dict.setdefault("TEST", {})["NAME"] = (
            str(Path(settings.VAR_DIR) / f"bench-{os.getpid()}.sqlite3")
            if connection.vendor == "sqlite" else f"bench_{os.getpid()}_{old_name}"[:63])
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True,
                                                  serialize=False)
        log(f"Throwaway {connection.vendor} database: {name}")
        try:
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
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
