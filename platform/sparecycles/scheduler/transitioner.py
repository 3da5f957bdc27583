"""Moving a work unit along after anything happens to one of its replicas.

BOINC splits this between transitioner.cpp and validator.cpp; here one
function does both, inside the caller's transaction, with the work unit row
locked. It returns what must be announced after commit: in-progress replicas
it cancelled, and work units to send back to validation because a device
failed a spot check.
"""

from dataclasses import dataclass, field

from django.utils import timezone

from sparecycles.credit.services import credit_grant
from sparecycles.projects.models import WorkUnit

from .models import Replica
from .reliability import host_record_outcome, host_record_spot_check
from .spot_checks import device_quarantine, device_spot_check_passed
from .validators import check_set, comparator_for

S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState


@dataclass(frozen=True)
class Cancelled:
    device_id: int
    task_id: str


@dataclass
class Transition:
    cancelled: list[Cancelled] = field(default_factory=list)
    revalidate: list[int] = field(default_factory=list)  # work unit ids


def workunit_transition(workunit: WorkUnit) -> Transition:
    """Validate, complete, fail or replicate `workunit` as its replicas now stand.

    The caller holds a transaction and the work unit's row lock (select_for_update).
    """
    replicas = list(
        workunit.replicas.select_for_update().order_by("id")
    )
    app = workunit.app_version.app
    equal = comparator_for(
        validator=app.validator, options=app.validator_options, code=app.validate_code
    )
    for replica in replicas:
        replica.workunit = workunit  # spare a query per replica in the helpers below
    if workunit.is_spot_check:
        return _judge_spot_checks(workunit, replicas, equal)
    if workunit.state != WorkUnit.State.OPEN:
        _judge_late(workunit, replicas, equal)
        return Transition()

    successes = [
        r for r in replicas
        if r.outcome == O.SUCCESS and r.validate_state in (V.INIT, V.INCONCLUSIVE)
    ]
    errors = sum(1 for r in replicas if r.outcome == O.CLIENT_ERROR)
    if errors >= workunit.max_error_results:
        return _finish(workunit, replicas, WorkUnit.State.FAILED,
                       reason=f"Too many errors: {errors} replicas failed "
                              f"(max_error_results is {workunit.max_error_results}).")

    # Adaptive replication: a trusted device's lone result is enough.
    quorum = 1 if len(successes) == 1 and successes[0].solo else workunit.min_quorum
    if len(successes) >= quorum:
        group = check_set([r.output for r in successes], equal, min_quorum=quorum)
        if group is not None:
            canonical = successes[group[0]]
            for index, replica in enumerate(successes):
                replica.validate_state = V.VALID if index in group else V.INVALID
                replica.save(update_fields=["validate_state"])
                host_record_outcome(replica)
            workunit.canonical_replica = canonical
            workunit.canonical_output = canonical.output
            transition = _finish(workunit, replicas, WorkUnit.State.COMPLETED)
            for replica in successes:
                credit_grant(replica=replica)
            return transition
        for replica in successes:
            if replica.validate_state != V.INCONCLUSIVE:
                replica.validate_state = V.INCONCLUSIVE
                replica.save(update_fields=["validate_state"])
        if len(successes) >= workunit.max_success_results:
            return _finish(workunit, replicas, WorkUnit.State.FAILED,
                           reason=f"No consensus among {len(successes)} results "
                                  f"(max_success_results is {workunit.max_success_results}).")

    _replicate(workunit, replicas, successes, quorum)
    return Transition()


def _replicate(workunit: WorkUnit, replicas: list[Replica], successes: list[Replica],
               quorum: int) -> None:
    """Create unsent replicas until enough are live to reach a quorum."""
    live = sum(1 for r in replicas if r.server_state in (S.UNSENT, S.IN_PROGRESS))
    inconclusive = len(successes) >= quorum
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
            ) -> Transition:
    transition = Transition()
    for replica in replicas:
        if replica.server_state == S.OVER:
            continue
        if replica.server_state == S.IN_PROGRESS and replica.device_id:
            transition.cancelled.append(
                Cancelled(device_id=replica.device_id, task_id=replica.task_id))
        replica.server_state = S.OVER
        replica.outcome = O.DIDNT_NEED
        replica.save(update_fields=["server_state", "outcome"])
    workunit.state = state
    workunit.error_reason = reason[:300]
    workunit.completed_at = timezone.now()
    workunit.save(update_fields=[
        "state", "error_reason", "completed_at", "canonical_replica", "canonical_output",
    ])
    return transition


def _judge_late(workunit: WorkUnit, replicas: list[Replica], equal) -> None:
    """A result that arrives after the work unit closed is compared with the canonical one."""
    for replica in replicas:
        if replica.outcome != O.SUCCESS or replica.validate_state != V.INIT:
            continue
        if workunit.state == WorkUnit.State.COMPLETED:
            agrees = equal(workunit.canonical_output, replica.output)
            replica.validate_state = V.VALID if agrees else V.INVALID
            replica.save(update_fields=["validate_state"])
            host_record_outcome(replica)
            credit_grant(replica=replica)
        else:
            replica.validate_state = V.TOO_LATE
            replica.save(update_fields=["validate_state"])


def _judge_spot_checks(workunit: WorkUnit, replicas: list[Replica], equal) -> Transition:
    """Compare returned known-answer replicas with the known output."""
    transition = Transition()
    for replica in replicas:
        if replica.outcome != O.SUCCESS or replica.validate_state != V.INIT:
            continue
        passed = equal(workunit.known_output, replica.output)
        replica.validate_state = V.VALID if passed else V.INVALID
        replica.save(update_fields=["validate_state"])
        host_record_outcome(replica)
        host_record_spot_check(device_id=replica.device_id,
                               app_version_id=workunit.app_version_id, passed=passed)
        if passed:
            device_spot_check_passed(device_id=replica.device_id)
            credit_grant(replica=replica)
        else:
            transition.revalidate += device_quarantine(device_id=replica.device_id)
    return transition
