"""Moving a work unit along after anything happens to one of its replicas.

BOINC splits this between transitioner.cpp and validator.cpp; here one
function does both, inside the caller's transaction, with the work unit row
locked. It returns the in-progress replicas it cancelled, so the caller can
tell their devices after commit.
"""

from dataclasses import dataclass

from django.utils import timezone

from sparecycles.credit.services import credit_grant
from sparecycles.projects.models import WorkUnit

from .models import Replica
from .validators import check_set, comparator_for

S = Replica.ServerState
O = Replica.Outcome
V = Replica.ValidateState


@dataclass(frozen=True)
class Cancelled:
    device_id: int
    task_id: str


def workunit_transition(workunit: WorkUnit) -> list[Cancelled]:
    """Validate, complete, fail or replicate `workunit` as its replicas now stand.

    The caller holds the work unit's row lock (select_for_update) and a transaction.
    """
    replicas = list(workunit.replicas.select_for_update().order_by("id"))
    app = workunit.app_version.app
    equal = comparator_for(
        validator=app.validator, options=app.validator_options, code=app.validate_code
    )

    if workunit.state != WorkUnit.State.OPEN:
        _judge_late(workunit, replicas, equal)
        return []

    successes = [
        r for r in replicas
        if r.outcome == O.SUCCESS and r.validate_state in (V.INIT, V.INCONCLUSIVE)
    ]
    errors = sum(1 for r in replicas if r.outcome == O.CLIENT_ERROR)
    if errors >= workunit.max_error_results:
        return _finish(workunit, replicas, WorkUnit.State.FAILED,
                       reason=f"Too many errors: {errors} replicas failed "
                              f"(max_error_results is {workunit.max_error_results}).")

    if len(successes) >= workunit.min_quorum:
        group = check_set([r.output for r in successes], equal, min_quorum=workunit.min_quorum)
        if group is not None:
            canonical = successes[group[0]]
            for index, replica in enumerate(successes):
                replica.validate_state = V.VALID if index in group else V.INVALID
                replica.save(update_fields=["validate_state"])
            workunit.canonical_replica = canonical
            workunit.canonical_output = canonical.output
            cancelled = _finish(workunit, replicas, WorkUnit.State.COMPLETED)
            for replica in successes:
                credit_grant(replica=replica)
            return cancelled
        for replica in successes:
            if replica.validate_state != V.INCONCLUSIVE:
                replica.validate_state = V.INCONCLUSIVE
                replica.save(update_fields=["validate_state"])
        if len(successes) >= workunit.max_success_results:
            return _finish(workunit, replicas, WorkUnit.State.FAILED,
                           reason=f"No consensus among {len(successes)} results "
                                  f"(max_success_results is {workunit.max_success_results}).")

    _replicate(workunit, replicas, successes)
    return []


def _replicate(workunit: WorkUnit, replicas: list[Replica], successes: list[Replica]) -> None:
    """Create unsent replicas until enough are live to reach a quorum."""
    live = sum(1 for r in replicas if r.server_state in (S.UNSENT, S.IN_PROGRESS))
    inconclusive = len(successes) >= workunit.min_quorum
    target = len(successes) + 1 if inconclusive else workunit.target_nresults
    need = target - len(successes) - live
    if need <= 0:
        return
    room = workunit.max_total_results - len(replicas)
    if room <= 0:
        if live == 0:
            _finish(workunit, replicas, WorkUnit.State.FAILED,
                    reason=f"Gave up after {len(replicas)} replicas "
                           f"(max_total_results is {workunit.max_total_results}).")
        return
    Replica.objects.bulk_create([Replica(workunit=workunit) for _ in range(min(need, room))])


def _finish(workunit: WorkUnit, replicas: list[Replica], state: str, *, reason: str = ""
            ) -> list[Cancelled]:
    now = timezone.now()
    cancelled = []
    for replica in replicas:
        if replica.server_state == S.OVER:
            continue
        if replica.server_state == S.IN_PROGRESS and replica.device_id:
            cancelled.append(Cancelled(device_id=replica.device_id, task_id=replica.task_id))
        replica.server_state = S.OVER
        replica.outcome = O.DIDNT_NEED
        replica.save(update_fields=["server_state", "outcome"])
    workunit.state = state
    workunit.error_reason = reason[:300]
    workunit.completed_at = now
    workunit.save(update_fields=[
        "state", "error_reason", "completed_at", "canonical_replica", "canonical_output",
    ])
    return cancelled


def _judge_late(workunit: WorkUnit, replicas: list[Replica], equal) -> None:
    """A result that arrives after the work unit closed is compared with the canonical one."""
    for replica in replicas:
        if replica.outcome != O.SUCCESS or replica.validate_state != V.INIT:
            continue
        if workunit.state == WorkUnit.State.COMPLETED:
            agrees = equal(workunit.canonical_output, replica.output)
            replica.validate_state = V.VALID if agrees else V.INVALID
        else:
            replica.validate_state = V.TOO_LATE
        replica.save(update_fields=["validate_state"])
        credit_grant(replica=replica)
