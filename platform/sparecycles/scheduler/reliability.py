"""Per-device, per-app-version reliability: the only writes to HostAppVersion.

BOINC semantics: consecutive_valid counts valid results since the last
invalid, error or timeout; the daily quota drops by one per error or timeout
and doubles back (up to DAILY_QUOTA) with each valid result.
"""

from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from sparecycles.volunteers.reputation import reputation_refresh

from .models import HostAppVersion, Replica


def daily_quota() -> int:
    return settings.SPARECYCLES["DAILY_QUOTA"]


def starting_quota() -> int:
    """A new device's quota: small, so a flood of fresh devices gets little work (trust ramp)."""
    return min(settings.SPARECYCLES["DAILY_QUOTA_START"], daily_quota())


def host_get(*, device_id: int, app_version_id: int) -> HostAppVersion:
    """The row for (device, app version), locked for update; created on first use."""
    host = (HostAppVersion.objects.select_for_update()
            .filter(device_id=device_id, app_version_id=app_version_id).first())
    if host is not None:
        return host
    try:
        with transaction.atomic():  # savepoint: another transaction may create it first
            return HostAppVersion.objects.create(device_id=device_id,
                                                 app_version_id=app_version_id,
                                                 max_jobs_per_day=starting_quota())
    except IntegrityError:
        return HostAppVersion.objects.select_for_update().get(device_id=device_id,
                                                              app_version_id=app_version_id)


def host_quota_left(host: HostAppVersion, *, today: date) -> int:
    used = host.jobs_today if host.quota_day == today else 0
    return max(0, host.max_jobs_per_day - used)


def host_record_sent(*, device_id: int, app_version_id: int, count: int = 1) -> None:
    today = timezone.now().date()
    host = host_get(device_id=device_id, app_version_id=app_version_id)
    if host.quota_day != today:
        host.quota_day, host.jobs_today = today, 0
    host.jobs_today += count
    host.save(update_fields=["quota_day", "jobs_today"])


def host_record_outcome(replica: Replica) -> None:
    """Account for a replica that just got its final verdict."""
    if replica.device_id is None:
        return
    host = host_get(device_id=replica.device_id, app_version_id=replica.workunit.app_version_id)
    V, O = Replica.ValidateState, Replica.Outcome
    fields = ["consecutive_valid", "max_jobs_per_day"]
    valid = replica.outcome == O.SUCCESS and replica.validate_state == V.VALID
    if valid:
        host.n_valid += 1
        host.consecutive_valid += 1
        host.max_jobs_per_day = min(daily_quota(), host.max_jobs_per_day * 2)
        fields.append("n_valid")
        if replica.received_at and replica.sent_at:
            seconds = (replica.received_at - replica.sent_at).total_seconds()
            previous = host.turnaround_avg_s
            host.turnaround_avg_s = seconds if previous is None else 0.9 * previous + 0.1 * seconds
            fields.append("turnaround_avg_s")
    elif replica.outcome == O.SUCCESS and replica.validate_state == V.INVALID:
        host.n_invalid += 1
        host.consecutive_valid = 0
        host.max_jobs_per_day = max(1, host.max_jobs_per_day - 1)
        fields.append("n_invalid")
    elif replica.outcome == O.CLIENT_ERROR:
        host.n_error += 1
        host.consecutive_valid = 0
        host.max_jobs_per_day = max(1, host.max_jobs_per_day - 1)
        fields.append("n_error")
    elif replica.outcome == O.NO_REPLY:
        host.n_timeout += 1
        host.consecutive_valid = 0
        host.max_jobs_per_day = max(1, host.max_jobs_per_day - 1)
        fields.append("n_timeout")
    else:
        return
    host.save(update_fields=fields)
    # Reputation moves slowly with valid results, so it is recomputed after bad news at
    # once, and after good news only now and then (it is an aggregate over the devices).
    if replica.volunteer_id and (not valid or host.consecutive_valid in (1, 3)
                                 or host.consecutive_valid % 10 == 0):
        reputation_refresh(volunteer_id=replica.volunteer_id)


def host_record_spot_check(*, device_id: int, app_version_id: int, passed: bool) -> None:
    host = host_get(device_id=device_id, app_version_id=app_version_id)
    if passed:
        host.spot_checks_passed += 1
        host.save(update_fields=["spot_checks_passed"])
    else:
        host.spot_checks_failed += 1
        host.save(update_fields=["spot_checks_failed"])
        # A wrong known answer wipes the device's trust on every app.
        HostAppVersion.objects.filter(device_id=device_id).update(consecutive_valid=0)
        reputation_refresh(volunteer_id=host.device.volunteer_id)
