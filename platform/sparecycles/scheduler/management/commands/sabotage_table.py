"""python manage.py sabotage_table: how many wrong canonical results colluders get through.

Runs the real scheduler services (dispatch, report, transitioner, spot checks,
quarantine) in-process against the configured database, with simulated
devices answering at once: honest ones correctly, colluders all with the same
wrong answer. For each share of colluders, without and with spot checks, it
prints the share of completed work units whose canonical result is wrong.

Use a throwaway database:  SPARECYCLES_VAR_DIR=$(mktemp -d) python manage.py sabotage_table
"""

import random
from dataclasses import replace

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sparecycles.projects.models import App, Project, WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_version_create,
    batch_create,
    spot_check_batch_create,
)
from sparecycles.scheduler.services import replica_report, tasks_dispatch
from sparecycles.volunteers.models import Device
from sparecycles.volunteers.services import device_connect

CODE = b"def main(input):\n    return {'y': input['n'] * input['n']}\n"


def correct(value: dict) -> dict:
    return {"y": value["n"] * value["n"]}


class Command(BaseCommand):
    help = "Measure wrong canonical results against the share of colluders, ± spot checks."

    def add_arguments(self, parser):
        parser.add_argument("--workunits", type=int, default=200)
        parser.add_argument("--devices", type=int, default=40)
        parser.add_argument("--shares", default="0,0.1,0.3,0.5")
        parser.add_argument("--spot-rate", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, workunits, devices, shares, spot_rate, seed, **options):
        call_command("migrate", verbosity=0)  # a fresh SPARECYCLES_VAR_DIR starts empty
        if WorkUnit.objects.exists():
            raise CommandError("This database already holds work. Run on a throwaway one: "
                               "SPARECYCLES_VAR_DIR=$(mktemp -d) python manage.py sabotage_table")
        # Time does not pass in this simulation, so tie-breakers may go to anyone at once.
        settings.SPARECYCLES = {**settings.SPARECYCLES, "RELIABLE_RETRY_WAIT_S": 0,
                                "DAILY_QUOTA_START": 10**6, "DAILY_QUOTA": 10**6}
        try:
            share_list = [float(s) for s in shares.split(",")]
        except ValueError:
            raise CommandError("--shares takes numbers such as 0,0.1,0.3") from None
        rows = []
        for share in share_list:
            for rate in (0.0, spot_rate):
                rows.append(self.scenario(share=share, spot_rate=rate, workunits=workunits,
                                          devices=devices, seed=seed))
        self.stdout.write(f"quorum 2, {workunits} work units, {devices} devices "
                          f"(each its own volunteer), colluders all give the same wrong answer\n")
        self.stdout.write("| colluders | spot checks | completed | wrong canonical | "
                          "failed | colluders quarantined |")
        self.stdout.write("|---|---|---|---|---|---|")
        for row in rows:
            self.stdout.write(
                f"| {row['share']:.0%} | {row['rate']:.0%} | {row['completed']} | "
                f"{row['wrong']} ({row['wrong_share']:.1%}) | {row['failed']} | "
                f"{row['caught']} of {row['colluders']} |")

    def scenario(self, *, share, spot_rate, workunits, devices, seed):
        rng = random.Random(seed)
        with transaction.atomic():
            project = Project.objects.create(slug=f"sim-{share}-{spot_rate}",
                                             title="Sabotage simulation")
            app = App.objects.create(project=project, name=f"sim-{int(share * 100)}-"
                                     f"{int(spot_rate * 100)}", title="Squares",
                                     spot_check_rate=spot_rate)
            version = app_version_create(app=app, code=CODE)
            inputs = [{"n": i} for i in range(1, workunits + 1)]
            batch = batch_create(app_version=version, name="simulation", inputs=inputs,
                                 quorum=replace(QuorumParams(), min_quorum=2, target_nresults=2,
                                                max_total_results=8, max_success_results=6))
            if spot_rate:
                known = [({"n": n}, correct({"n": n})) for n in range(10**6, 10**6 + 50)]
                spot_check_batch_create(app_version=version, known=known)
        colluder_count = round(share * devices)
        fleet = [(device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device,
                  index < colluder_count) for index in range(devices)]
        for _ in range(workunits * 4):  # rounds, bounded
            if not batch.workunits.filter(state=WorkUnit.State.OPEN).exists():
                break
            rng.shuffle(fleet)
            for device, colluder in fleet:
                for replica in tasks_dispatch(device=device, slots=1, rng=rng).replicas:
                    output = {"y": -1} if colluder else correct(replica.workunit.input)
                    replica_report(device=device, task_id=replica.task_id, ok=True,
                                   output=output)
        done = batch.workunits.filter(state=WorkUnit.State.COMPLETED)
        wrong = sum(1 for wu in done if wu.canonical_output != correct(wu.input))
        completed = done.count()
        colluder_ids = [d.pk for d, colluder in fleet if colluder]
        return {
            "share": share, "rate": spot_rate, "completed": completed, "wrong": wrong,
            "wrong_share": wrong / completed if completed else 0.0,
            "failed": batch.workunits.filter(state=WorkUnit.State.FAILED).count(),
            "colluders": len(colluder_ids),
            "caught": Device.objects.filter(pk__in=colluder_ids, quarantined=True).count(),
        }
