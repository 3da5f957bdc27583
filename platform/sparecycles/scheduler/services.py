"""Writes on the scheduler's hot path: handing out tasks and taking results back."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.volunteers.models import Device

from .models import Replica
from .notify import notify_cancelled
from .transitioner import Cancelled, workunit_transition

S = Replica.ServerState
O = Replica.Outcome


def max_inflight() -> int:
    return settings.SPARECYCLES["MAX_INFLIGHT"]


@dataclass(frozen=True)
class Dispatch:
    replicas: list[Replica]
    retry_after_s: int


def tasks_dispatch(*, device: Device, slots: int, known_task_ids: frozenset[str] = frozenset()
                   ) -> Dispatch:
    """Give `device` up to `slots` tasks, never more than max_inflight in flight.

    In-flight tasks the client does not hold on this connection (`known_task_ids`),
    e.g. after a page reload, are sent again first: a device that reconnects
    with its token keeps its tasks.
    """
    now = timezone.now()
    runtimes = [str(r) for r in (device.capabilities or {}).get("runtimes", ["pyodide"])]
    with transaction.atomic():
        inflight = list(
            Replica.objects.filter(device=device, server_state=S.IN_PROGRESS)
            .select_related("workunit__app_version__app")
            .order_by("id")
        )
        chosen = [r for r in inflight if r.task_id not in known_task_ids][:slots]
        want = min(slots - len(chosen), max_inflight() - len(inflight))
        if want > 0:
            chosen += _claim_new(device=device, want=want, runtimes=runtimes, now=now)
    retry = 0 if chosen or slots == 0 else settings.SPARECYCLES["RETRY_AFTER_S"]
    return Dispatch(replicas=chosen, retry_after_s=retry)


def _claim_new(*, device: Device, want: int, runtimes: list[str], now: dt.datetime
               ) -> list[Replica]:
    volunteer_id = device.volunteer_id
    mine = Replica.objects.filter(volunteer_id=volunteer_id).values("workunit_id")
    candidates = (
        Replica.objects.filter(
            server_state=S.UNSENT,
            workunit__state=WorkUnit.State.OPEN,
            workunit__batch__state=Batch.State.OPEN,
            workunit__app_version__runtime__in=runtimes,
        )
        .exclude(workunit_id__in=mine)
        .order_by("id")
        .values_list("id", "workunit_id", "workunit__delay_bound")[: want * 4]
    )
    claimed: list[int] = []
    seen_workunits: set[int] = set()
    for replica_id, workunit_id, delay_bound in candidates:
        if len(claimed) == want:
            break
        if workunit_id in seen_workunits:
            continue
        try:
            with transaction.atomic():  # savepoint: a lost race must not spoil the batch
                updated = Replica.objects.filter(pk=replica_id, server_state=S.UNSENT).update(
                    server_state=S.IN_PROGRESS,
                    device=device,
                    volunteer_id=volunteer_id,
                    sent_at=now,
                    deadline=now + dt.timedelta(seconds=delay_bound),
                )
        except IntegrityError:  # another device of this volunteer took this work unit
            continue
        if updated == 1:
            claimed.append(replica_id)
            seen_workunits.add(workunit_id)
    return list(
        Replica.objects.filter(pk__in=claimed)
        .select_related("workunit__app_version__app")
        .order_by("id")
    )


def task_payload(replica: Replica) -> dict[str, Any]:
    version = replica.workunit.app_version
    return {
        "task_id": replica.task_id,
        "deadline": replica.deadline.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "app": {
            "name": version.app.name,
            "version": version.number,
            "runtime": version.runtime,
            "code_url": version.code_url,
            "sha256": version.sha256,
            "entry": version.entry,
            "packages": list(version.packages),
        },
        "input": replica.workunit.input,
    }


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


def replica_report(*, device: Device, task_id: str, ok: bool, output: Any = None,
                   error: str = "", elapsed_ms: int | None = None) -> Ack:
    """Store one reported result durably and move its work unit along.

    Returns after commit, so `accepted=True` means the result is safe. A result
    reported twice is acknowledged as a duplicate and changes nothing.
    """
    with transaction.atomic():
        replica = (
            Replica.objects.select_for_update().filter(task_id=task_id).only(
                "id", "device_id", "received_at", "workunit_id"
            ).first()
        )
        if replica is None:
            return Ack(task_id, accepted=False, reason="unknown_task")
        if replica.device_id != device.pk:
            return Ack(task_id, accepted=False, reason="not_assigned")
        if replica.received_at is not None:
            return Ack(task_id, accepted=True, duplicate=True)
        # Lock order: work unit, then its replicas (the transitioner relocks them).
        workunit = (
            WorkUnit.objects.select_for_update()
            .select_related("app_version__app")
            .get(pk=replica.workunit_id)
        )
        replica = Replica.objects.select_for_update().get(pk=replica.pk)
        # A replica that timed out or was cancelled may still report: it is stored,
        # and the transitioner compares it with the canonical result if there is one.
        replica.server_state = S.OVER
        replica.received_at = timezone.now()
        replica.elapsed_ms = elapsed_ms
        if ok:
            replica.outcome = O.SUCCESS
            replica.output = output
        else:
            replica.outcome = O.CLIENT_ERROR
            replica.error_message = (error or "unspecified error")[:1000]
        replica.save()
        cancelled = workunit_transition(workunit)
        transaction.on_commit(lambda: notify_cancelled(cancelled))
    return Ack(task_id, accepted=True, cancelled=cancelled)
