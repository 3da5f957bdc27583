"""Moving work units along after anything happens to their replicas.

BOINC splits this between transitioner.cpp and validator.cpp; here one pass
does both, inside the caller's transaction, with the work unit rows locked.
A pass decides in memory — the decisions themselves are the pure functions of
validation.policy — and writes in bulk at the end (`Writes.flush`), so a
hundred work units cost about as many queries as one. It returns what must be
announced after commit: in-progress replicas it cancelled, and work units to
send back to validation because a device was quarantined.

Lock order, everywhere: work units, then their replicas, then volunteers,
reliability and credibility rows, projects, teams and per-project credit —
each by primary key.
"""

import logging
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from sparecycles.db.bulk import rows_update
from sparecycles.projects.models import WorkUnit
from sparecycles.sandbox.errors import ValidatorError
from sparecycles.scheduler.models import Cancelled, Replica
from sparecycles.scheduler.reliability import Outcome, SpotCheck, hosts_record
from sparecycles.scheduler.validators import advance_pairs, comparator_for
from sparecycles.volunteers.models import Volunteer

from .credibility import Delta, Standing, credibility_apply, standing_of, standings
from .models import ValidationAudit
from .policy import canonical_choose
from .reputation import reputations_refresh
from .signals import results_invalidated, results_validated

logger = logging.getLogger(__name__)
S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState
Kind = ValidationAudit.Kind


@dataclass
class Transition:
    cancelled: list[Cancelled] = field(default_factory=list)
    revalidate: list[int] = field(default_factory=list)  # open work units to look at again
    quarantined: list[int] = field(default_factory=list)  # devices caught in this pass


@dataclass
class Writes:
    """What one pass changes, collected and then written in bulk."""

    standings: dict[int, Standing] = field(default_factory=dict)
    replicas: dict[int, Replica] = field(default_factory=dict)
    replica_fields: set[str] = field(default_factory=set)
    workunits: dict[int, WorkUnit] = field(default_factory=dict)
    new_replicas: list[Replica] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    spot_checks: list[SpotCheck] = field(default_factory=list)
    grants: list[Replica] = field(default_factory=list)
    reversals: list[int] = field(default_factory=list)  # replica ids whose credit goes back
    credibility: dict[int, Delta] = field(default_factory=dict)
    audits: list[ValidationAudit] = field(default_factory=list)
    transition: Transition = field(default_factory=Transition)

    def standing(self, device_id: int | None) -> Standing:
        found = self.standings.get(device_id) if device_id is not None else None
        return found if found is not None else standing_of(None)

    def replica(self, replica: Replica, *fields: str) -> None:
        self.replicas[replica.pk] = replica
        self.replica_fields.update(fields)

    def verdict(self, replica: Replica) -> None:
        """`replica` got its final verdict: reliability and reputation take note."""
        if replica.device_id is not None:
            self.outcomes.append(Outcome.of(replica))

    def delta(self, device_id: int | None) -> Delta:
        return self.credibility.setdefault(device_id, Delta())

    def audit(self, kind: str, workunit: WorkUnit | None, *, device_id: int | None = None,
              credibility: float | None = None, reason: str = "", **details) -> None:
        self.audits.append(ValidationAudit(kind=kind, workunit=workunit, device_id=device_id,
                                           credibility=credibility, reason=reason[:300],
                                           details=details))

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
        moved = hosts_record(outcomes=self.outcomes, spot_checks=self.spot_checks)
        if moved:
            reputations_refresh(volunteer_ids=moved)
        caught = credibility_apply({d: x for d, x in self.credibility.items() if d is not None})
        if self.grants:  # credit grants, in this transaction (credit connects to it)
            results_validated.send(sender=Replica, replicas=self.grants)
        if self.reversals:
            results_invalidated.send(sender=Replica, replica_ids=sorted(set(self.reversals)),
                                     reason="Revalidated: the result is no longer valid.")
        if self.audits:
            ValidationAudit.objects.bulk_create(self.audits)
        passed = [d for d, x in self.credibility.items() if d is not None and x.passed]
        if passed:
            from .services import devices_spot_check_passed

            devices_spot_check_passed(device_ids=sorted(passed))
        if caught:
            from .services import devices_quarantine

            self.transition.quarantined += caught
            self.transition.revalidate += devices_quarantine(
                device_ids=caught, reason="failed a spot check or too often in the minority")
        return self.transition


def workunit_transition(workunit: WorkUnit, *, verdicts: list[Replica] = ()) -> Transition:
    """Validate, complete, fail or replicate `workunit` as its replicas now stand.

    The caller holds a transaction and the work unit's row lock (select_for_update),
    with its app version and app loaded. `verdicts` are replicas the caller has just
    given a final outcome (timed out), for reliability to count.
    """
    replicas = list(workunit.replicas.select_for_update(no_key=True).order_by("id"))
    writes = Writes(standings=standings(r.device_id for r in replicas))
    for replica in verdicts:
        writes.verdict(replica)
    _transition_safely(workunit, replicas, writes)
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
    # A known answer (the owner's, or a closed work unit's canonical output used for spot
    # checks) judges each replica on its own: only the replicas with a result to look at
    # are locked and loaded. The rest are out on many devices at once (spot checks), and
    # locking them held up each of those devices' result stores (which lock their
    # replica) for the whole pass: the ack's tail. An open work unit's replicas all count.
    whole = {w.pk for w in workunits if w.state == WorkUnit.State.OPEN and not w.is_spot_check}
    judged_alone = [w.pk for w in workunits if w.pk not in whole]
    for replica in (Replica.objects.select_for_update(no_key=True)
                    .filter(Q(workunit_id__in=whole) | Q(workunit_id__in=judged_alone) & (
                        Q(pending=True) | Q(outcome=O.SUCCESS, validate_state=V.INIT)))
                    .order_by("id")):
        by_workunit[replica.workunit_id].append(replica)
    writes = Writes(standings=standings(
        r.device_id for replicas in by_workunit.values() for r in replicas))
    for workunit in workunits:
        _transition_safely(workunit, by_workunit[workunit.pk], writes)
    return writes.flush()


def pending_workunit_ids(*, limit: int = 500, older_than=None) -> list[int]:
    """Work units with reported replicas the transitioner has not looked at yet."""
    pending = Replica.objects.filter(pending=True)
    if older_than is not None:
        pending = pending.filter(Q(received_at__lt=older_than) | Q(received_at__isnull=True))
    return list(pending.values_list("workunit_id", flat=True).distinct()[:limit])


def _transition_safely(workunit: WorkUnit, replicas: list[Replica], writes: Writes) -> None:
    """One work unit's pass; a validator that raises is an error of this work unit alone."""
    for replica in replicas:
        replica.workunit = workunit  # spare a query per replica in the helpers below
        if replica.pending:
            replica.pending = False
            writes.replica(replica, "pending")
            # Verdicts known at report time: an error, or a quarantined device's result.
            if replica.outcome == O.CLIENT_ERROR or replica.validate_state == V.INVALID:
                writes.verdict(replica)
    # The pass works on copies of its decisions until it is sure the validator ran: a
    # comparator that raises half-way must leave no half-made verdicts behind.
    marks = (len(writes.outcomes), len(writes.grants), len(writes.new_replicas),
             len(writes.audits), len(writes.spot_checks), len(writes.reversals))
    saved = {r.pk: (r.validate_state, r.server_state, r.outcome) for r in replicas}
    saved_workunit = (workunit.state, workunit.error_reason, workunit.completed_at,
                      workunit.canonical_replica_id, workunit.canonical_output)
    deltas = {d: Delta(**vars(x)) for d, x in writes.credibility.items()}
    cancelled = len(writes.transition.cancelled)
    try:
        app = workunit.app_version.app
        equal = comparator_for(validator=app.validator, options=app.validator_options,
                               code=app.validate_code, app_id=app.pk)
        _judge_in_advance(workunit, replicas, equal)
        _transition(workunit, replicas, equal, writes)
        if workunit.error_reason.startswith(VALIDATION_PAUSED):  # the validator works again
            workunit.error_reason = ""
            writes.workunits[workunit.pk] = workunit
    except Exception as exc:  # the validator's fault: record it, judge nothing, carry on
        logger.warning("validator error on work unit %s: %r", workunit.pk, exc)
        del writes.outcomes[marks[0]:], writes.grants[marks[1]:]
        del writes.new_replicas[marks[2]:], writes.audits[marks[3]:]
        del writes.spot_checks[marks[4]:], writes.reversals[marks[5]:]
        del writes.transition.cancelled[cancelled:]
        writes.credibility = deltas
        for replica in replicas:
            replica.validate_state, replica.server_state, replica.outcome = saved[replica.pk]
        (workunit.state, workunit.error_reason, workunit.completed_at,
         workunit.canonical_replica_id, workunit.canonical_output) = saved_workunit
        writes.workunits.pop(workunit.pk, None)
        if isinstance(exc, ValidatorError):  # a sandboxed validator that could not judge
            reason = (VALIDATION_PAUSED + exc.reason)[:300]
        else:
            reason = f"Validator error: {type(exc).__name__}: {exc}"[:300]
        if workunit.error_reason != reason:  # one audit row per new error, not per pass
            workunit.error_reason = reason
            writes.workunits[workunit.pk] = workunit
            writes.audit(Kind.VALIDATOR_ERROR, workunit, reason=reason)


VALIDATION_PAUSED = "Validation paused: "


def _judge_in_advance(workunit: WorkUnit, replicas: list[Replica], equal) -> None:
    """A sandboxed (custom) validator judges every comparison this pass may make in one
    round trip, before any verdict is decided; if it can't (it crashed, timed out, ...) it
    raises ValidatorError and nobody's result is judged: the work unit waits with the
    reason shown to the owner, and housekeeping retries."""
    prefetch = getattr(equal, "prefetch", None)
    if prefetch is None:
        return
    prefetch(advance_pairs(workunit, replicas))


def _transition(workunit: WorkUnit, replicas: list[Replica], equal, writes: Writes) -> None:
    _judge_spot_checks(workunit, replicas, equal, writes)
    if workunit.is_spot_check:
        return
    if workunit.state != WorkUnit.State.OPEN:
        _judge_late(workunit, replicas, writes)
        return

    successes = [
        r for r in replicas
        if r.outcome == O.SUCCESS and r.validate_state in (V.INIT, V.INCONCLUSIVE)
        and not r.spot_check
    ]
    errors = sum(1 for r in replicas if r.outcome == O.CLIENT_ERROR and not r.spot_check)
    if errors >= workunit.max_error_results:
        _finish(workunit, replicas, WorkUnit.State.FAILED, writes,
                reason=f"Too many errors: {errors} replicas failed "
                       f"(max_error_results is {workunit.max_error_results}).")
        return

    # Adaptive replication: a trusted device's lone result is enough.
    quorum = 1 if len(successes) == 1 and successes[0].solo else workunit.min_quorum
    voters = [writes.standing(r.device_id) for r in successes]
    # A suspect device (in the minority before) no longer uses up the work unit's budget.
    counted = sum(1 for v in voters if not v.suspect)
    agreeing = 0
    if len(successes) >= quorum:
        verdict = canonical_choose([r.output for r in successes], voters, equal,
                                   min_quorum=quorum,
                                   threshold=workunit.app_version.app.credibility_threshold)
        if verdict.choice is not None:
            _complete(workunit, replicas, successes, voters, verdict.choice, writes)
            return
        for replica in successes:
            if replica.validate_state != V.INCONCLUSIVE:
                replica.validate_state = V.INCONCLUSIVE
                writes.replica(replica, "validate_state")
        agreeing = verdict.best_size
        writes.audit(Kind.INCONCLUSIVE, workunit, credibility=verdict.best_credibility,
                     reason=verdict.reason, results=len(successes), counted=counted)
        if counted >= workunit.max_success_results:
            _finish(workunit, replicas, WorkUnit.State.FAILED, writes,
                    reason=f"No consensus among {counted} results "
                           f"(max_success_results is {workunit.max_success_results}).")
            return

    _replicate(workunit, replicas, successes, quorum, writes, agreeing=agreeing)


def _complete(workunit: WorkUnit, replicas: list[Replica], successes: list[Replica],
              voters: list[Standing], choice, writes: Writes) -> None:
    group = set(choice.group)
    canonical = successes[choice.group[0]]
    established = [i for i in group if voters[i].established]
    revalidated = workunit.revalidated_at is not None
    for index, replica in enumerate(successes):
        replica.validate_state = V.VALID if index in group else V.INVALID
        writes.replica(replica, "validate_state")
        writes.verdict(replica)
        if replica.device_id is None or revalidated:
            continue  # a second look at old work does not move credibility again
        if index in group:
            # Confirmed only by someone else's established record (Sarmenta's k grows).
            if any(i != index for i in established):
                writes.delta(replica.device_id).confirmed += 1
        else:
            writes.delta(replica.device_id).minority += 1
    if revalidated:  # results that lost their validity give their credit back
        writes.reversals += [successes[i].pk for i in range(len(successes)) if i not in group]
    workunit.canonical_replica = canonical
    workunit.canonical_output = canonical.output
    _finish(workunit, replicas, WorkUnit.State.COMPLETED, writes)
    writes.grants += [successes[i] for i in sorted(group)]
    writes.audit(Kind.COMPLETED, workunit, credibility=choice.credibility,
                 canonical_replica=canonical.pk,
                 valid=[successes[i].pk for i in sorted(group)],
                 invalid=[r.pk for i, r in enumerate(successes) if i not in group])


def _replicate(workunit: WorkUnit, replicas: list[Replica], successes: list[Replica],
               quorum: int, writes: Writes, *, agreeing: int = 0) -> None:
    """Create unsent replicas until enough are live to reach a credible quorum."""
    live = sum(1 for r in replicas
               if r.server_state in (S.UNSENT, S.IN_PROGRESS) and not r.spot_check)
    inconclusive = len(successes) >= quorum
    target = len(successes) + 1 if inconclusive else workunit.target_nresults
    need = target - len(successes) - live
    if need <= 0:
        return
    # Replicas of quarantined devices (their results thrown out) don't use up the budget.
    used = sum(1 for r in replicas if not r.spot_check
               and not (r.validate_state == V.INVALID and writes.standing(r.device_id).quarantined))
    room = workunit.max_total_results - used
    if room <= 0:
        if live == 0:
            if inconclusive and agreeing >= max(quorum, 2):
                # Results agree but no established device is among them yet: wait (the
                # housekeeping sweep looks again as spot checks establish devices).
                reason = "Waiting for an established device to confirm the agreeing results."
                if workunit.error_reason != reason:
                    workunit.error_reason = reason
                    writes.workunits[workunit.pk] = workunit
                return
            _finish(workunit, replicas, WorkUnit.State.FAILED, writes,
                    reason=f"Gave up after {used} replicas "
                           f"(max_total_results is {workunit.max_total_results}).")
        return
    writes.new_replicas += [Replica(workunit=workunit) for _ in range(min(need, room))]


def _finish(workunit: WorkUnit, replicas: list[Replica], state: str, writes: Writes, *,
            reason: str = "") -> None:
    for replica in replicas:
        if replica.server_state == S.OVER or replica.spot_check:
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
    if state == WorkUnit.State.FAILED:
        writes.audit(Kind.FAILED, workunit, reason=reason)


def _judge_late(workunit: WorkUnit, replicas: list[Replica], writes: Writes) -> None:
    """A result that arrives after the work unit closed earns nothing: the canonical output
    may be public by then, so agreeing with it proves nothing. Stored, shown as too late."""
    late = []
    for replica in replicas:
        if replica.outcome != O.SUCCESS or replica.validate_state != V.INIT or replica.spot_check:
            continue
        replica.validate_state = V.TOO_LATE
        writes.replica(replica, "validate_state")
        late.append(replica.pk)
    if late:
        writes.audit(Kind.LATE, workunit, reason="Arrived after the work unit closed: "
                     "stored, no credit.", replicas=late)


def _judge_spot_checks(workunit: WorkUnit, replicas: list[Replica], equal,
                       writes: Writes) -> None:
    """Compare returned known-answer replicas with the known (or validated) output."""
    known = workunit.known_output if workunit.is_spot_check else workunit.canonical_output
    for replica in replicas:
        if not (replica.spot_check or workunit.is_spot_check):
            continue
        if replica.outcome != O.SUCCESS or replica.validate_state != V.INIT:
            continue
        if known is None or (not workunit.is_spot_check
                             and workunit.state != WorkUnit.State.COMPLETED):
            # The answer was withdrawn meanwhile (the work unit is being revalidated).
            replica.validate_state = V.TOO_LATE
            writes.replica(replica, "validate_state")
            continue
        passed = bool(equal(known, replica.output))
        replica.validate_state = V.VALID if passed else V.INVALID
        writes.replica(replica, "validate_state")
        writes.verdict(replica)
        writes.spot_checks.append(SpotCheck(device_id=replica.device_id,
                                            app_version_id=workunit.app_version_id,
                                            passed=passed))
        delta = writes.delta(replica.device_id)
        if passed:
            delta.passed += 1
            delta.confirmed += 1
            delta.clean_at = replica.received_at or timezone.now()
            writes.grants.append(replica)
        else:
            delta.failed += 1
        writes.audit(Kind.SPOT_CHECK, workunit, device_id=replica.device_id,
                     reason="passed" if passed else "failed", replica=replica.pk)
