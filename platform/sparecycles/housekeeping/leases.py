"""Run each periodic job once across every process and machine: a lease row per job.

`job_claim` is one conditional UPDATE (the job is due and nobody's lease is live).
On PostgreSQL a second UPDATE racing the first waits for its row lock and then
re-checks the condition, finding it false; SQLite runs writes one at a time. The
winner moves `next_run_at` on by the interval before running, so the job runs once
per interval whoever wins; a holder that dies mid-run frees the job when its lease
ends. Runs outside any transaction (each statement commits at once).
"""

import datetime as dt
import os
import socket

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import JobLease


def holder() -> str:
    """This process (after a fork the pid differs, so compute it each time)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def job_claim(name: str, *, interval_s: float, lease_s: float, force: bool = False,
              now: dt.datetime | None = None) -> bool:
    """Take the job if it is due (or `force`) and not running elsewhere: True if taken."""
    now = now or timezone.now()
    _ensure(name, now)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    due = Q() if force else Q(next_run_at__lte=now)
    taken = JobLease.objects.filter(free, due, name=name).update(
        next_run_at=now + dt.timedelta(seconds=interval_s),
        lease_until=now + dt.timedelta(seconds=lease_s), holder=holder())
    return taken == 1


def job_release(name: str, *, now: dt.datetime | None = None) -> None:
    """The run finished (or failed): free the lease, count the run."""
    now = now or timezone.now()
    JobLease.objects.filter(name=name, holder=holder()).update(
        lease_until=None, runs=F("runs") + 1, last_finished_at=now)


def next_due(names: list[str]) -> dt.datetime | None:
    """The soonest time one of these jobs falls due (None if one has never run)."""
    rows = dict(JobLease.objects.filter(name__in=names).values_list("name", "next_run_at"))
    if set(rows) != set(names):
        return None
    return min(rows.values())


def _ensure(name: str, now: dt.datetime) -> None:
    if JobLease.objects.filter(name=name).exists():
        return
    try:
        with transaction.atomic():
            JobLease.objects.create(name=name, next_run_at=now)
    except IntegrityError:
        pass  # another process made it first
