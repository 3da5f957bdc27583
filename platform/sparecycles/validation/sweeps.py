"""Validation's sweeps over work: time out overdue replicas (which reissues them), unstick
work units, validate results a dead process left pending.

Safe to run in several processes at once: every change is made under the
work unit's row lock and re-checked there. When they run is housekeeping's
business (sparecycles.housekeeping.jobs), not the scheduler's.
"""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica

from .services import transition_announce as _announce
from .services import workunits_validate
from .transitioner import pending_workunit_ids, workunit_transition

S, O = Replica.ServerState, Replica.Outcome


def replicas_time_out(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Mark replicas past deadline + grace as timed out (no reply) and reissue their work."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.SPARECYCLES["DEADLINE_GRACE_S"])
    workunit_ids = list(
        Replica.objects.filter(server_state=S.IN_PROGRESS, deadline__lt=cutoff)
        .values_list("workunit_id", flat=True).distinct()[:limit]
    )
    timed_out = 0
    for workunit_id in workunit_ids:
        with transaction.atomic():
            workunit = (WorkUnit.objects.select_for_update(no_key=True, of=("self",))
                        .select_related("app_version__app")
                        .get(pk=workunit_id))
            expired = list(workunit.replicas.select_for_update(no_key=True)
                           .filter(server_state=S.IN_PROGRESS, deadline__lt=cutoff))
            for replica in expired:
                replica.workunit = workunit
                replica.server_state = S.OVER
                replica.outcome = O.NO_REPLY
                replica.save(update_fields=["server_state", "outcome"])
            timed_out += len(expired)
            transition = workunit_transition(workunit, verdicts=expired)
            transaction.on_commit(lambda t=transition: _announce(t))
    return timed_out


def workunits_unstick(*, limit: int = 500) -> int:
    """Open work units with no live replica get one more transition (e.g. after a crash).

    One with a result not yet looked at (`pending`) is not stuck: it waits for the
    validator's next pass (or, should the process that stored it have died,
    pending_validate's sweep). Taking it here raced the validator with a transaction
    per work unit."""
    live = Q(replicas__server_state__in=[S.UNSENT, S.IN_PROGRESS])
    stuck = list(
        WorkUnit.objects.filter(state=WorkUnit.State.OPEN, known_output__isnull=True)
        .exclude(live).exclude(replicas__pending=True).values_list("pk", flat=True)[:limit]
    )
    for workunit_id in stuck:
        with transaction.atomic():
            workunit = (WorkUnit.objects.select_for_update(no_key=True, of=("self",))
                        .select_related("app_version__app")
                        .get(pk=workunit_id))
            if workunit.state == WorkUnit.State.OPEN:
                transition = workunit_transition(workunit)
                transaction.on_commit(lambda t=transition: _announce(t))
    return len(stuck)


def pending_validate(*, older_than_s: float = 10, limit: int = 2000, chunk: int = 200) -> int:
    """Validate work units whose reported results were never looked at (the web process
    that stored them died before its validation ran). Recent ones are left to it."""
    older_than = timezone.now() - dt.timedelta(seconds=older_than_s)
    workunit_ids = pending_workunit_ids(limit=limit, older_than=older_than)
    for start in range(0, len(workunit_ids), chunk):
        workunits_validate(workunit_ids=workunit_ids[start:start + chunk])
    return len(workunit_ids)
