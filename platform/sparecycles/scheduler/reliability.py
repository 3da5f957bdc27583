"""Per-device, per-app-version reliability: the only writes to HostAppVersion.

BOINC semantics: consecutive_valid counts valid results since the last
invalid, error or timeout; the daily quota drops by one per error or timeout
and doubles back (up to DAILY_QUOTA) with each valid result.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.conf import settings

from sparecycles.db.bulk import rows_update
from sparecycles.volunteers.models import Device

from .models import HostAppVersion, Replica


def daily_quota() -> int:
    return settings.SPARECYCLES["DAILY_QUOTA"]


def starting_quota() -> int:
    """A new device's quota: small, so a flood of fresh devices gets little work (trust ramp)."""
    return min(settings.SPARECYCLES["DAILY_QUOTA_START"], daily_quota())


def host_quota_left(host: HostAppVersion, *, today: date) -> int:
    used = host.jobs_today if host.quota_day == today else 0
    return max(0, host.max_jobs_per_day - used)


@dataclass(frozen=True)
class Outcome:
    """A replica's final verdict, as reliability counts it."""

    device_id: int
    app_version_id: int
    volunteer_id: int | None
    outcome: str
    validate_state: str
    turnaround_s: float | None

    @classmethod
    def of(cls, replica: Replica) -> "Outcome":
        turnaround = None
        if replica.received_at and replica.sent_at:
            turnaround = (replica.received_at - replica.sent_at).total_seconds()
        return cls(device_id=replica.device_id,
                   app_version_id=replica.workunit.app_version_id,
                   volunteer_id=replica.volunteer_id, outcome=replica.outcome,
                   validate_state=replica.validate_state, turnaround_s=turnaround)


@dataclass(frozen=True)
class SpotCheck:
    device_id: int
    app_version_id: int
    passed: bool


def hosts_record(*, outcomes: Sequence[Outcome] = (), spot_checks: Sequence[SpotCheck] = ()
                 ) -> list[int]:
    """Account for many verdicts and spot checks: each reliability row is locked and written
    once. Returns the volunteers whose reputation moved, for validation to recompute
    (validation.reputation) once per volunteer."""
    if not outcomes and not spot_checks:
        return []
    keys = {(o.device_id, o.app_version_id) for o in outcomes}
    keys |= {(c.device_id, c.app_version_id) for c in spot_checks}
    hosts = _hosts_lock(keys)
    dirty: dict[int, set[str]] = {}
    refresh: set[int] = set()
    for outcome in outcomes:
        host = hosts[(outcome.device_id, outcome.app_version_id)]
        changed = _apply(host, outcome)
        if not changed:
            continue
        dirty.setdefault(host.pk, set()).update(changed)
        # Reputation moves slowly with valid results, so it is recomputed after bad news
        # at once, and after good news only now and then (it aggregates over devices).
        valid = "n_valid" in changed
        if outcome.volunteer_id and (not valid or host.consecutive_valid in (1, 3)
                                     or host.consecutive_valid % 10 == 0):
            refresh.add(outcome.volunteer_id)
    failed_devices = []
    for check in spot_checks:
        host = hosts[(check.device_id, check.app_version_id)]
        name = "spot_checks_passed" if check.passed else "spot_checks_failed"
        setattr(host, name, getattr(host, name) + 1)
        dirty.setdefault(host.pk, set()).add(name)
        if not check.passed:
            failed_devices.append(check.device_id)
    by_fields: dict[tuple[str, ...], list[HostAppVersion]] = {}
    for host in hosts.values():
        if host.pk in dirty:
            by_fields.setdefault(tuple(sorted(dirty[host.pk])), []).append(host)
    for fields, rows in by_fields.items():
        rows_update(HostAppVersion, rows, fields)
    if failed_devices:
        # A wrong known answer wipes the device's trust on every app.
        HostAppVersion.objects.filter(device_id__in=failed_devices).update(consecutive_valid=0)
        refresh |= set(Device.objects.filter(pk__in=failed_devices)
                       .values_list("volunteer_id", flat=True))
    return sorted(refresh)


def _hosts_lock(keys: set[tuple[int, int]]) -> dict[tuple[int, int], HostAppVersion]:
    """The rows for these (device, app version) pairs, locked in id order; made if missing."""
    def load() -> dict[tuple[int, int], HostAppVersion]:
        rows = (HostAppVersion.objects.select_for_update(no_key=True).order_by("pk")
                .filter(device_id__in={d for d, _ in keys},
                        app_version_id__in={v for _, v in keys}))
        return {(h.device_id, h.app_version_id): h for h in rows
                if (h.device_id, h.app_version_id) in keys}

    hosts = load()
    missing = keys - set(hosts)
    if missing:
        HostAppVersion.objects.bulk_create(
            [HostAppVersion(device_id=d, app_version_id=v, max_jobs_per_day=starting_quota())
             for d, v in sorted(missing)], ignore_conflicts=True)
        hosts = load()
    return hosts


def _apply(host: HostAppVersion, outcome: Outcome) -> list[str]:
    """Count one verdict on `host` in memory; returns the fields it changed."""
    V, O = Replica.ValidateState, Replica.Outcome
    fields = ["consecutive_valid", "max_jobs_per_day"]
    if outcome.outcome == O.SUCCESS and outcome.validate_state == V.VALID:
        host.n_valid += 1
        host.consecutive_valid += 1
        host.max_jobs_per_day = min(daily_quota(), host.max_jobs_per_day * 2)
        fields.append("n_valid")
        if outcome.turnaround_s is not None:
            previous = host.turnaround_avg_s
            host.turnaround_avg_s = (outcome.turnaround_s if previous is None
                                     else 0.9 * previous + 0.1 * outcome.turnaround_s)
            fields.append("turnaround_avg_s")
        return fields
    if outcome.outcome == O.SUCCESS and outcome.validate_state == V.INVALID:
        host.n_invalid += 1
        fields.append("n_invalid")
    elif outcome.outcome == O.CLIENT_ERROR:
        host.n_error += 1
        fields.append("n_error")
    elif outcome.outcome == O.NO_REPLY:
        host.n_timeout += 1
        fields.append("n_timeout")
    else:
        return []
    host.consecutive_valid = 0
    host.max_jobs_per_day = max(1, host.max_jobs_per_day - 1)
    return fields
