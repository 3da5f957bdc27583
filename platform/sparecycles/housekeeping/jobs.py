"""The periodic jobs, in one place: deadlines, the validation sweep, epochs, stats export.

Each job is a function returning counts for the log. The job bodies live in the
apps that own the data (scheduler, validation, ledger, credit); this edge app only
decides when they run and makes sure one process runs each.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from sparecycles.credit.stats_export import stats_dir, stats_export
from sparecycles.jobs.services import jobs_reap
from sparecycles.ledger.services import epochs_close_due
from sparecycles.validation.sweeps import (
    pending_validate,
    replicas_time_out,
    workunits_unstick,
)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], dict[str, int]]
    interval_s: Callable[[], float]   # read from settings when the job is scheduled
    lease_s: float = 600              # a holder dead this long frees the job


def deadlines() -> dict[str, int]:
    """Overdue replicas time out (and are reissued); open work with none out gets more."""
    return {"timed_out": replicas_time_out(), "unstuck": workunits_unstick()}


def validation_sweep() -> dict[str, int]:
    """Results a dead process stored but never validated."""
    return {"validated": pending_validate()}


def epochs() -> dict[str, int]:
    return {"epochs_closed": len(epochs_close_due())}


def stats_export_if_due(*, max_age_s: float = 86400) -> dict[str, int]:
    """Refresh the daily statistics files when they are a day old (or missing)."""
    tables = stats_dir() / "tables.xml"
    if tables.exists() and time.time() - tables.stat().st_mtime < max_age_s:
        return {"stats_exported": 0}
    stats_export()
    return {"stats_exported": 1}


def background_jobs_reap() -> dict[str, int]:
    """Background jobs whose process died: failed (their work rolled back with it)."""
    return {"jobs_reaped": jobs_reap()}


def _interval() -> float:
    return float(settings.SPARECYCLES["HOUSEKEEPING_INTERVAL_S"])


JOBS = [
    Job("deadlines", deadlines, _interval),
    Job("validation_sweep", validation_sweep, _interval),
    Job("epochs", epochs, _interval),
    Job("stats_export", stats_export_if_due, lambda: 3600.0),
    Job("background_jobs_reap", background_jobs_reap, lambda: 60.0),
]


def validation_sweep_now() -> dict[str, int]:
    """At a server's start: everything left pending, however recent (no lease: the
    validation itself locks each work unit, so running beside a sweep is safe)."""
    return {"validated": pending_validate(older_than_s=0)}
