"""python manage.py bench_validators: custom-validator throughput through the sandbox,
against the exact validator, in the same run.

It judges Monte-Carlo results (workunits/montecarlo) with montecarlo's validate.py in
the sandbox and with the built-in exact comparator in this process, and prints the cold
start, warm pairs per second at several batch sizes (2 pairs = one quorum-2 work unit
through the transitioner's prefetch) and the ratio to the exact validator.
"""

import math
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from sparecycles.sandbox.isolation import isolation
from sparecycles.sandbox.judging import SandboxComparator
from sparecycles.sandbox.pool import pool
from sparecycles.scheduler.validators import check_set, exact_equal


def results(count: int) -> list[dict]:
    return [{"seed": i, "samples": 200_000, "inside": 157_000 + i % 97,
             "estimate": 4 * (157_000 + i % 97) / 200_000} for i in range(count)]


class Command(BaseCommand):
    help = "Custom-validator pairs judged per second through the sandbox vs the exact one."

    def add_arguments(self, parser):
        parser.add_argument("--pairs", type=int, default=20_000,
                            help="Pairs judged per measurement (default 20,000).")

    def handle(self, *args, pairs, **options):
        code = (Path(settings.BASE_DIR) / "workunits/montecarlo/validate.py").read_text()
        outputs = results(pairs)
        pair_list = [(o, dict(o)) for o in outputs]

        started = time.perf_counter()
        verdicts = [exact_equal(a, b) for a, b in pair_list]
        exact_s = time.perf_counter() - started
        assert all(verdicts)
        exact_rate = pairs / exact_s

        mechanism = isolation().mechanism
        pool.close()
        started = time.perf_counter()
        with pool.lend(code):
            cold_s = time.perf_counter() - started
        self.stdout.write(f"sandbox: Pyodide under Node, isolated by {mechanism}; "
                          f"pool size {settings.SANDBOX['POOL_SIZE']}")
        self.stdout.write(f"cold start (new sandbox, code loaded): {cold_s:.2f} s")
        self.stdout.write(f"exact validator, in process: {exact_rate:,.0f} pairs/s")
        self.stdout.write(f"{'pairs per call':>15} {'pairs/s':>12} {'vs exact':>10}")
        for batch in (2, 20, 200, 2000):
            todo = pair_list[:max(batch, min(pairs, batch * 500))]
            pool.verdicts_forget()
            started = time.perf_counter()
            for start in range(0, len(todo), batch):
                chunk = todo[start:start + batch]
                # One per work unit, as the transitioner does; no time budget here.
                equal = SandboxComparator(code, budget_s=math.inf)
                equal.prefetch(chunk)
                assert all(equal(a, b) for a, b in chunk)
            rate = len(todo) / (time.perf_counter() - started)
            self.stdout.write(f"{batch:>15,} {rate:>12,.0f} {rate / exact_rate:>10.4f}")

        # A quorum-3 work unit with one dissenter, through check_set as the transitioner
        # calls it: 6 ordered pairs in one round trip.
        units = 500
        pool.verdicts_forget()
        started = time.perf_counter()
        for i in range(units):
            a = outputs[i]
            wrong = {**a, "inside": a["inside"] + 1}
            assert check_set([a, dict(a), wrong], SandboxComparator(code), min_quorum=2) == [0, 1]
        per_unit_ms = (time.perf_counter() - started) / units * 1000
        started = time.perf_counter()
        for i in range(units):
            a = outputs[i]
            check_set([a, dict(a), {**a, "inside": a["inside"] + 1}], exact_equal, min_quorum=2)
        exact_unit_ms = (time.perf_counter() - started) / units * 1000
        self.stdout.write(f"check_set, quorum 3 with a dissenter: {per_unit_ms:.3f} ms per work "
                          f"unit in the sandbox, {exact_unit_ms:.3f} ms exact "
                          f"({per_unit_ms / exact_unit_ms:.0f}x)")
        pool.close()
