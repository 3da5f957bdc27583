"""Reading and updating device credibility (the only writes to DeviceCredibility).

Rows are locked in primary-key order, after volunteers and before reliability rows'
readers are done: the lock order of the README (work units, replicas, volunteers,
reliability and credibility rows, projects, teams).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from sparecycles.db.bulk import rows_update

from .models import DeviceCredibility
from .policy import Voter, device_credibility


def assumed_share() -> float:
    return settings.SPARECYCLES["ASSUMED_SABOTEUR_SHARE"]


def established_after() -> int:
    return settings.SPARECYCLES["ESTABLISHED_AFTER"]


@dataclass(frozen=True)
class Standing(Voter):
    """A Voter plus what scheduling needs to know."""

    confirmed: int = 0
    quarantined: bool = False


def standing_of(row: DeviceCredibility | None, *, quarantined: bool = False) -> Standing:
    confirmed = row.confirmed if row else 0
    minority = row.minority if row else 0
    suspect = minority > 0
    if quarantined:
        return Standing(credibility=0.0, established=False, suspect=True, confirmed=confirmed,
                        quarantined=True)
    return Standing(
        credibility=device_credibility(confirmed=confirmed, assumed_share=assumed_share(),
                                       suspect=suspect),
        established=confirmed >= established_after() and not suspect,
        suspect=suspect, confirmed=confirmed)


def standings(device_ids: Iterable[int]) -> dict[int, Standing]:
    """Every device's standing, new devices included (one query each for rows and flags)."""
    from sparecycles.volunteers.models import Device

    ids = {d for d in device_ids if d is not None}
    if not ids:
        return {}
    rows = {row.device_id: row for row in DeviceCredibility.objects.filter(device_id__in=ids)}
    quarantined = set(Device.objects.filter(pk__in=ids, quarantined=True)
                      .values_list("pk", flat=True))
    return {d: standing_of(rows.get(d), quarantined=d in quarantined) for d in ids}


@dataclass
class Delta:
    """What one pass changes on one device's credibility."""

    confirmed: int = 0
    passed: int = 0
    failed: int = 0
    minority: int = 0
    clean_at: dt.datetime | None = None


def credibility_apply(deltas: dict[int, Delta]) -> list[int]:
    """Apply the deltas under row locks; returns the devices to quarantine now (a failed
    spot check, or too often in the minority since the last clean check)."""
    if not deltas:
        return []
    ids = sorted(deltas)
    DeviceCredibility.objects.bulk_create([DeviceCredibility(device_id=d) for d in ids],
                                          ignore_conflicts=True)
    rows = list(DeviceCredibility.objects.select_for_update(no_key=True)
                .filter(device_id__in=ids).order_by("pk"))
    limit = settings.SPARECYCLES["MINORITY_LIMIT"]
    caught = []
    for row in rows:
        delta = deltas[row.device_id]
        row.confirmed += delta.confirmed
        row.spot_checks_passed += delta.passed
        row.spot_checks_failed += delta.failed
        row.minority += delta.minority
        if delta.clean_at is not None and not delta.failed:
            # A clean check: earlier work is vouched for, and earlier minorities forgiven.
            row.last_clean_check_at = delta.clean_at
            row.minority = delta.minority
        if delta.failed or (limit and row.minority >= limit):
            caught.append(row.device_id)
    rows_update(DeviceCredibility, rows, ["confirmed", "spot_checks_passed",
                                          "spot_checks_failed", "minority",
                                          "last_clean_check_at"])
    return caught
