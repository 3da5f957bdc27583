"""The writes of validation: one entry point for every caller, quarantine, revalidation.

`workunits_validate` is what the socket's intake (gateway.batching), housekeeping,
the validator command and `replica_report` (one result: store it, then validate) all call: one
transaction over many work units (validation.transitioner decides in memory with the
pure functions of validation.policy, then writes verdicts, reliability, credibility
and the audit in bulk, and announces valid results for credit: validation.signals).
Containment lives here too: `devices_quarantine` stops a device's normal work and
sends what it settled since its last clean check back to validation without its
results (`workunits_revalidate`), announcing them invalidated so credit reverses them.
"""

import dataclasses
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from sparecycles import events
from sparecycles.db.bulk import rows_update
from sparecycles.db.retry import deadlock_retry
from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.intake import Ack, Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.validators import validation_plan
from sparecycles.volunteers.models import Device, Volunteer

from .models import DeviceCredibility, ValidationAudit
from .signals import results_invalidated
from .transitioner import Transition, workunits_transition

logger = logging.getLogger(__name__)
S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState
Kind = ValidationAudit.Kind


def workunits_validate(*, workunit_ids) -> Transition:
    """Run the transitioner over these work units and announce.

    Built-in validators' work units go first, in one transaction; then each custom
    validator's app in a transaction of its own, its comparisons judged in the sandbox
    before any row is locked and within a time budget (validators.validation_plan), so
    a slow or failing owner's validator delays only that owner's work units. A work unit
    deferred for lack of time keeps its results pending for the next pass. A deadlock
    the database broke is retried; if it persists the work units stay pending for the
    housekeeping sweep.
    """
    builtin, custom, _deferred = validation_plan(workunit_ids)
    transition = Transition()
    if builtin:
        builtin = _waiting_looked_at(builtin)
    for ids in ([builtin] if builtin else []) + custom:
        done = _workunits_validate_locked(ids)
        transition.cancelled += done.cancelled
        transition.revalidate += done.revalidate
    return transition


def replica_report(*, device: Device, task_id: str, ok: bool, output: Any = None,
                   error: str = "", elapsed_ms: int | None = None) -> Ack:
    """Store one reported result durably (scheduler.intake), then validate its work unit.

    The volunteer socket batches these steps across connections (gateway.batching);
    this is the same path for one result, used by scripts and tests. `accepted=True`
    means the result is safe; a result reported twice is acknowledged as a duplicate.
    """
    stored = results_store([Report(device_id=device.pk, task_id=task_id, ok=ok, output=output,
                                   error=error, elapsed_ms=elapsed_ms)])
    [ack] = stored.acks
    if not stored.workunit_ids:
        return ack
    transition = workunits_validate(workunit_ids=stored.workunit_ids)
    return dataclasses.replace(ack, cancelled=transition.cancelled)


def _waiting_looked_at(workunit_ids: list[int]) -> list[int]:
    """Work units with nothing to decide yet, looked at without locking them; returns the
    others, for the locked transaction.

    At quorum 2 the first result of a work unit arrives while its other replica is still
    out: the transitioner can decide nothing (no quorum, no error, enough replicas live)
    and only marks the result looked at (`pending` off). Doing that in the locked pass
    held the lock on every replica of the work unit, so the second result's store
    (scheduler.intake locks its replica) waited for a whole validation transaction: the
    tail of the ack latency. Here a work unit that is waiting in the plainest way (open,
    not a known answer, no error, no spot check, no adaptive replication, no inconclusive
    or judged result, fewer successes than its quorum, and at least target_nresults replicas
    successful or live) has its pending results marked in one statement of their own
    (`pending` is only "not looked at yet": a result stored meanwhile is pending itself
    and its work unit is validated with it). Everything else takes the locked path."""
    rows = {pk: (quorum, target) for pk, quorum, target in WorkUnit.objects.filter(
        pk__in=workunit_ids, state=WorkUnit.State.OPEN, known_output__isnull=True,
        error_reason="").values_list("pk", "min_quorum", "target_nresults")}
    replicas: dict[int, list[tuple]] = {pk: [] for pk in rows}
    for row in (Replica.objects.filter(workunit_id__in=list(rows)).values_list(
            "workunit_id", "pk", "pending", "outcome", "validate_state", "server_state",
            "spot_check", "solo")):
        replicas[row[0]].append(row[1:])
    waiting, pending, rest = [], [], []
    for pk in workunit_ids:
        if pk not in rows:
            rest.append(pk)
            continue
        quorum, target = rows[pk]
        mine = replicas[pk]
        plain = all(not spot and not solo and validate_state == V.INIT
                    and outcome in (O.INIT, O.SUCCESS)
                    for _, _, outcome, validate_state, _, spot, solo in mine)
        successes = sum(1 for r in mine if r[2] == O.SUCCESS)
        live = sum(1 for r in mine if r[4] in (S.UNSENT, S.IN_PROGRESS))
        if plain and successes < quorum and successes + live >= target:
            waiting.append(pk)
            pending += [r[0] for r in mine if r[1]]
        else:
            rest.append(pk)
    if pending:
        Replica.objects.filter(pk__in=pending, pending=True).update(pending=False)
        _progress_announce(waiting)
    return rest


def _workunits_validate_locked(workunit_ids) -> Transition:
    def run() -> Transition:
        with transaction.atomic():
            transition = workunits_transition(workunit_ids)
            transaction.on_commit(lambda: transition_announce(transition))
            _progress_announce(workunit_ids)
        return transition

    return deadlock_retry(run, what=f"validating {len(workunit_ids)} work units")


def _progress_announce(workunit_ids) -> None:
    """Live project and batch pages refetch their counts (events coalesces the pushes)."""
    rows = (WorkUnit.objects.filter(pk__in=list(workunit_ids))
            .values_list("batch_id", "batch__app_version__app__project_id").distinct())
    batch_ids, project_ids = set(), set()
    for batch_id, project_id in rows:
        batch_ids.add(batch_id)
        project_ids.add(project_id)
    events.progress_changed(batch_ids=batch_ids, project_ids=project_ids)


def transition_announce(transition: Transition) -> None:
    """After commit: cancel what is no longer needed, look again at what was reopened."""
    events.tasks_cancelled(transition.cancelled)
    if transition.revalidate:
        workunits_validate(workunit_ids=sorted(set(transition.revalidate)))


def devices_quarantine(*, device_ids: list[int], reason: str) -> list[int]:
    """Stop trusting these devices; returns the work units to look at again after commit.

    Inside the caller's transaction. Each device gets only known-answer tasks until it
    passes QUARANTINE_RELEASE_PASSES of them; its credibility starts again from zero.
    Its results awaiting validation are thrown out (invalid), and every work unit it
    helped settle since its last clean spot check is reopened without its result.
    """
    device_ids = sorted(set(device_ids))
    if not device_ids:
        return []
    now = timezone.now()
    Device.objects.filter(pk__in=device_ids).update(quarantined=True, quarantine_passes=0)
    rows = list(DeviceCredibility.objects.select_for_update(no_key=True)
                .filter(device_id__in=device_ids).order_by("pk"))
    clean = {row.device_id: row.last_clean_check_at for row in rows}
    for row in rows:
        row.confirmed, row.minority, row.quarantined_at = 0, 0, now
    rows_update(DeviceCredibility, rows, ["confirmed", "minority", "quarantined_at"])
    pending = Replica.objects.filter(
        device_id__in=device_ids, outcome=O.SUCCESS, spot_check=False,
        validate_state__in=[V.INIT, V.INCONCLUSIVE], workunit__state=WorkUnit.State.OPEN,
        workunit__known_output__isnull=True)
    reopen_ids: set[int] = set(pending.values_list("workunit_id", flat=True))
    pending.update(validate_state=V.INVALID)
    settled = Q()
    for device_id in device_ids:
        since = clean.get(device_id)
        mine = Q(device_id=device_id)
        settled |= (mine & Q(received_at__gt=since)) if since else mine
    settled_ids = set(Replica.objects.filter(
        settled, outcome=O.SUCCESS, validate_state=V.VALID, spot_check=False,
        workunit__state=WorkUnit.State.COMPLETED, workunit__known_output__isnull=True)
        .values_list("workunit_id", flat=True))
    ValidationAudit.objects.bulk_create(
        [ValidationAudit(kind=Kind.QUARANTINE, device_id=d, reason=reason[:300],
                         details={"settled_since_clean_check": len(settled_ids)})
         for d in device_ids])
    if settled_ids:
        transaction.on_commit(lambda: workunits_revalidate(
            workunit_ids=sorted(settled_ids), device_ids=device_ids))
    return sorted(reopen_ids)


def workunits_revalidate(*, workunit_ids: list[int], device_ids: list[int]) -> int:
    """Send settled work units back to validation without these devices' results.

    In its own transaction (work unit locks first, as everywhere). The devices' results
    become invalid and their credit is reversed; the other results become candidates
    again (a correct result an earlier wrong canonical beat can now win); the
    canonical result is derived again at once — or, if the rest is not credible
    enough, more replicas are issued. Returns how many work units were reopened.
    """
    def run() -> int:
        with transaction.atomic():
            workunits = list(WorkUnit.objects.select_for_update(no_key=True, of=("self",))
                             .filter(pk__in=workunit_ids, state=WorkUnit.State.COMPLETED)
                             .order_by("pk"))
            if not workunits:
                return 0
            now = timezone.now()
            ids = [w.pk for w in workunits]
            replicas = list(Replica.objects.select_for_update(no_key=True)
                            .filter(workunit_id__in=ids).order_by("pk"))
            thrown, again, vouched = [], [], []
            for replica in replicas:
                if replica.spot_check or replica.outcome != O.SUCCESS:
                    continue
                if replica.device_id in device_ids:
                    if replica.validate_state == V.VALID:
                        thrown.append(replica.pk)
                    replica.validate_state = V.INVALID
                    again.append(replica)
                elif replica.validate_state in (V.VALID, V.INVALID):
                    if replica.validate_state == V.VALID and replica.device_id:
                        vouched.append(replica.device_id)
                    replica.validate_state = V.INCONCLUSIVE
                    again.append(replica)
            rows_update(Replica, again, ["validate_state"])
            # Lock order: volunteers before credibility rows, projects and teams.
            list(Volunteer.objects.select_for_update(no_key=True).order_by("pk")
                 .filter(pk__in={r.volunteer_id for r in again} - {None})
                 .values_list("pk", flat=True))
            # A confirmation given by a device caught later proves nothing: take it back.
            _confirmations_withdraw(vouched)
            for workunit in workunits:
                workunit.state = WorkUnit.State.OPEN
                workunit.canonical_replica = None
                workunit.canonical_output = None
                workunit.completed_at = None
                workunit.revalidated_at = now
                workunit.error_reason = ""
            rows_update(WorkUnit, workunits, ["state", "canonical_replica", "canonical_output",
                                              "completed_at", "revalidated_at",
                                              "error_reason"])
            if thrown:  # credit reverses them, in this transaction (validation.signals)
                results_invalidated.send(sender=Replica, replica_ids=sorted(set(thrown)),
                                         reason="Revalidated: its device was caught cheating.")
            ValidationAudit.objects.bulk_create(
                [ValidationAudit(kind=Kind.REVALIDATION, workunit=w,
                                 reason="Its result came from a device caught later.",
                                 details={"devices": device_ids}) for w in workunits])
            transition = workunits_transition(ids)
            transaction.on_commit(lambda: transition_announce(transition))
            return len(workunits)

    return deadlock_retry(run, what=f"revalidating {len(workunit_ids)} work units")


def _confirmations_withdraw(device_ids: list[int]) -> None:
    counts: dict[int, int] = {}
    for device_id in device_ids:
        counts[device_id] = counts.get(device_id, 0) + 1
    rows = list(DeviceCredibility.objects.select_for_update(no_key=True)
                .filter(device_id__in=list(counts)).order_by("pk"))
    for row in rows:
        row.confirmed = max(0, row.confirmed - counts[row.device_id])
    rows_update(DeviceCredibility, rows, ["confirmed"])


def devices_spot_check_passed(*, device_ids: list[int]) -> list[int]:
    """Count a passed check toward release from quarantine; returns the devices released."""
    needed = settings.SPARECYCLES["QUARANTINE_RELEASE_PASSES"]
    Device.objects.filter(pk__in=device_ids, quarantined=True).update(
        quarantine_passes=F("quarantine_passes") + 1)
    released = list(Device.objects.filter(pk__in=device_ids, quarantined=True,
                                          quarantine_passes__gte=needed)
                    .values_list("pk", flat=True))
    if released:
        Device.objects.filter(pk__in=released).update(quarantined=False, quarantine_passes=0)
        ValidationAudit.objects.bulk_create(
            [ValidationAudit(kind=Kind.RELEASE, device_id=d,
                             reason=f"passed {needed} spot checks in a row") for d in released])
    return released
