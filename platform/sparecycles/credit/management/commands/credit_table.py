"""python manage.py credit_table: credit per result for each bundled app, fast vs slow machine.

Times every work unit of each bundled app natively (main.py in this CPython; the wasm
module in Node, through static/volunteer/wasm-runtime.js as the browser runs it), then
runs two batches of those units through the real services in-process (dispatch, report,
transitioner, credit_grant_many) at quorum 2, with simulated devices: half report the
measured times (×1, the fast machine), half four times those (×4, the slow machine). The
first batch calibrates the app version; the table is taken from the second.

Columns, in micro-credits per result (1 credit = 10^6 µ):
  declared    what the old code granted: the manifest's FLOPs estimate;
  raw ×1/×4   before normalisation: the reported time at the reference rate;
  norm ×1/×4  after normalisation: the same results' claims (credit.normalisation);
  granted     what each replica was granted: its work unit's canonical claim, lowered by
              the declared estimate where that is smaller.

Use a throwaway database:  SPARECYCLES_VAR_DIR=$(mktemp -d) python manage.py credit_table
"""

import datetime as dt
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sparecycles.credit.claims import (
    app_version_scale,
    calibration_cache_clear,
    claim_of,
    reference_gflops,
)
from sparecycles.credit.models import CreditGrant
from sparecycles.credit.normalisation import (
    micro_credit_for_flops,
    micro_credit_for_ms,
    reference_ms_of,
)
from sparecycles.projects.catalogue import bundled_app_install, bundled_app_names, bundled_app_read
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.projects.services import QuorumParams, batch_create
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.models import DeviceCredibility
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import device_connect

REPO = Path(settings.BASE_DIR)
NODE_RUNNER = """
import { readFileSync } from "node:fs";
import { runModule } from "./wasm-runtime.mjs";
const module = await WebAssembly.compile(readFileSync(process.argv[2]));
const out = [];
for (const input of JSON.parse(readFileSync(0, "utf8"))) {
  await runModule(module, "run", JSON.stringify(input));  // warm up: time the second run
  const started = performance.now();
  const output = JSON.parse(await runModule(module, "run", JSON.stringify(input)));
  out.push({ ms: performance.now() - started, output });
}
console.log(JSON.stringify(out));
"""


def native_python(bundled, inputs: list[dict]) -> list[tuple[float, object]]:
    main = getattr(bundled.module("main"), bundled.entry)
    timed = []
    for value in inputs:
        started = time.perf_counter()
        output = main(value)
        timed.append(((time.perf_counter() - started) * 1000, output))
    return timed


def native_wasm(bundled, inputs: list[dict]) -> list[tuple[float, object]]:
    node = shutil.which("node")
    if node is None:
        raise CommandError("node is needed to time the wasm app (apt-get install nodejs).")
    wasm = next(bundled.path.glob("*.wasm"))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "wasm-runtime.mjs").write_text(
            (REPO / "static/volunteer/wasm-runtime.js").read_text())
        (Path(folder) / "run.mjs").write_text(NODE_RUNNER)
        done = subprocess.run([node, str(Path(folder) / "run.mjs"), str(wasm)],
                              input=json.dumps(inputs), capture_output=True, text=True,
                              timeout=600, check=True)
    return [(row["ms"], row["output"]) for row in json.loads(done.stdout)]


class Command(BaseCommand):
    help = "Credit per result for each bundled app on a fast and a 4× slower machine."

    def add_arguments(self, parser):
        parser.add_argument("--units", type=int, default=8, help="work units per app")
        parser.add_argument("--slow", type=float, default=4.0, help="the slow machine's factor")
        parser.add_argument("--devices", type=int, default=3, help="devices per machine kind")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--apps", default="", help="comma-separated; default: all bundled")

    def handle(self, *args, units, slow, devices, seed, apps, **options):
        call_command("migrate", verbosity=0)  # a fresh SPARECYCLES_VAR_DIR starts empty
        if WorkUnit.objects.exists():
            raise CommandError("This database already holds work. Run on a throwaway one: "
                               "SPARECYCLES_VAR_DIR=$(mktemp -d) python manage.py credit_table")
        if units < 2 or devices < 3 or slow <= 0:
            raise CommandError("Use at least 2 units, 3 devices per kind and a positive --slow.")
        settings.SPARECYCLES = {**settings.SPARECYCLES, "RELIABLE_RETRY_WAIT_S": 0,
                                "DAILY_QUOTA_START": 10**6, "DAILY_QUOTA": 10**6,
                                "DISTINCT_NETWORKS": False}
        names = [n.strip() for n in apps.split(",") if n.strip()] or bundled_app_names()
        rows = [self.measure(name, units=units, slow=slow, devices=devices, seed=seed)
                for name in names]
        gflops = reference_gflops()
        self.stdout.write(f"{units} work units per app at quorum 2; {devices} devices ×1 and "
                          f"{devices} ×{slow:g}; reference device {gflops:g} GFLOPS; "
                          "micro-credits per result (mean)\n")
        self.stdout.write("| app | native ms/unit (×1) | declared (old) | raw ×1 | "
                          f"raw ×{slow:g} | raw ratio | norm ×1 | norm ×{slow:g} | norm ratio | "
                          "granted |")
        self.stdout.write("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            self.stdout.write(
                f"| {r['app']} | {r['native_ms']:.1f} | {r['declared']:,} | {r['raw_fast']:,.0f} "
                f"| {r['raw_slow']:,.0f} | {_ratio(r['raw_slow'], r['raw_fast'])} | "
                f"{r['norm_fast']:,.0f} | {r['norm_slow']:,.0f} | "
                f"{_ratio(r['norm_slow'], r['norm_fast'])} | {r['granted']:,.0f} |")

    def measure(self, name: str, *, units: int, slow: float, devices: int, seed: int) -> dict:
        bundled = bundled_app_read(name)
        inputs = bundled.generate_inputs(units, seed)
        timer = native_wasm if bundled.runtime == "wasm" else native_python
        timed = timer(bundled, inputs)
        version = bundled_app_install(bundled)
        fleet = [(device_connect(token=None, capabilities={"runtimes": [bundled.runtime]})
                  .device, factor) for factor in [1.0] * devices + [slow] * devices]
        # The table measures credit, not trust: the devices count as established (as if spot
        # checks had confirmed them), so validation lets any two of them settle a quorum.
        for device, _ in fleet:
            DeviceCredibility.objects.update_or_create(device=device, defaults={"confirmed": 20})
        self.run_batch(version, fleet, inputs * 3, timed * 3, name=f"{name} calibration")
        batch = self.run_batch(version, fleet, inputs, timed, name=f"{name} measured")

        calibration_cache_clear()  # the table shows the exact calibration after the runs
        scale = app_version_scale(app_version=version,
                                  device_ids={device.pk for device, _ in fleet})
        factor_of = {device.pk: factor for device, factor in fleet}
        gflops = reference_gflops()
        raw = {1.0: [], slow: []}
        norm = {1.0: [], slow: []}
        by_unit: dict[int, list] = {}
        for replica in Replica.objects.filter(workunit__batch=batch, validate_state="valid"):
            by_unit.setdefault(replica.workunit_id, []).append(replica)
        for group in by_unit.values():
            if {factor_of[r.device_id] for r in group} != {1.0, slow}:
                continue  # compare the machines on the same work units only
            for replica in group:
                claim = claim_of(replica)
                kind = factor_of[replica.device_id]
                raw[kind].append(micro_credit_for_ms(claim.elapsed_ms or 0,
                                                     reference_gflops=gflops))
                norm[kind].append(micro_credit_for_ms(reference_ms_of(claim, scale),
                                                      reference_gflops=gflops))
        granted = list(CreditGrant.objects.filter(workunit__batch=batch)
                       .values_list("amount_micro", flat=True))
        return {"app": name, "native_ms": statistics.mean(ms for ms, _ in timed),
                "declared": micro_credit_for_flops(bundled.flops_per_unit),
                "raw_fast": _mean(raw[1.0]), "raw_slow": _mean(raw[slow]),
                "norm_fast": _mean(norm[1.0]), "norm_slow": _mean(norm[slow]),
                "granted": _mean(granted)}

    @staticmethod
    def report(device, factor, replica, timed, by_seq, longest) -> None:
        # The task was sent long enough ago for the reported time to fit its wall time.
        Replica.objects.filter(pk=replica.pk).update(
            sent_at=timezone.now() - dt.timedelta(milliseconds=longest + 1000))
        unit = WorkUnit.objects.get(pk=replica.workunit_id)
        index = by_seq.get(json.dumps(unit.input, sort_keys=True))
        if index is None:  # a spot check of a known answer from elsewhere: answer it honestly
            ms = statistics.median(ms for ms, _ in timed)
            output = unit.known_output if unit.known_output is not None else unit.canonical_output
        else:
            ms, output = timed[index]
        replica_report(device=device, task_id=replica.task_id, ok=True,
                       output=json.loads(json.dumps(output)),
                       elapsed_ms=max(1, round(ms * factor)))

    def run_batch(self, version, fleet, inputs, timed, *, name: str) -> Batch:
        batch = batch_create(app_version=version, name=name, inputs=inputs,
                             quorum=QuorumParams(min_quorum=2, target_nresults=2))
        # By input, not by work unit: spot checks re-issue units of earlier batches.
        by_seq = {json.dumps(unit.input, sort_keys=True): i
                  for i, unit in enumerate(batch.workunits.order_by("seq"))}
        longest = max(ms for ms, _ in timed) * max(f for _, f in fleet)
        half = len(fleet) // 2
        # One fast and one slow device per work unit, so both compute the same units.
        pairs = [(fleet[i], fleet[half + i]) for i in range(half)]
        for round_ in range(10 * len(inputs) + 10):
            busy = False
            for pair in pairs:
                for device, factor in (pair if round_ % 2 else pair[::-1]):
                    for replica in tasks_dispatch(device=device, slots=1).replicas:
                        busy = True
                        self.report(device, factor, replica, timed, by_seq, longest)
            if not busy:
                break
        left = WorkUnit.objects.filter(batch=batch).exclude(state="completed").count()
        if left:
            raise CommandError(f"{name}: {left} work units did not complete.")
        return batch


def _mean(values) -> float:
    return statistics.mean(values) if values else 0.0


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "—"
