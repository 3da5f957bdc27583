"""Credit from measured work: pure functions, no database (credit.claims feeds them).

What a result is worth is the time a *reference device* would take to compute its work
unit, at BOINC's rate (1 credit = 1/200 day of a 1-GFLOPS machine). The reference
device of an app version is its median established device. Like BOINC's CreditNew
(sched/credit.cpp) we start from the elapsed time the client reports and normalise it by
the device's own speed; unlike it, every step is a robust statistic, so a few liars,
outliers or one prolific device cannot set the scale:

- elapsed times are clamped to the wall time the server saw between sending the task and
  receiving the result (CreditNew trusts the reported time; here it cannot exceed that);
- a device's speed on an app version is the *median* of its own recent (clamped) elapsed
  times over validated results; a device that always reports ten times its real time has
  a ten times larger median, so its claims come out the same (host normalisation);
- the reference time of the app version is the median of those device medians over
  distinct established devices: each device is one vote however many results it sends,
  so fast cheaters and flooders move it only by outnumbering the honest devices
  (CreditNew's averages are exponential means over results: one fast host drags them);
- one claim is clamped to a multiple of the reference that follows the app version's own
  honest spread: SPREAD_MARGIN times the median, over established devices, of each
  device's 95th-percentile time over its median time (at least MIN_RATIO). Mandelbrot
  tiles legitimately differ a hundredfold, a Monte-Carlo unit hardly at all; a minority of
  devices lying about a few results moves neither median (CreditNew caps host scale at 10
  and checks rsc_fpops_bound, which the owner declares);
- a work unit's credit is the *lower median* of its valid replicas' claims (the minimum
  for two), preferring claims of established devices; CreditNew averages them, so one
  inflated claim in a quorum of two raises everyone's credit by half of it;
- every valid replica of the work unit gets that same credit (BOINC's canonical credit),
  as integer micro-credits.

Until an app version has MIN_DEVICES established devices it has no reference: a claim is
the raw clamped elapsed time (as if the device were the reference); a device with fewer
than MIN_RESULTS validated results claims at most the reference time (a new identity
cannot claim more than a typical result: no gain from fresh devices).

The owner's declared FLOPs estimate can only lower this (`bounded_by_declaration`); a
superuser's recorded approval lets the declared estimate stand instead.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

MICRO = 1_000_000
FLOPS_PER_CREDIT = 86_400e9 / 200  # BOINC: 1 credit = 1/200 day of a 1-GFLOPS machine
MIN_RESULTS = 3        # validated results before a device's own speed is trusted
MIN_DEVICES = 3        # established devices before an app version has a reference
MIN_RATIO = 4.0        # the clamp never falls below this many reference times
SPREAD_MARGIN = 2.0    # ... and is this many times the honest devices' p95/median spread
DEVICE_WINDOW = 50     # a device's most recent validated results that set its speed
# No one result is ever worth more than a million credit (a 1-GFLOPS machine for 5,000
# days), approved or not (BOINC's max_granted_credit): totals stay far inside 64 bits.
MAX_GRANT_MICRO = 10**6 * MICRO


@dataclass(frozen=True)
class Sample:
    """One validated result's time, as the statistics see it."""

    device_id: int
    elapsed_ms: float


@dataclass(frozen=True)
class Scale:
    """An app version's calibration: its reference time and its devices' medians."""

    reference_ms: float | None              # None: not calibrated yet
    device_median_ms: dict[int, float]      # established devices only
    max_ratio: float = MIN_RATIO            # one claim is at most this many references

    def established(self, device_id: int | None) -> bool:
        return device_id is not None and device_id in self.device_median_ms


@dataclass(frozen=True)
class Claim:
    replica_id: int
    device_id: int | None
    elapsed_ms: float | None   # clamped; None when the client reported none


def clamp_elapsed(elapsed_ms: int | None, *, wall_ms: float | None) -> float | None:
    """The reported time, never negative and never longer than the server's wall time."""
    if elapsed_ms is None:
        return None
    value = max(0.0, float(elapsed_ms))
    if wall_ms is not None:
        value = min(value, max(0.0, wall_ms))
    return value


def device_medians(samples: Iterable[Sample], *, min_results: int = MIN_RESULTS,
                   window: int = DEVICE_WINDOW) -> dict[int, float]:
    """The median time of each device with at least `min_results` samples (newest first)."""
    return {device: m for device, m in _medians(_by_device(samples, window), min_results)}


def _by_device(samples: Iterable[Sample], window: int) -> dict[int, list[float]]:
    per_device: dict[int, list[float]] = {}
    for sample in samples:
        times = per_device.setdefault(sample.device_id, [])
        if len(times) < window:
            times.append(sample.elapsed_ms)
    return per_device


def _medians(per_device: dict[int, list[float]], min_results: int):
    for device, times in per_device.items():
        if len(times) >= min_results and median(times) > 0:
            yield device, median(times)


def scale_from(samples: Iterable[Sample], *, min_results: int = MIN_RESULTS,
               min_devices: int = MIN_DEVICES, window: int = DEVICE_WINDOW) -> Scale:
    """Calibrate an app version from validated results, newest first."""
    per_device = _by_device(samples, window)
    usable = dict(_medians(per_device, min_results))
    if len(usable) < min_devices:
        return Scale(reference_ms=None, device_median_ms=usable)
    spread = median(_upper(per_device[device]) / m for device, m in usable.items())
    return Scale(reference_ms=median(usable.values()), device_median_ms=usable,
                 max_ratio=max(MIN_RATIO, SPREAD_MARGIN * spread))


def _upper(times: list[float]) -> float:
    """The 95th percentile (nearest rank) of one device's times."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def reference_ms_of(claim: Claim, scale: Scale) -> float:
    """What one replica claims, in milliseconds of the reference device."""
    if claim.elapsed_ms is None:
        return 0.0
    if scale.reference_ms is None:
        return claim.elapsed_ms
    own = scale.device_median_ms.get(claim.device_id) if claim.device_id is not None else None
    if own is None:
        return min(claim.elapsed_ms, scale.reference_ms)
    return min(claim.elapsed_ms / own * scale.reference_ms,
               scale.max_ratio * scale.reference_ms)


def lower_median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0.0


def canonical_ms(claims: list[Claim], scale: Scale) -> float:
    """A work unit's measured work: the lower median of its replicas' claims.

    Claims of established devices are preferred when there are any (as CreditNew prefers
    its "normal" claims), so a new device neither raises nor lowers them.
    """
    trusted = [c for c in claims if scale.established(c.device_id)]
    chosen = trusted or claims
    return lower_median([reference_ms_of(c, scale) for c in chosen])


def micro_credit_for_ms(reference_ms: float, *, reference_gflops: float) -> int:
    """Integer micro-credits for work that takes the reference device `reference_ms`."""
    flops = reference_ms / 1000 * reference_gflops * 1e9
    return micro_credit_for_flops(flops)


def micro_credit_for_flops(flops: float) -> int:
    return max(0, round(flops / FLOPS_PER_CREDIT * MICRO))


def bounded_by_declaration(measured_micro: int, *, declared_flops: float,
                           approved_flops: float | None) -> int:
    """The credit granted: the measured credit, lowered by the declared estimate.

    With a superuser's approval the declared estimate stands even above the measured
    credit, but never above the approved value (an owner who raises the estimate after the
    approval gets only what was approved).
    """
    declared = micro_credit_for_flops(declared_flops) if declared_flops > 0 else None
    if approved_flops is not None and declared is not None:
        granted = micro_credit_for_flops(min(declared_flops, approved_flops))
    else:
        granted = measured_micro if declared is None else min(measured_micro, declared)
    return min(granted, MAX_GRANT_MICRO)
