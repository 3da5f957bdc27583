"""Credit per valid replica, from measured work (credit.normalisation does the arithmetic).

`replicas_credit_micro` is what credit_grant_many asks: it reads the app versions'
recent validated results, their superuser approvals and the canonical credit already
granted for a work unit, and returns integer micro-credits per replica.

Calibration is cached per process for REFERENCE_TTL_S, because every validation pass
needs it and re-reading it is a fixed cost per pass (a light load pays it for a few
results): an app version's reference once it has one, and the median of each device
whose window is full (DEVICE_WINDOW validated results), keyed by the app version's pk
and created_at (a new version never reuses another's). A full window's median moves by
at most one rank per new result, so one up to REFERENCE_TTL_S old differs little from a
fresh one; devices with fewer results are read every pass, so a new device, and one
crossing MIN_RESULTS, is judged exactly as without the cache.

The cache gives a cheater nothing. A device with a cached median that starts inflating
its elapsed times is judged by its honest median for at most REFERENCE_TTL_S, where
without the cache its own inflated results would have entered its median; but its
median over 50 results hardly moves for a few results anyway (that is what a median is
for), and every claim is still clamped by the wall time the server saw and by max_ratio
times the reference, and a work unit's credit is the lower median of its valid replicas'
claims (preferring established devices): an inflated claim next to an honest partner
gets the partner's credit, as without the cache. Results invalidated after the fact
(credit reversals) leave a cached median for at most REFERENCE_TTL_S as well.
"""

import time
from collections import Counter, defaultdict
from dataclasses import replace

from django.conf import settings
from django.db.models import BigIntegerField, F, Func, Window
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
# (app version pk, its created_at, device id) -> (when read, the median or None when the
# full window's median is 0): only devices whose window is full (see the docstring).
_device_medians: dict[tuple, tuple[float, float | None]] = {}
DEVICE_CACHE_MAX = 50_000  # entries (see _cache_room)


def calibration_cache_clear() -> None:
    """Forget the per-process calibration (tests, and tools that need exact medians)."""
    _references.clear()
    _device_medians.clear()


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
    """Calibrate one app version: its reference from its newest RECENT validated results,
    and each device in `device_ids` from its own newest DEVICE_WINDOW results, so a device
    that was quiet lately is still judged by its own history. The reference and the
    medians of full windows are kept REFERENCE_TTL_S per process (module docstring)."""
    base = Replica.objects.filter(workunit__app_version_id=app_version.pk,
                                  validate_state=Replica.ValidateState.VALID,
                                  elapsed_ms__isnull=False, device_id__isnull=False)
    key = (app_version.pk, app_version.created_at)
    now = time.monotonic()
    hit = _references.get(key)
    if hit is not None and now - hit[0] < REFERENCE_TTL_S:
        reference = hit[1]
    else:
        reference = scale_from(_samples(base.order_by("-id")[:RECENT]))
        if reference.reference_ms is not None:
            _references[key] = (now, reference)
    devices = sorted(set(device_ids) - {None})
    if not devices:
        return reference
    medians: dict[int, float] = {}
    unread = []
    for device in devices:
        cached = _device_medians.get((*key, device))
        if cached is None or now - cached[0] >= REFERENCE_TTL_S:
            unread.append(device)
        elif cached[1] is not None:
            medians[device] = cached[1]
    if unread:
        own = _samples(base.filter(device_id__in=unread)
                       .annotate(rank=Window(RowNumber(), partition_by=[F("device_id")],
                                             order_by=F("id").desc()))
                       .filter(rank__lte=DEVICE_WINDOW))
        read = device_medians(own)
        medians.update(read)
        full = [device for device, count in Counter(sample.device_id for sample in own).items()
                if count >= DEVICE_WINDOW]
        for device in full:
            if not _cache_room(now):
                break
            _device_medians[(*key, device)] = (now, read.get(device))
    return replace(reference, device_median_ms=medians)


def _cache_room(now: float) -> bool:
    """Whether the device cache may take one more entry: at DEVICE_CACHE_MAX entries the
    expired ones go, and while it is full of fresh ones nothing more is kept (those
    devices are read every pass, as without the cache)."""
    if len(_device_medians) < DEVICE_CACHE_MAX:
        return True
    for entry, (at, _) in list(_device_medians.items()):
        if now - at >= REFERENCE_TTL_S:
            _device_medians.pop(entry, None)
    return len(_device_medians) < DEVICE_CACHE_MAX


class _WallMicroseconds(Func):
    """received_at − sent_at in whole microseconds, NULL when either is: the database
    subtracts, so reading samples parses one integer per row instead of two timestamps
    (`wall_ms` of the same row gives exactly the same milliseconds)."""

    arity = 2
    output_field = BigIntegerField()

    def __init__(self):
        super().__init__(F("received_at"), F("sent_at"))

    def as_sqlite(self, compiler, connection, **extra):
        # Django's own function on SQLite (what it compiles DateTimeField subtraction to).
        return super().as_sql(compiler, connection,
                              template="django_timestamp_diff(%(expressions)s)", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        # EXTRACT gives exact numeric seconds of the interval (PostgreSQL ≥ 14).
        return super().as_sql(compiler, connection, arg_joiner=" - ",
                              template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint",
                              **extra)


def _samples(queryset) -> list[Sample]:
    rows = queryset.annotate(wall_us=_WallMicroseconds()).values_list(
        "id", "device_id", "elapsed_ms", "wall_us")
    samples = []
    for _, device_id, elapsed, wall_us in sorted(rows, reverse=True):
        # As timedelta.total_seconds() divides, so the value equals wall_ms()'s exactly.
        wall = None if wall_us is None else wall_us / 1_000_000 * 1000
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
