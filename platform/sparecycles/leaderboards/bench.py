"""Seed a large grid and time the leaderboard pages and credit grants (bench_leaderboards).

Seeding writes rows straight into the maintained aggregates (as if credit_grant had run
for months); the timings then go through the real views (django.test.Client) and the
real credit_grant. Kept apart from the command so tests can run it small.
"""

import datetime as dt
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone

from sparecycles.credit.averages import rac_key
from sparecycles.credit.models import (
    MICRO,
    ProjectCredit,
    TeamCredit,
    VolunteerCredit,
    VolunteerProjectCredit,
)
from sparecycles.credit.selectors import PAGE_SIZE
from sparecycles.credit.services import credit_grant
from sparecycles.projects.models import App, AppVersion, Batch, Project, WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device, Team, Volunteer

CHUNK = 5_000
BENCH_CODE = b"def main(input):\n    return input\n"


@dataclass(frozen=True)
class Seeded:
    volunteers: int
    teams: int
    project: Project
    viewer_username: str
    viewer_password: str


def _aggregate(rng: random.Random, now: float) -> tuple[int, float, float, float]:
    """A plausible (credit_micro, rac, rac_time, rac_key): heavy-tailed totals, RAC as of
    some moment in the last two weeks."""
    credit = int(rng.lognormvariate(6, 2.2) * MICRO)
    rac_time = now - rng.uniform(0, 14 * 86400)
    rac = min(credit / MICRO, rng.lognormvariate(2, 1.8))
    return credit, rac, rac_time, rac_key(rac=rac, rac_time=rac_time)


def seed(*, volunteers: int, teams: int, rng_seed: int = 1,
         log: Callable[[str], None] = print) -> Seeded:
    rng = random.Random(rng_seed)
    now = time.time()
    started = time.perf_counter()
    project = Project.objects.create(slug="bench", title="Benchmark project")
    team_rows = Team.objects.bulk_create(
        [Team(name=f"Team {i:05d}", slug=f"team-{i:05d}") for i in range(teams)],
        batch_size=CHUNK)
    team_ids = [t.pk for t in team_rows]
    totals: dict[int, list] = {pk: [0, 0.0, 0] for pk in team_ids}  # credit, rac at now, n
    batch: list[tuple[Volunteer, tuple]] = []
    made = 0
    for i in range(volunteers):
        credit, rac, rac_time, key = (0, 0.0, None, -1e9) if rng.random() < 0.05 else \
            _aggregate(rng, now)
        team_id = rng.choice(team_ids) if team_ids and rng.random() < 0.6 else None
        batch.append((Volunteer(name=f"Volunteer {i}", team_id=team_id,
                                show_anonymous=rng.random() < 0.1),
                      (credit, rac, rac_time, key)))
        if team_id is not None:
            row = totals[team_id]
            row[0] += credit
            row[1] += rac * math.exp(-(now - rac_time) * math.log(2) / 604_800) if rac_time else 0
            row[2] += 1
        if len(batch) == CHUNK or i == volunteers - 1:
            with transaction.atomic():
                created = Volunteer.objects.bulk_create([v for v, _ in batch])
                rows = [dict(zip(("credit_micro", "rac", "rac_time", "rac_key"), t,
                                 strict=True)) for _, t in batch]
                VolunteerCredit.objects.bulk_create([
                    VolunteerCredit(volunteer_id=v.pk, **row)
                    for v, row in zip(created, rows, strict=True)])
                VolunteerProjectCredit.objects.bulk_create([
                    VolunteerProjectCredit(project=project, volunteer_id=v.pk, **row)
                    for v, row in zip(created, rows, strict=True) if row["credit_micro"] > 0])
            made += len(batch)
            batch = []
            log(f"  {made:,} volunteers")
    with transaction.atomic():
        team_credit = []
        for team in team_rows:
            credit, rac, members = totals[team.pk]
            team.member_count = members
            row = TeamCredit(team_id=team.pk, credit_micro=credit)
            row.rac, row.rac_time = (rac, now) if rac > 0 else (0.0, None)
            row.refresh_rac_key()
            team_credit.append(row)
        Team.objects.bulk_update(team_rows, ["member_count"], batch_size=CHUNK)
        TeamCredit.objects.bulk_create(team_credit, batch_size=CHUNK)
        ProjectCredit.objects.create(project=project,
                                     credit_micro=sum(t[0] for t in totals.values()))
    # The logged-in viewer sits near the bottom: the worst case for counting who is ahead.
    username, password = "bench-viewer", "bench-viewer-pw-1"
    user = get_user_model().objects.create_user(username, password=password)
    Volunteer.objects.filter(pk=VolunteerCredit.objects.filter(credit_micro__gt=0)
                             .order_by("credit_micro", "pk").values("pk")[:1]).update(user=user)
    _analyze()
    log(f"  seeded in {time.perf_counter() - started:.1f} s")
    return Seeded(volunteers=volunteers, teams=teams, project=project,
                  viewer_username=username, viewer_password=password)


def _analyze() -> None:
    """Give the planner the statistics (and PostgreSQL the visibility map, for index-only
    scans) that a site's database has after autovacuum; a fresh bulk load has neither."""
    from django.db import connection

    tables = [Volunteer._meta.db_table, Team._meta.db_table, VolunteerCredit._meta.db_table,
              TeamCredit._meta.db_table, VolunteerProjectCredit._meta.db_table]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # VACUUM cannot run inside a transaction (as in the tests): ANALYZE can.
            verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            for table in tables:
                cursor.execute(f'{verb} "{table}"')
        else:
            cursor.execute("ANALYZE")


def fresh_valid_replicas(*, project: Project, count: int, rng_seed: int = 2) -> list[Replica]:
    """`count` replicas judged valid and not yet credited, one per random volunteer."""
    rng = random.Random(rng_seed)
    app = App.objects.create(project=project, name="bench-app", title="Bench")
    version = AppVersion.objects.create(app=app, number=1, code=BENCH_CODE,
                                        flops_per_unit=432e9 * 5)  # 5 credit a unit
    batch = Batch.objects.create(app_version=version, name="bench")
    workunits = WorkUnit.objects.bulk_create([
        WorkUnit(batch=batch, app_version=version, seq=i + 1, input={"i": i},
                 state=WorkUnit.State.COMPLETED, min_quorum=1, target_nresults=1)
        for i in range(count)])
    ids = list(Volunteer.objects.values_list("pk", flat=True))
    chosen = rng.sample(ids, min(count, len(ids)))
    devices = Device.objects.bulk_create([
        Device(volunteer_id=pk, token_hash=Device.hash_token(f"bench-{pk}")) for pk in chosen])
    sent = timezone.now() - dt.timedelta(minutes=5)
    S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState
    replicas = Replica.objects.bulk_create([
        Replica(workunit=wu, device=device, volunteer_id=device.volunteer_id, server_state=S.OVER,
                outcome=O.SUCCESS, validate_state=V.VALID, sent_at=sent, received_at=sent,
                output={"i": wu.seq})
        for wu, device in zip(workunits, devices, strict=False)])
    return list(Replica.objects.filter(pk__in=[r.pk for r in replicas])
                .select_related("workunit__app_version__app"))


@dataclass(frozen=True)
class Timing:
    label: str
    p50_ms: float
    p95_ms: float
    n: int


def _percentiles(label: str, samples: list[float]) -> Timing:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, math.ceil(0.95 * len(samples)) - 1)]
    return Timing(label, statistics.median(samples) * 1000, p95 * 1000, len(samples))


def time_get(client: Client, url: str, repeat: int) -> list[float]:
    client.get(url)  # warm: templates, query plans, caches
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
    return samples


def measure_pages(seeded: Seeded, *, repeat: int) -> list[Timing]:
    from sparecycles.credit.selectors import project_board, team_board, volunteer_board

    # ALLOWED_HOSTS is whatever the site runs with; "localhost" is in the default.
    anonymous = Client(SERVER_NAME="localhost")
    viewer = Client(SERVER_NAME="localhost")
    if not viewer.login(username=seeded.viewer_username, password=seeded.viewer_password):
        raise RuntimeError("the benchmark viewer could not log in")
    results = [_percentiles("baseline: GET /healthz", time_get(anonymous, "/healthz", repeat))]
    boards = [
        ("volunteers", "/leaderboards/volunteers/",
         lambda: volunteer_board(page=1, size=PAGE_SIZE).pages),
        ("teams", "/leaderboards/teams/", lambda: team_board(page=1).pages),
        ("project", f"/leaderboards/projects/{seeded.project.slug}/",
         lambda: project_board(project=seeded.project, page=1).pages),
    ]
    for name, url, pages_of in boards:
        pages = pages_of()
        for order in ("credit", "rac"):
            for where, page in (("first", 1), ("middle", (pages + 1) // 2), ("last", pages)):
                samples = time_get(anonymous, f"{url}?order={order}&page={page}", repeat)
                results.append(_percentiles(f"{name} by {order}, {where} page ({page}/{pages})",
                                            samples))
    for order in ("credit", "rac"):
        samples = time_get(viewer, f"/leaderboards/volunteers/?order={order}&page=1"
                                   "&format=json", repeat)
        results.append(_percentiles(f"volunteers JSON by {order}, page 1, logged-in viewer "
                                    "near the bottom (your-rank line)", samples))
    return results


def measure_grants(seeded: Seeded, *, count: int) -> Timing:
    replicas = fresh_valid_replicas(project=seeded.project, count=count)
    samples = []
    for replica in replicas:
        started = time.perf_counter()
        with transaction.atomic():  # as the transitioner's transaction holds it
            grant = credit_grant(replica=replica)
        samples.append(time.perf_counter() - started)
        if grant is None:
            raise RuntimeError(f"replica {replica.pk} was not credited")
    return _percentiles(f"credit_grant on a fresh valid replica (incl. commit, "
                        f"{len(samples)} grants)", samples)


def explain_plans(seeded: Seeded) -> list[tuple[str, str]]:
    """The database's plans for the queries behind a board page and a rank."""
    from sparecycles.credit.selectors import on_board, ordered

    volunteers = VolunteerCredit.objects.all()
    by_credit, by_rac = on_board(volunteers, "credit"), on_board(volunteers, "rac")
    someone = by_credit.order_by("credit_micro", "pk").first()  # near the bottom: most ahead
    per_project = VolunteerProjectCredit.objects.filter(project=seeded.project)
    teams = TeamCredit.objects.all()
    middle = by_credit.count() // 2

    def ids(qs, order):  # a page's ids: what credit.selectors._page asks the index for
        return ordered(qs, order).values_list("pk", flat=True)

    return [
        ("volunteers by credit, a middle page's ids",
         ids(by_credit, "credit")[middle:middle + PAGE_SIZE].explain()),
        ("volunteers by RAC, a middle page's ids",
         ids(by_rac, "rac")[middle:middle + PAGE_SIZE].explain()),
        ("volunteers by credit, last page's ids (read backwards)",
         ids(by_credit, "credit").reverse()[:PAGE_SIZE].explain()),
        ("then the page's rows by id",
         VolunteerCredit.objects.select_related("volunteer__team").filter(
             pk__in=list(ids(by_credit, "credit")[:50])).explain()),
        ("count of volunteers on the board (credit)", _count_explain(by_credit)),
        ("count of volunteers on the board (RAC)", _count_explain(by_rac)),
        ("rank by credit: rows above",
         _count_explain(volunteers.filter(credit_micro__gt=someone.credit_micro))),
        ("rank by credit: rows level, older",
         _count_explain(volunteers.filter(credit_micro=someone.credit_micro, pk__lt=someone.pk))),
        ("rank by RAC: rows above", _count_explain(volunteers.filter(rac_key__gt=someone.rac_key))),
        ("project board by credit, a middle page's ids",
         ids(on_board(per_project, "credit"), "credit")[middle:middle + PAGE_SIZE].explain()),
        ("project board by RAC, a middle page's ids",
         ids(on_board(per_project, "rac"), "rac")[middle:middle + PAGE_SIZE].explain()),
        ("teams by credit, first page's ids",
         ids(on_board(teams, "credit"), "credit")[:PAGE_SIZE].explain()),
        ("teams by RAC, first page's ids",
         ids(on_board(teams, "rac"), "rac")[:PAGE_SIZE].explain()),
    ]


def _count_explain(qs) -> str:
    from django.db import connection

    sql, params = qs.order_by().values("pk").query.sql_with_params()
    prefix = "EXPLAIN QUERY PLAN" if connection.vendor == "sqlite" else "EXPLAIN"
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} SELECT COUNT(*) FROM ({sql}) AS rows_ahead", params)
        return "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
