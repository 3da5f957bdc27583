"""Seed volunteers, teams and devices with credit, then time the stats export (bench_export).

Rows are bulk-created as if months of work had been credited: each device gets one
grant for one valid replica (the real CreditGrant rows the export sums), each volunteer a
credit totals row. The timing then runs the real stats_export and counts its queries.
Kept apart from the command so a test can run it small.
"""

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sparecycles.projects.models import App, AppVersion, Batch, Project, WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device, Team, Volunteer

from .averages import rac_key
from .models import MICRO, CreditGrant, TeamCredit, VolunteerCredit
from .stats_export import stats_export

CHUNK = 5_000
BENCH_CODE = b"def main(input):\n    return input\n"
PLATFORMS = [("Linux", "x86_64", "x86"), ("Windows", "10.0.0", "x86"), ("Android", "14", "arm"),
             ("macOS", "14.4", "arm")]


@dataclass(frozen=True)
class Result:
    volunteers: int
    hosts: int
    seconds: float
    queries: int
    counts: dict[str, int]


def seed(*, volunteers: int, hosts: int, teams: int = 0, rng_seed: int = 1,
         log: Callable[[str], None] = print) -> None:
    """`volunteers` volunteers (most with credit, some opted out, a few deleted) and
    `hosts` devices spread over them, each device with one credited grant."""
    rng = random.Random(rng_seed)
    now = timezone.now()
    project = Project.objects.create(slug=f"bench-export-{rng_seed}", title="Export bench")
    app = App.objects.create(project=project, name=f"bench-export-{rng_seed}", title="Bench")
    version = AppVersion.objects.create(app=app, number=1, code=BENCH_CODE)
    batch = Batch.objects.create(app_version=version, name="bench")
    team_ids = [t.pk for t in Team.objects.bulk_create(
        [Team(name=f"Export team {rng_seed}-{i}", slug=f"export-team-{rng_seed}-{i}")
         for i in range(teams)])]
    TeamCredit.objects.bulk_create([TeamCredit(team_id=pk, credit_micro=MICRO) for pk in team_ids])
    volunteer_ids: list[int] = []
    for start in range(0, volunteers, CHUNK):
        with transaction.atomic():
            made = Volunteer.objects.bulk_create([
                Volunteer(name=f"Volunteer {i} <&> \x07", show_anonymous=rng.random() < 0.1,
                          in_stats_exports=rng.random() > 0.05,
                          deleted_at=now if rng.random() < 0.01 else None,
                          team_id=rng.choice(team_ids) if team_ids and rng.random() < 0.5
                          else None)
                for i in range(start, min(volunteers, start + CHUNK))])
            rows = []
            for v in made:
                rac, rac_time = rng.lognormvariate(2, 1.5), time.time() - rng.uniform(0, 86400)
                rows.append(VolunteerCredit(
                    volunteer_id=v.pk, credit_micro=int(rng.lognormvariate(6, 2) * MICRO) + 1,
                    rac=rac, rac_time=rac_time, rac_key=rac_key(rac=rac, rac_time=rac_time)))
            VolunteerCredit.objects.bulk_create(rows)
            volunteer_ids += [v.pk for v in made]
        log(f"  {len(volunteer_ids):,} volunteers")
    sent = now - dt.timedelta(hours=1)
    S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState
    for start in range(0, hosts, CHUNK):
        n = min(hosts, start + CHUNK) - start
        with transaction.atomic():
            devices = []
            for i in range(start, start + n):
                os_name, os_version, vendor = rng.choice(PLATFORMS)
                devices.append(Device(
                    volunteer_id=volunteer_ids[i % len(volunteer_ids)],
                    token_hash=Device.hash_token(f"bench-export-{rng_seed}-{i}"),
                    capabilities={"runtimes": ["pyodide"], "cores": rng.choice([2, 4, 8, 16]),
                                  "memory_mb": 8192},
                    os_name=os_name, os_version=os_version, p_vendor=vendor,
                    p_model="Chromium 131", p_fpops=rng.uniform(1e8, 5e9),
                    timezone=rng.choice([-18000, 0, 3600, 19800]), last_seen=now))
            devices = Device.objects.bulk_create(devices)
            units = WorkUnit.objects.bulk_create([
                WorkUnit(batch=batch, app_version=version, seq=start + k + 1, input={"i": k},
                         state=WorkUnit.State.COMPLETED, min_quorum=1, target_nresults=1)
                for k in range(n)])
            replicas = Replica.objects.bulk_create([
                Replica(workunit=wu, device=d, volunteer_id=d.volunteer_id, server_state=S.OVER,
                        outcome=O.SUCCESS, validate_state=V.VALID, sent_at=sent,
                        received_at=sent, output={})
                for wu, d in zip(units, devices, strict=True)])
            CreditGrant.objects.bulk_create([
                CreditGrant(replica=r, workunit_id=r.workunit_id, project=project,
                            volunteer_id=r.volunteer_id, device_id=r.device_id,
                            amount_micro=rng.randint(1, 100) * MICRO,
                            granted_at=now - dt.timedelta(seconds=rng.uniform(0, 30 * 86400)))
                for r in replicas])
        log(f"  {start + n:,} hosts")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for model in (Volunteer, Device, VolunteerCredit, CreditGrant):
                cursor.execute(f'ANALYZE "{model._meta.db_table}"')
        else:
            cursor.execute("ANALYZE")


def time_export(directory: Path) -> Result:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        counts = stats_export(directory)
        seconds = time.perf_counter() - started
    return Result(volunteers=Volunteer.objects.count(), hosts=Device.objects.count(),
                  seconds=seconds, queries=len(queries), counts=counts)
