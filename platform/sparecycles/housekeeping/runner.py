"""The one housekeeping entry point: run the due jobs, each in one process only.

`manage.py housekeeping` loops over it (`manage.py serve` starts that process);
the embedded mode (`make run`: one daphne) starts `HousekeepingThread` from
sparecycles.asgi at start-up. Either way every job goes through its lease
(leases.py), so any number of these loops on any number of machines run each job
once per interval. Between passes the loop sleeps until the next job is due.
"""

import datetime as dt
import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from .jobs import JOBS, Job
from .leases import job_claim, job_release, next_due

logger = logging.getLogger(__name__)


def job_run(job: Job, *, force: bool = False) -> dict[str, int] | None:
    """Run `job` if this process wins it; its counts, or None if it was not ours to run."""
    if not job_claim(job.name, interval_s=job.interval_s(), lease_s=job.lease_s, force=force):
        return None
    try:
        return job.run()
    finally:
        job_release(job.name)


def housekeeping_pass(*, force: bool = False) -> dict[str, int]:
    """Every due job (every job with `force`) that no other process holds; one failing
    job does not stop the others."""
    counts: dict[str, int] = {}
    for job in JOBS:
        try:
            result = job_run(job, force=force)
        except Exception:
            logger.exception("housekeeping job %s failed", job.name)
            continue
        counts.update(result or {})
    return counts


def seconds_to_next(*, ceiling_s: float) -> float:
    """How long to sleep: until the soonest job is due, at least a second, at most ceiling_s."""
    due = next_due([job.name for job in JOBS])
    if due is None:
        return 1.0
    wait = (due - timezone.now()) / dt.timedelta(seconds=1)
    return min(max(wait, 1.0), ceiling_s)


def housekeeping_loop(stopped: threading.Event, *, ceiling_s: float,
                      on_pass=None) -> None:
    """Passes until `stopped`; sleeps in between (an idle server does nothing else)."""
    while not stopped.is_set():
        try:
            close_old_connections()
            counts = housekeeping_pass()
            if on_pass is not None:
                on_pass(counts)
            elif any(counts.values()):
                logger.info("housekeeping: %s", counts)
            wait = seconds_to_next(ceiling_s=ceiling_s)
        except Exception:  # e.g. the database away: keep the loop, try again later
            logger.exception("housekeeping pass failed")
            wait = ceiling_s
        finally:
            close_old_connections()
        stopped.wait(wait)


class HousekeepingThread(threading.Thread):
    """The embedded mode's housekeeping: a daemon thread in the web process."""

    def __init__(self, interval_s: float):
        super().__init__(name="housekeeping", daemon=True)
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        from .jobs import validation_sweep_now

        # Results a process that died acked but never validated: at once, not next pass.
        try:
            close_old_connections()
            validation_sweep_now()
        except Exception:
            logger.exception("housekeeping: the start-up validation sweep failed")
        housekeeping_loop(self.stopped, ceiling_s=self.interval_s)


_thread: HousekeepingThread | None = None
_lock = threading.Lock()


def housekeeping_start_embedded() -> bool:
    """Start the in-process loop once, if this run mode wants it (EMBEDDED_HOUSEKEEPING).
    Called by the server's start-up (sparecycles.asgi), never by a request or a socket."""
    global _thread
    if not settings.SPARECYCLES["EMBEDDED_HOUSEKEEPING"]:
        return False
    with _lock:
        if _thread is None:
            _thread = HousekeepingThread(settings.SPARECYCLES["HOUSEKEEPING_INTERVAL_S"])
            _thread.start()
    return True
