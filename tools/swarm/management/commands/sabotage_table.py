"""python manage.py sabotage_table: what colluders and random cheaters get through, at the
defaults of a freshly loaded app.

Runs the real services in-process (dispatch, report, validation, spot checks, quarantine,
revalidation, credit) against the configured database, with simulated devices that
answer at once: honest ones correctly, colluders all with the same wrong answer (and,
the attack of issue 16, asking for work together, one right after the other), random
cheaters each with a different wrong answer. The app is set up the way the catalogue
loader sets up a bundled one: the manifest quorum of the bundled apps (2 of 2, up to
6 replicas, 4 successes), the app's default credibility threshold and spot-check
settings, and a few known answers computed natively. Time does not pass, so a
tie-breaker may go to any device at once (RELIABLE_RETRY_WAIT_S=0).

For each mix it prints completed / wrong / failed work units, the bad devices' share
of credit, the tasks sent per completed work unit, how many bad devices were
quarantined and how concentrated device pairs are. `--old-rules` measures the rules
before issue 16 (plain majority, no automatic spot checks, new devices may pair) for
comparison.

Use a throwaway database:
    SPARECYCLES_TOOLS=1 SPARECYCLES_VAR_DIR=$(mktemp -d) python manage.py sabotage_table
"""

import datetime as dt
import random
from collections import Counter
from dataclasses import replace
from itertools import combinations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from sparecycles.credit.models import CreditGrant
from sparecycles.projects.models import App, Project, WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_version_create,
    batch_create,
    spot_check_batch_create,
)
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Device
from sparecycles.volunteers.services import device_connect

CODE = b"def main(input):\n    return {'y': input['n'] * input['n']}\n"
BUNDLED_QUORUM = QuorumParams(min_quorum=2, target_nresults=2, max_error_results=3,
                              max_total_results=6, max_success_results=4, delay_bound=600)
OLD_RULES = {"ESTABLISHED_AFTER": 0, "SPOT_CHECK_NEW": 0.0, "SPOT_CHECK_MIN": 0.0,
             "MINORITY_LIMIT": 0, "PAIR_MAX_MEETINGS": 10**6}


def correct(value: dict) -> dict:
    return {"y": value["n"] * value["n"]}


class Command(BaseCommand):
    help = "Wrong canonical results, failures and credit of colluders and cheaters, at defaults."

    def add_arguments(self, parser):
        parser.add_argument("--workunits", type=int, default=150)
        parser.add_argument("--devices", type=int, default=30)
        parser.add_argument("--shares", default="0,0.1,0.3,0.5")
        parser.add_argument("--cheater-shares", default="0.1,0.3")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--old-rules", action="store_true",
                            help="The rules before issue 16, for comparison.")

    def handle(self, *args, workunits, devices, shares, cheater_shares, seed, old_rules,
               **options):
        call_command("migrate", verbosity=0)  # a fresh SPARECYCLES_VAR_DIR starts empty
        if WorkUnit.objects.exists():
            raise CommandError("This database already holds work. Run on a throwaway one: "
                               "SPARECYCLES_TOOLS=1 SPARECYCLES_VAR_DIR=$(mktemp -d) "
                               "python manage.py sabotage_table")
        changes = {"RELIABLE_RETRY_WAIT_S": 0, "DAILY_QUOTA_START": 10**6, "DAILY_QUOTA": 10**6}
        if old_rules:
            changes |= OLD_RULES
        settings.SPARECYCLES = {**settings.SPARECYCLES, **changes}
        try:
            mixes = ([("colluder", float(s)) for s in shares.split(",") if s]
                     + [("cheater", float(s)) for s in cheater_shares.split(",") if s])
        except ValueError:
            raise CommandError("--shares takes numbers such as 0,0.1,0.3") from None
        rows = [self.scenario(kind=kind, share=share, workunits=workunits, devices=devices,
                              seed=seed, old_rules=old_rules, index=index)
                for index, (kind, share) in enumerate(mixes)]
        rules = "old rules (majority, no automatic spot checks)" if old_rules else "defaults"
        self.stdout.write(f"{rules}; quorum 2 of 2 (max 6 replicas, 4 successes), "
                          f"{workunits} work units, {devices} devices (each its own "
                          "volunteer); colluders ask together and agree on one wrong answer\n")
        self.stdout.write("| bad devices | completed | wrong canonical | failed | open | "
                          "bad devices' credit | tasks per completed (second half) | quarantined | "
                          "max pair meetings |")
        self.stdout.write("|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            self.stdout.write(
                f"| {row['share']:.0%} {row['kind']}s | {row['completed']} | "
                f"{row['wrong']} ({row['wrong_share']:.1%}) | {row['failed']} "
                f"({row['failed_share']:.1%}) | {row['open']} | {row['bad_credit']:.1%} | "
                f"{row['tasks_per_completed']:.2f} ({row['steady']:.2f}) | "
                f"{row['caught']} of {row['bad']} | "
                f"{row['max_meetings']} (mean {row['mean_meetings']:.2f}) |")

    def scenario(self, *, kind, share, workunits, devices, seed, old_rules, index):
        rng = random.Random(seed)
        with transaction.atomic():
            project = Project.objects.create(slug=f"sim-{index}", title="Sabotage simulation")
            app = App.objects.create(project=project, name=f"sim-{index}", title="Squares")
            if old_rules:
                app.credibility_threshold = 0.5
                app.save(update_fields=["credibility_threshold"])
            version = app_version_create(app=app, code=CODE)
            inputs = [{"n": i} for i in range(1, workunits + 1)]
            batch = batch_create(app_version=version, name="simulation", inputs=inputs,
                                 quorum=replace(BUNDLED_QUORUM))
            if not old_rules:  # what the catalogue loader computes natively for a bundled app
                count = settings.SPARECYCLES["KNOWN_ANSWERS"]
                spot_check_batch_create(app_version=version, known=[
                    ({"n": n}, correct({"n": n}))
                    for n in range(workunits + 1, workunits + 1 + count)])
        bad_count = round(share * devices)
        fleet = [(device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device,
                  index < bad_count) for index in range(devices)]
        bad_ids = {d.pk for d, bad in fleet if bad}
        sent = Replica.objects.filter(workunit__app_version__app=app, sent_at__isnull=False)
        finished = batch.workunits.filter(state=WorkUnit.State.COMPLETED)
        mark = None  # when half the work was done: steady state after it
        for _ in range(workunits * 4):  # rounds, bounded
            if not batch.workunits.filter(state=WorkUnit.State.OPEN).exists():
                break
            if mark is None and finished.count() >= workunits // 2:
                mark = timezone.now()
            honest = [item for item in fleet if not item[1]]
            bad = [item for item in fleet if item[1]]
            rng.shuffle(honest)
            rng.shuffle(bad)
            cut = rng.randrange(len(honest) + 1)
            # Bad devices ask one right after the other (connecting together).
            for device, is_bad in honest[:cut] + bad + honest[cut:]:
                for replica in tasks_dispatch(device=device, slots=1, rng=rng).replicas:
                    answer = correct(replica.workunit.input)
                    if is_bad and kind == "colluder":
                        answer = {"y": -answer["y"] - 1}
                    elif is_bad:
                        answer = {"y": rng.randrange(10**12)}
                    # Credit is measured work: each task "took" a second of the minute
                    # since it was sent (the wall time bounds the reported time).
                    Replica.objects.filter(pk=replica.pk).update(
                        sent_at=timezone.now() - dt.timedelta(minutes=1))
                    replica_report(device=device, task_id=replica.task_id, ok=True,
                                   output=answer, elapsed_ms=1000)
        units = batch.workunits.all()
        done = [wu for wu in units if wu.state == WorkUnit.State.COMPLETED]
        wrong = sum(1 for wu in done if wu.canonical_output != correct(wu.input))
        failed = sum(1 for wu in units if wu.state == WorkUnit.State.FAILED)
        grants = CreditGrant.objects.filter(project=project)
        total = grants.aggregate(s=Sum("amount_micro"))["s"] or 0
        bad_credit = grants.filter(device_id__in=bad_ids).aggregate(s=Sum("amount_micro"))["s"]
        tasks = Replica.objects.filter(workunit__app_version__app=app,
                                       sent_at__isnull=False).count()
        meetings = pair_meetings(app_id=app.pk)
        steady = 0.0
        if mark is not None:
            # Units completed after the mark: their own replicas, plus the spot checks sent
            # after it (spot checks belong to no unit of the batch).
            later = [u.pk for u in done if u.completed_at > mark]
            if later:
                steady = (sent.filter(workunit_id__in=later, spot_check=False).count()
                          + sent.filter(spot_check=True, sent_at__gt=mark).count()) / len(later)
        return {
            "kind": kind, "share": share, "completed": len(done), "wrong": wrong,
            "wrong_share": wrong / len(done) if done else 0.0,
            "failed": failed, "failed_share": failed / len(units),
            "open": sum(1 for wu in units if wu.state == WorkUnit.State.OPEN),
            "bad_credit": (bad_credit or 0) / total if total else 0.0,
            "tasks_per_completed": tasks / len(done) if done else 0.0,
            "steady": steady,
            "bad": len(bad_ids),
            "caught": Device.objects.filter(pk__in=bad_ids, quarantined=True).count(),
            "max_meetings": max(meetings.values(), default=0),
            "mean_meetings": (sum(meetings.values()) / len(meetings)) if meetings else 0.0,
        }


def pair_meetings(*, app_id: int | None = None, batch_id: int | None = None) -> Counter:
    """For each pair of devices, in how many work units both held a (non spot-check) replica."""
    replicas = Replica.objects.filter(device_id__isnull=False, spot_check=False,
                                      sent_at__isnull=False)
    if app_id is not None:
        replicas = replicas.filter(workunit__app_version__app_id=app_id)
    if batch_id is not None:
        replicas = replicas.filter(workunit__batch_id=batch_id)
    holders: dict[int, set[int]] = {}
    for workunit_id, device_id in replicas.values_list("workunit_id", "device_id"):
        holders.setdefault(workunit_id, set()).add(device_id)
    meetings: Counter = Counter()
    for devices in holders.values():
        for pair in combinations(sorted(devices), 2):
            meetings[pair] += 1
    return meetings
