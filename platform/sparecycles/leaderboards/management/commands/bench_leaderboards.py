"""python manage.py bench_leaderboards: p50/p95 of leaderboard pages and credit grants.

Seeds 100,000 volunteers and 5,000 teams (by default) into a throwaway database of
its own — var/bench-<pid>.sqlite3, or bench_<pid>_<name> beside the configured
PostgreSQL database — measures, prints a table, and drops it again. The configured
database is never touched, nor is any test database running beside it.
"""

import time

from django.core.management.base import BaseCommand

from sparecycles.db.throwaway import throwaway_database
from sparecycles.leaderboards import bench


class Command(BaseCommand):
    help = "Time leaderboard pages and credit grants on a large seeded grid (throwaway DB)."

    def add_arguments(self, parser):
        parser.add_argument("--volunteers", type=int, default=100_000)
        parser.add_argument("--teams", type=int, default=5_000)
        parser.add_argument("--repeat", type=int, default=30,
                            help="Requests per page measured (default 30).")
        parser.add_argument("--grants", type=int, default=300,
                            help="credit_grant calls measured (default 300).")
        parser.add_argument("--explain", action="store_true",
                            help="Also print the database's query plans.")
        parser.add_argument("--keep", action="store_true",
                            help="Keep the throwaway database afterwards (to inspect it).")

    def handle(self, *args, volunteers, teams, repeat, grants, explain, keep, **options):
        log = self.stdout.write
        with throwaway_database(log, keep=keep):
            log(f"Seeding {volunteers:,} volunteers and {teams:,} teams…")
            seeded = bench.seed(volunteers=volunteers, teams=teams, log=log)
            started = time.perf_counter()
            timings = bench.measure_pages(seeded, repeat=repeat)
            timings.append(bench.measure_grants(seeded, count=grants))
            log(f"Measured in {time.perf_counter() - started:.1f} s.\n")
            self._table(timings)
            if explain:
                for label, plan in bench.explain_plans(seeded):
                    log(f"\n-- {label}\n{plan}")

    def _table(self, timings: list[bench.Timing]) -> None:
        base = timings[0].p50_ms or 1e-9
        width = max(len(t.label) for t in timings)
        self.stdout.write(f"{'what':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}  {'p50 ×base':>9}")
        for t in timings:
            self.stdout.write(f"{t.label:<{width}}  {t.p50_ms:8.2f}  {t.p95_ms:8.2f}  "
                              f"{t.p50_ms / base:9.1f}")
