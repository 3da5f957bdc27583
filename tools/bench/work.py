"""Django-side helpers of the benchmark and the chaos tests: load work, count, audit.

They run inside `python -m tools.bench.worker` against the bench database,
never in the process that orchestrates a run.
"""

import datetime as dt
import time
from collections.abc import Iterable

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from sparecycles.projects.models import App, AppVersion, Project, WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_version_create,
    batch_create,
    spot_check_batch_create,
)
from sparecycles.scheduler.models import Replica

S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState

# Trivial on purpose: the swarm runs it natively, and a benchmark of the platform must not
# spend its CPU computing squares.
BENCH_CODE = b"def main(input):\n    n = input['n']\n    return {'n': n, 'square': n * n}\n"
BENCH_SLUG = "bench"
BENCH_APP = "bench-squares"
# BOINC's usual shape at quorum 2: two replicas, agree or add one, give up after six.
QUORUM_2 = QuorumParams(min_quorum=2, target_nresults=2, max_error_results=3,
                        max_total_results=6, max_success_results=4, delay_bound=3600)


def bench_app_version() -> AppVersion:
    """The synthetic app's version, installed on first use."""
    app = App.objects.filter(project__slug=BENCH_SLUG, name=BENCH_APP).first()
    if app is None:
        owner, _ = get_user_model().objects.get_or_create(username="bench-owner")
        project = Project.objects.create(slug=BENCH_SLUG, title="Benchmark")
        project.owners.add(owner)
        app = App.objects.create(project=project, name=BENCH_APP, title="Squares (benchmark)")
    version = app.versions.order_by("-number").first()
    if version is None:
        version = app_version_create(app=app, code=BENCH_CODE, flops_per_unit=432e9)
        # Known answers, as the catalogue loader makes for a bundled app: spot checks
        # establish the swarm's new devices, which alone may not settle a quorum.
        spot_check_batch_create(app_version=version, known=[
            ({"n": n}, {"n": n, "square": n * n}) for n in range(10**9, 10**9 + 8)])
    return version


def work_ensure(*, open_units: int, quorum: QuorumParams = QUORUM_2) -> dict:
    """Top the bench app's open work units up to `open_units` (new units at `quorum`)."""
    started = time.perf_counter()
    version = bench_app_version()
    have = WorkUnit.objects.filter(app_version=version, state=WorkUnit.State.OPEN,
                                   known_output__isnull=True).count()
    added = max(0, open_units - have)
    batch_id = None
    if added:
        first = (WorkUnit.objects.filter(app_version=version).count()) + 1
        batch = batch_create(app_version=version, name=f"bench {first}-{first + added - 1}",
                             inputs=({"n": n} for n in range(first, first + added)),
                             quorum=quorum)
        batch_id = batch.pk
        _analyze()
    return {"open_before": have, "added": added, "batch_id": batch_id,
            "seconds": round(time.perf_counter() - started, 2)}


def _analyze() -> None:
    """Give the planner the statistics a site's database has from autovacuum; a fresh bulk
    load has none, and plans made without them can be far worse (or better) than real."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def window_counts(*, since: dt.datetime, until: dt.datetime) -> dict:
    """What the server did between two moments, from the database alone."""
    in_window = Q(workunit__completed_at__gte=since, workunit__completed_at__lt=until)
    return {
        # BOINC's sense of "validated": valid replicas of work units completed in the window.
        "validated": Replica.objects.filter(in_window, validate_state=V.VALID).count(),
        "completed_units": WorkUnit.objects.filter(completed_at__gte=since,
                                                   completed_at__lt=until).count(),
        "received": Replica.objects.filter(received_at__gte=since, received_at__lt=until).count(),
    }


def audit(*, acked_task_ids: Iterable[str] = (), batch_ids: Iterable[int] = (),
          close_epochs: bool = False) -> dict:
    """The promises a crash must not break, checked from the database.

    - every result a client saw acknowledged is stored (received_at set);
    - at most one credit grant per replica, one for every valid replica and none
      for any other, and each volunteer's credit is the sum of its grants;
    - every work unit of `batch_ids` is finished (completed or failed, not open);
    - the token ledger verifies, and (after closing every ended epoch when
      `close_epochs`) every grant counted in exactly one epoch.

    Returns the facts and a list of `problems` (empty when all hold).
    """
    from sparecycles.credit.models import CreditGrant, VolunteerCredit
    from sparecycles.volunteers.models import Volunteer

    problems: list[str] = []
    acked = set(acked_task_ids)
    stored = set(Replica.objects.filter(task_id__in=acked, received_at__isnull=False)
                 .values_list("task_id", flat=True)) if acked else set()
    lost = sorted(acked - stored)
    if lost:
        problems.append(f"{len(lost)} acknowledged result(s) not stored, e.g. {lost[:5]}")

    twice = list(CreditGrant.objects.values("replica_id").annotate(n=Count("id"))
                 .filter(n__gt=1).values_list("replica_id", flat=True)[:5])
    if twice:
        problems.append(f"replicas credited more than once: {twice}")
    not_valid = CreditGrant.objects.exclude(replica__validate_state=V.VALID).count()
    if not_valid:
        problems.append(f"{not_valid} grant(s) for replicas that are not valid")
    valid = Replica.objects.filter(validate_state=V.VALID, volunteer__isnull=False)
    uncredited = valid.filter(credit_grant__isnull=True).count()
    if uncredited:
        problems.append(f"{uncredited} valid replica(s) without a credit grant")
    sums = dict(CreditGrant.objects.values_list("volunteer_id").annotate(s=Sum("amount_micro"))
                .values_list("volunteer_id", "s"))
    held = dict(VolunteerCredit.objects.values_list("pk", "credit_micro"))
    wrong = [(pk, held.get(pk, 0), sums.get(pk, 0))
             for pk in Volunteer.objects.values_list("pk", flat=True)
             if held.get(pk, 0) != sums.get(pk, 0)]
    if wrong:
        problems.append(f"{len(wrong)} volunteer(s) whose credit is not the sum of their "
                        f"grants (id, credit, grants): {wrong[:5]}")

    units = WorkUnit.objects.filter(batch_id__in=list(batch_ids))
    states = dict(units.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    if states.get(WorkUnit.State.OPEN):
        problems.append(f"{states[WorkUnit.State.OPEN]} work unit(s) still open")

    facts = {
        "acked": len(acked), "acked_stored": len(stored), "grants": CreditGrant.objects.count(),
        "valid_replicas": valid.count(), "workunits": states,
        "replicas_received": Replica.objects.filter(received_at__isnull=False).count(),
        "ledger": _ledger_audit(problems, close_epochs=close_epochs),
    }
    return {**facts, "problems": problems}


def _wait_for_epoch_of(moment: dt.datetime | None, *, limit_s: float = 60.0) -> None:
    """Sleep until the reward epoch holding `moment` has ended (at most `limit_s`)."""
    if moment is None:
        return
    from sparecycles.ledger.canonical import to_us
    from sparecycles.ledger.selectors import schedule

    sched, _started = schedule()
    index = sched.epoch_at(to_us(moment))
    if index < 0:
        return
    wait_s = (sched.window(index).end_us - to_us(timezone.now())) / 1e6
    time.sleep(min(max(wait_s, 0.0) + 0.05, limit_s))


def _ledger_audit(problems: list[str], *, close_epochs: bool) -> dict:
    if not apps.is_installed("sparecycles.ledger"):
        return {"installed": False}
    from sparecycles.credit.models import CreditGrant
    from sparecycles.ledger.models import Epoch, EpochCredit
    from sparecycles.ledger.services import epoch_close, epochs_close_due
    from sparecycles.ledger.verify import verify_ledger

    facts: dict = {"installed": True}
    if close_epochs:
        # A replica validated late (after a fault, the validator may retry for a while)
        # is granted after the swarm stops: wait for the epoch holding the newest grant
        # to end, so closing pays every grant. Then close whatever has ended, and make
        # sure closing again pays nothing.
        _wait_for_epoch_of(CreditGrant.objects.aggregate(m=Max("granted_at"))["m"])
        facts["closed_now"] = len(epochs_close_due())
        last = Epoch.objects.order_by("-index").first()
        if last is not None:
            retry = epoch_close(index=last.index)
            if retry is None or retry.closed_now:
                problems.append(f"closing epoch {last.index} a second time paid again")
        linked = EpochCredit.objects.count()
        grants = CreditGrant.objects.count()
        counted_before_end = CreditGrant.objects.filter(
            granted_at__lt=last.ends_at).count() if last else 0
        facts.update(epochs=Epoch.objects.count(), grants_in_epochs=linked)
        if linked != counted_before_end:
            problems.append(f"{counted_before_end} grant(s) made before the last closed epoch "
                            f"ended, but {linked} counted in epochs")
        facts["grants_after_last_epoch"] = grants - linked
    report = verify_ledger()
    facts["verified"] = report.ok
    if not report.ok:
        problems.append(f"verify_ledger: {report.problem}")
    return facts
