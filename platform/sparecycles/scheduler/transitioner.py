"""Moving work units along after anything happens to their replicas.

BOINC splits this between transitioner.cpp and validator.cpp; here one pass
does both, inside the caller's transaction, with the work unit rows locked.
A pass decides in memory and writes in bulk at the end (`Writes.flush`), so
a hundred work units cost about as many queries as one. It returns what must
be announced after commit: in-progress replicas it cancelled, and work units
to send back to validation because a device failed a spot check.

Lock order, everywhere: work units, then their replicas, then volunteers,
reliability rows, projects, teams and per-project credit — each by primary key.
"""

from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from sparecycles.credit.services import credit_grant_many
from sparecycles.db.bulk import rows_update
from sparecycles.projects.models import WorkUnit
from sparecycles.sandbox.errors import ValidatorError
from sparecycles.volunteers.models import Volunteer

from .models import Replica
from .reliability import Outcome, SpotCheck, hosts_record
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


@dataclass
class Writes:
    """What one pass changes, collected and then written in bulk."""

    replicas: dict[int, Replica] = field(default_factory=dict)
    replica_fields: set[str] = field(default_factory=set)
    workunits: dict[int, WorkUnit] = field(default_factory=dict)
    new_replicas: list[Replica] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    spot_checks: list[SpotCheck] = field(default_factory=list)
    grants: list[Replica] = field(default_factory=list)
    spot_passed: list[int] = field(default_factory=list)  # device ids
    spot_failed: list[int] = field(default_factory=list)  # device ids
    transition: Transition = field(default_factory=Transition)

    def replica(self, replica: Replica, *fields: str) -> None:
        self.replicas[replica.pk] = replica
        self.replica_fields.update(fields)

    def verdict(self, replica: Replica) -> None:
        """`replica` got its final verdict: reliability and reputation take note."""
        if replica.device_id is not None:
            self.outcomes.append(Outcome.of(replica))

    def flush(self) -> Transition:
        if self.replicas:
            rows_update(Replica, self.replicas.values(), sorted(self.replica_fields))
        if self.new_replicas:
            Replica.objects.bulk_create(self.new_replicas)
        if self.workunits:
            rows_update(WorkUnit, self.workunits.values(), [
                "state", "error_reason", "completed_at", "canonical_replica", "canonical_output",
            ])
        volunteers = ({o.volunteer_id for o in self.outcomes}
                      | {r.volunteer_id for r in self.grants}) - {None}
        if volunteers:  # locked here, in order, before reputation and credit write to them
            list(Volunteer.objects.select_for_update(no_key=True).filter(pk__in=volunteers)
                 .order_by("pk").values_list("pk", flat=True))
        hosts_record(outcomes=self.outcomes, spot_checks=self.spot_checks)
        credit_grant_many(replicas=self.grants)
        for device_id in self.spot_passed:
            device_spot_check_passed(device_id=device_id)
        for device_id in self.spot_failed:
            self.transition.revalidate += device_quarantine(device_id=device_id)
        return self.transition


def workunit_transition(workunit: WorkUnit, *, verdicts: list[Replica] = ()) -> Transition:
    """Validate, complete, fail or replicate `workunit` as its replicas now stand.

    The caller holds a transaction and the work unit's row lock (select_for_update),
    with its app version and app loaded. `verdicts` are replicas the caller has just
    given a final outcome (timed out), for reliability to count.
    """
    replicas = list(workunit.replicas.select_for_update(no_key=True).order_by("id"))
    writes = Writes()
    for replica in verdicts:
        writes.verdict(replica)
    _transition(workunit, replicas, writes)
    return writes.flush()


def workunits_transition(workunit_ids) -> Transition:
    """The same for many work units at once: lock them, decide, write in bulk.

    The caller holds a transaction; the rows are locked here, in primary-key order.
    """
    workunits = list(
        # of=self: not the app rows, which all the work units share.
        WorkUnit.objects.select_for_update(no_key=True, of=("self",))
        .select_related("app_version__app").filter(pk__in=set(workunit_ids)).order_by("pk")
    )
    if not workunits:
        return Transition()
    by_workunit: dict[int, list[Replica]] = {w.pk: [] for w in workunits}
    for replica in (Replica.objects.select_for_update(no_key=True)
                    .filter(workunit_id__in=list(by_workunit)).order_by("id")):
        by_workunit[replica.workunit_id].append(replica)
    writes = Writes()
    for workunit in workunits:
        _transition(workunit, by_workunit[workunit.pk], writes)
    return writes.flush()


def pending_workunit_ids(*, limit: int = 500, older_than=None) -> list[int]:
    """Work units with reported replicas the transitioner has not looked at yet."""
    pending = Replica.objects.filter(pending=True)
    if older_than is not None:
        pending = pending.filter(Q(received_at__lt=older_than) | Q(received_at__isnull=True))
    return list(pending.values_list("workunit_id", flat=True).distinct()[:limit])


def _transition(workunit: WorkUnit, replicas: list[Replica], writes: Writes) -> None:
    for replica in replicas:
        replica.workunit = workunit  # spare a query per replica in the helpers below
        if replica.pending:
            replica.pending = False
            writes.replica(replica, "pending")
            # Verdicts known at report time: an error, or a quarantined device's result.
            if replica.outcome == O.CLIENT_ERROR or replica.validate_state == V.INVALID:
                writes.verdict(replica)
    app = workunit.app_version.app
    equal = comparator_for(
        validator=app.validator, options=app.validator_options, code=app.validate_code,
        app_id=app.pk,
    )
    if not _judged_in_advance(workunit, replicas, equal, writes):
        return
    if workunit.is_spot_check:
        _judge_spot_checks(workunit, replicas, equal, writes)
        return
    if workunit.state != WorkUnit.State.OPEN:
        _judge_late(workunit, replicas, equal, writes)
        return

    successes = [
        r for r in replicas
        if r.outcome == O.SUCCESS and r.validate_state in (V.INIT, V.INCONCLUSIVE)
    ]
    errors = sum(1 for r in replicas if r.outcome == O.CLIENT_ERROR)
    if errors >= workunit.max_error_results:
        _finish(workunit, replicas, WorkUnit.State.FAILED, writes,
                reason=f"Too many errors: {errors} replicas failed "
                       f"(max_error_results is {workunit.max_error_results}).")
        return

    # Adaptive replication: a trusted device's lone result is enough.
    quorum = 1 if len(successes) == 1 and successes[0].solo else workunit.min_quorum
    if len(successes) >= quorum:
        group = check_set([r.output for r in successes], equal, min_quorum=quorum)
        if group is not None:
            canonical = successes[group[0]]
            for index, replica in enumerate(successes):
                replica.validate_state = V.VALID if index in group else V.INVALID
                writes.replica(replica, "validate_state")
                writes.verdict(replica)
            workunit.canonical_replica = canonical
            workunit.canonical_output = canonical.output
            _finish(workunit, replicas, WorkUnit.State.COMPLETED, writes)
            writes.grants += successes
            return
        for replica in successes:
            if replica.validate_state != V.INCONCLUSIVE:
                replica.validate_state = V.INCONCLUSIVE
                writes.replica(replica, "validate_state")
        if len(successes) >= workunit.max_success_results:
            _finish(workunit, replicas, WorkUnit.State.FAILED, writes,
                    reason=f"No consensus among {len(successes)} results "
                           f"(max_success_results is {workunit.max_success_results}).")
            return

    _replicate(workunit, replicas, successes, quorum, writes)


VALIDATION_PAUSED = "Validation paused: "


def _judged_in_advance(workunit: WorkUnit, replicas: list[Replica], equal,
                       writes: Writes) -> bool:
    """A sandboxed (custom) validator judges every comparison this pass may make, before
    any verdict is written. If it can't (it crashed, timed out, ...), nobody's result is
    judged: the work unit waits, its reason shown to the owner, and housekeeping retries."""
    prefetch = getattr(equal, "prefetch", None)
    if prefetch is None:
        return True
    fresh = [r.output for r in replicas if r.outcome == O.SUCCESS and r.validate_state == V.INIT]
    if workunit.is_spot_check:
        pairs = [(workunit.known_output, output) for output in fresh]
    elif workunit.state == WorkUnit.State.COMPLETED:
        pairs = [(workunit.canonical_output, output) for output in fresh]
    elif workunit.state == WorkUnit.State.OPEN:
        outputs = [r.output for r in replicas if r.outcome == O.SUCCESS
                   and r.validate_state in (V.INIT, V.INCONCLUSIVE)]
        pairs = [(a, b) for i, a in enumerate(outputs) for j, b in enumerate(outputs) if i != j]
    else:
        pairs = []
    try:
        prefetch(pairs)
    except ValidatorError as exc:
        workunit.error_reason = (VALIDATION_PAUSED + exc.reason)[:300]
        writes.workunits[workunit.pk] = workunit
        return False
    if workunit.error_reason.startswith(VALIDATION_PAUSED):
        workunit.error_reason = ""
        writes.workunits[workunit.pk] = workunit
    return True


def _replicate(workunit: WorkUnit, replicas: list[Replica], successes: list[Replica],
               quorum: int, writes: Writes) -> None:
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
            _finish(workunit, replicas, WorkUnit.State.FAILED, writes,
                    reason=f"Gave up after {len(replicas)} replicas "
                           f"(max_total_results is {workunit.max_total_results}).")
        return
    writes.new_replicas += [Replica(workunit=workunit) for _ in range(min(need, room))]


def _finish(workunit: WorkUnit, replicas: list[Replica], state: str, writes: Writes, *,
            reason: str = "") -> None:
    for replica in replicas:
        if replica.server_state == S.OVER:
            continue
        if replica.server_state == S.IN_PROGRESS and replica.device_id:
            writes.transition.cancelled.append(
                Cancelled(device_id=replica.device_id, task_id=replica.task_id))
        replica.server_state = S.OVER
        replica.outcome = O.DIDNT_NEED
        writes.replica(replica, "server_state", "outcome")
    workunit.state = state
    workunit.error_reason = reason[:300]
    workunit.completed_at = timezone.now()
    writes.workunits[workunit.pk] = workunit


def _judge_late(workunit: WorkUnit, replicas: list[Replica], equal, writes: Writes) -> None:
    """A result that arrives after the work unit closed is compared with the canonical one."""
    for replica in replicas:
        if replica.outcome != O.SUCCESS or replica.validate_state != V.INIT:
            continue
        if workunit.state == WorkUnit.State.COMPLETED:
            agrees = equal(workunit.canonical_output, replica.output)
            replica.validate_state = V.VALID if agrees else V.INVALID
            writes.replica(replica, "validate_state")
            writes.verdict(replica)
            writes.grants.append(replica)
        else:
            replica.validate_state = V.TOO_LATE
            writes.replica(replica, "validate_state")


def _judge_spot_checks(workunit: WorkUnit, replicas: list[Replica], equal,
                       writes: Writes) -> None:
    """Compare returned known-answer replicas with the known output."""
    for replica in replicas:
        if replica.outcome != O.SUCCESS or replica.validate_state != V.INIT:
            continue
        passed = equal(workunit.known_output, replica.output)
        replica.validate_state = V.VALID if passed else V.INVALID
        writes.replica(replica, "validate_state")
        writes.verdict(replica)
        writes.spot_checks.append(SpotCheck(device_id=replica.device_id,
                                            app_version_id=workunit.app_version_id,
                                            passed=passed))
        if passed:
            writes.spot_passed.append(replica.device_id)
            writes.grants.append(replica)
        else:
            writes.spot_failed.append(replica.device_id)
