"""Credit per valid replica, from measured work (credit.normalisation does the arithmetic).

`replicas_credit_micro` is what credit_grant_many asks: it reads the app versions'
recent validated results, their superuser approvals and the canonical credit already
granted for a work unit, and returns integer micro-credits per replica.
"""

import time
from collections import defaultdict
from dataclasses import replace

from django.conf import settings
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from sparecycles.scheduler.models import Replica

from .models import CreditGrant, FlopsApproval
from .normalisation import (
    DEVICE_WINDOW,
    Claim,
    Sample,
    Scale,
    bounded_by_declaration,
    canonical_ms,
    clamp_elapsed,
    device_medians,
    micro_credit_for_ms,
    scale_from,
)

RECENT = 2000  # the app version's newest validated results that set its reference time
REFERENCE_TTL_S = 30
_references: dict[tuple, tuple[float, Scale]] = {}


def reference_gflops() -> float:
    return settings.SPARECYCLES.get("CREDIT_REFERENCE_MFLOPS", 1000) / 1000


def wall_ms(replica) -> float | None:
    """The time the server saw between sending the task and receiving its result."""
    if replica.sent_at is None or replica.received_at is None:
        return None
    return (replica.received_at - replica.sent_at).total_seconds() * 1000


def claim_of(replica) -> Claim:
    return Claim(replica_id=replica.pk, device_id=replica.device_id,
                 elapsed_ms=clamp_elapsed(replica.elapsed_ms, wall_ms=wall_ms(replica)))


def app_version_scale(*, app_version, device_ids=()) -> Scale:
    """Calibrate one app version: its reference from its newest RECENT validated results
    (kept REFERENCE_TTL_S per process once calibrated: the hot path should not re-read
    them every pass), and each device in `device_ids` from its own newest DEVICE_WINDOW
    results, so a device that was quiet lately is still judged by its own history."""
    base = Replica.objects.filter(workunit__app_version_id=app_version.pk,
                                  validate_state=Replica.ValidateState.VALID,
                                  elapsed_ms__isnull=False, device_id__isnull=False)
    key = (app_version.pk, app_version.created_at)
    hit = _references.get(key)
    if hit is not None and time.monotonic() - hit[0] < REFERENCE_TTL_S:
        reference = hit[1]
    else:
        reference = scale_from(_samples(base.order_by("-id")[:RECENT]))
        if reference.reference_ms is not None:
            _references[key] = (time.monotonic(), reference)
    devices = sorted(set(device_ids) - {None})
    if not devices:
        return reference
    own = _samples(base.filter(device_id__in=devices)
                   .annotate(rank=Window(RowNumber(), partition_by=[F("device_id")],
                                         order_by=F("id").desc()))
                   .filter(rank__lte=DEVICE_WINDOW))
    return replace(reference, device_median_ms=device_medians(own))


def _samples(queryset) -> list[Sample]:
    rows = queryset.values_list("id", "device_id", "elapsed_ms", "sent_at", "received_at")
    samples = []
    for _, device_id, elapsed, sent, received in sorted(rows, reverse=True):
        wall = (received - sent).total_seconds() * 1000 if sent and received else None
        samples.append(Sample(device_id=device_id,
                              elapsed_ms=clamp_elapsed(elapsed, wall_ms=wall)))
    return samples


def approved_flops(app_version_ids) -> dict[int, float]:
    """The approval in force per app version (the newest row, unless it revokes)."""
    found: dict[int, float] = {}
    seen: set[int] = set()
    for row in (FlopsApproval.objects.filter(app_version_id__in=set(app_version_ids))
                .order_by("app_version_id", "-id")):
        if row.app_version_id in seen:
            continue
        seen.add(row.app_version_id)
        if not row.revoked:
            found[row.app_version_id] = row.flops_per_unit
    return found


def replicas_credit_micro(*, replicas: list[Replica]) -> dict[int, int]:
    """Micro-credits for each valid replica: its work unit's canonical credit.

    `replica.workunit.app_version` is read, so load it with the replicas. Replicas of a
    work unit that already has grants (a late result) get the credit granted then.
    """
    by_workunit: dict[int, list[Replica]] = defaultdict(list)
    for replica in replicas:
        by_workunit[replica.workunit_id].append(replica)
    granted = dict(CreditGrant.objects.filter(workunit_id__in=list(by_workunit))
                   .order_by("workunit_id", "id").values_list("workunit_id", "amount_micro"))
    versions = {r.workunit.app_version_id: r.workunit.app_version for r in replicas}
    scales = {
        av: app_version_scale(app_version=versions[av],
                              device_ids={r.device_id for r in replicas
                                          if r.workunit.app_version_id == av})
        for av in sorted(versions)
    }
    approvals = approved_flops(versions)
    gflops = reference_gflops()
    amounts: dict[int, int] = {}
    for workunit_id, group in by_workunit.items():
        if workunit_id in granted:
            amount = granted[workunit_id]
        else:
            av = group[0].workunit.app_version_id
            measured = micro_credit_for_ms(
                canonical_ms([claim_of(r) for r in group], scales[av]), reference_gflops=gflops)
            amount = bounded_by_declaration(measured,
                                            declared_flops=versions[av].flops_per_unit,
                                            approved_flops=approvals.get(av))
        for replica in group:
            amounts[replica.pk] = amount
    return amounts
