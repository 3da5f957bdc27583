"""Taking reported results in: many at once, durably, and nothing else on that path.

A batch of reports is one transaction with three queries (the replicas,
locked; the reporting devices' quarantine flags; one bulk update). Each
replica is marked `pending`; validation happens afterwards, off the socket's
critical path (validation.services.workunits_validate), and housekeeping sweeps up any
pending replica a crash left behind. An `ack` with accepted=True is only ever
sent after this commit, so an acknowledged result is never lost.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from sparecycles.db.bulk import rows_update
from sparecycles.volunteers.models import Device
from sparecycles.wire import output_problem, unstorable_text

from .models import Cancelled, Replica

logger = logging.getLogger(__name__)

S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState

ELAPSED_MS_MAX = 2**31 - 1
STORED_FIELDS = ["server_state", "received_at", "elapsed_ms", "outcome", "output",
                 "error_message", "validate_state", "pending"]


@dataclass(frozen=True)
class Report:
    """One `result` frame, as the socket parsed it."""

    device_id: int
    task_id: str
    ok: bool
    output: Any = None
    error: str = ""
    elapsed_ms: int | None = None


@dataclass(frozen=True)
class Ack:
    task_id: str
    accepted: bool
    duplicate: bool = False
    reason: str = ""
    cancelled: list[Cancelled] = field(default_factory=list)

    def frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "ack", "task_id": self.task_id, "accepted": self.accepted}
        if self.duplicate:
            frame["duplicate"] = True
        if self.reason:
            frame["reason"] = self.reason
        return frame


@dataclass(frozen=True)
class Stored:
    acks: list[Ack]  # one per report, in order
    workunit_ids: list[int]  # work units with newly stored results, to validate


def results_store(reports: Sequence[Report]) -> Stored:
    """Store reported results in one transaction; returns after commit.

    A result reported twice (in this batch or before) is acknowledged as a duplicate
    and changes nothing. A replica that timed out or was cancelled may still report:
    it is stored, and the transitioner compares it with the canonical result.

    One bad report never sinks the others of its batch: an output that is not JSON
    (NaN, Infinity) is refused (reason `invalid`) before the database sees it, and if
    the database still refuses the batch's data, each report is stored in a
    transaction of its own and only the one it refuses is refused.
    """
    # Refused before the database sees them (a refused row would send the whole batch down
    # the one-transaction-per-report path below and log a traceback): no task id holds NUL
    # or a lone surrogate, and an output with either is refused as NaN is.
    unknown = {r.task_id for r in reports if unstorable_text(r.task_id)}
    bad = {r.task_id for r in reports
           if r.task_id not in unknown and r.ok and output_problem(r.output, max_depth=None)}
    good = [r for r in reports if r.task_id not in bad and r.task_id not in unknown]
    try:
        stored = _results_store(good) if good else Stored(acks=[], workunit_ids=[])
    except (DataError, IntegrityError):
        if len(good) == 1:
            logger.warning("the database refused the result of task %s", good[0].task_id,
                           exc_info=True)
            stored = Stored(acks=[Ack(good[0].task_id, accepted=False, reason="invalid")],
                            workunit_ids=[])
        else:
            parts = [results_store([report]) for report in good]
            stored = Stored(acks=[ack for part in parts for ack in part.acks],
                            workunit_ids=sorted({i for part in parts for i in part.workunit_ids}))
    acks = iter(stored.acks)
    return Stored(acks=[Ack(r.task_id, accepted=False, reason="unknown_task")
                        if r.task_id in unknown
                        else Ack(r.task_id, accepted=False, reason="invalid") if r.task_id in bad
                        else next(acks) for r in reports],
                  workunit_ids=stored.workunit_ids)


def _results_store(reports: Sequence[Report]) -> Stored:
    now = timezone.now()
    with transaction.atomic():
        replicas = {
            r.task_id: r for r in
            Replica.objects.select_for_update(no_key=True)
            .filter(task_id__in={x.task_id for x in reports})
            .select_related(None).only("id", "task_id", "workunit_id", "device_id", "received_at")
            .order_by("pk")
        }
        # A query of its own, after the lock: a validation pass holding these replicas may
        # quarantine their holder before it commits, and a column joined onto the locked
        # select would be read from before that wait (tests/scheduler/test_intake.py).
        quarantined = set(Device.objects.filter(
            pk__in={x.device_id for x in reports}, quarantined=True).values_list("pk", flat=True))
        spot_checks = set()
        if quarantined:
            spot_checks = set(Replica.objects.filter(
                pk__in=[r.pk for r in replicas.values() if r.device_id in quarantined],
                workunit__known_output__isnull=False).values_list("pk", flat=True))
        acks, stored = [], []
        for report in reports:
            replica = replicas.get(report.task_id)
            if replica is None:
                acks.append(Ack(report.task_id, accepted=False, reason="unknown_task"))
            elif replica.device_id != report.device_id:
                acks.append(Ack(report.task_id, accepted=False, reason="not_assigned"))
            elif replica.received_at is not None:
                acks.append(Ack(report.task_id, accepted=True, duplicate=True))
            else:
                _store(replica, report, now=now,
                       invalid=replica.device_id in quarantined and replica.pk not in spot_checks)
                stored.append(replica)
                acks.append(Ack(report.task_id, accepted=True))
        if stored:
            rows_update(Replica, stored, STORED_FIELDS)
    return Stored(acks=acks, workunit_ids=sorted({r.workunit_id for r in stored}))


def _store(replica: Replica, report: Report, *, now, invalid: bool) -> None:
    replica.server_state = S.OVER
    replica.received_at = now
    # The protocol allows up to 10^10 ms; the column holds 2^31 - 1 on PostgreSQL, and one
    # out-of-range value would fail the whole batch. Credit clamps it to wall time anyway.
    replica.elapsed_ms = None if report.elapsed_ms is None else min(report.elapsed_ms,
                                                                     ELAPSED_MS_MAX)
    replica.pending = True
    replica.output = None
    replica.error_message = ""
    replica.validate_state = V.INIT
    if report.ok:
        replica.outcome = O.SUCCESS
        replica.output = report.output
        if invalid:
            replica.validate_state = V.INVALID  # a quarantined device never counts to a quorum
    else:
        replica.outcome = O.CLIENT_ERROR
        # Free text from the client: NUL and lone surrogates (which PostgreSQL refuses)
        # become U+FFFD, so an error report is stored rather than refused.
        error = (report.error or "unspecified error")[:1000]
        if unstorable_text(error):
            error = "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c
                            for c in error)
        replica.error_message = error
