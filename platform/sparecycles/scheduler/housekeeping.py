"""Periodic work: time out overdue replicas (which reissues them) and unstick work units.

Safe to run in several processes at once: every change is made under the
work unit's row lock and re-checked there. In the embedded mode a daemon
thread of the web process runs it; in scale-out run `manage.py housekeeping`.
"""

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from sparecycles.projects.models import WorkUnit
from sparecycles.validation.services import transition_announce as _announce
from sparecycles.validation.services import workunits_validate
from sparecycles.validation.transitioner import pending_workunit_ids, workunit_transition

from .models import Replica

logger = logging.getLogger(__name__)
S, O = Replica.ServerState, Replica.Outcome


def replicas_time_out(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Mark replicas past deadline + grace as timed out (no reply) and reissue their work."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.SPARECYCLES["DEADLINE_GRACE_S"])
    workunit_ids = list(
        Replica.objects.filter(server_state=S.IN_PROGRESS, deadline__lt=cutoff)
        .values_list("workunit_id", flat=True).distinct()[:limit]
    )
    timed_out = 0
    for workunit_id in workunit_ids:
        with transaction.atomic():
            workunit = (WorkUnit.objects.select_for_update(no_key=True, of=("self",))
                        .select_related("app_version__app")
                        .get(pk=workunit_id))
            expired = list(workunit.replicas.select_for_update(no_key=True)
                           .filter(server_state=S.IN_PROGRESS, deadline__lt=cutoff))
            for replica in expired:
                replica.workunit = workunit
                replica.server_state = S.OVER
                replica.outcome = O.NO_REPLY
                replica.save(update_fields=["server_state", "outcome"])
            timed_out += len(expired)
            transition = workunit_transition(workunit, verdicts=expired)
            transaction.on_commit(lambda t=transition: _announce(t))
    return timed_out


def workunits_unstick(*, limit: int = 500) -> int:
    """Open work units with no live replica get one more transition (e.g. after a crash)."""
    live = Q(replicas__server_state__in=[S.UNSENT, S.IN_PROGRESS])
    stuck = list(
        WorkUnit.objects.filter(state=WorkUnit.State.OPEN, known_output__isnull=True)
        .exclude(live).values_list("pk", flat=True)[:limit]
    )
    for workunit_id in stuck:
        with transaction.atomic():
            workunit = (WorkUnit.objects.select_for_update(no_key=True, of=("self",))
                        .select_related("app_version__app")
                        .get(pk=workunit_id))
            if workunit.state == WorkUnit.State.OPEN:
                transition = workunit_transition(workunit)
                transaction.on_commit(lambda t=transition: _announce(t))
    return len(stuck)


def pending_validate(*, older_than_s: float = 10, limit: int = 2000, chunk: int = 200) -> int:
    """Validate work units whose reported results were never looked at (the web process
    that stored them died before its validation ran). Recent ones are left to it."""
    older_than = timezone.now() - dt.timedelta(seconds=older_than_s)
    workunit_ids = pending_workunit_ids(limit=limit, older_than=older_than)
    for start in range(0, len(workunit_ids), chunk):
        workunits_validate(workunit_ids=workunit_ids[start:start + chunk])
    return len(workunit_ids)


def stats_export_if_due(*, max_age_s: float = 86400) -> int:
    """Refresh the daily statistics files when they are a day old (or missing)."""
    from sparecycles.credit.stats_export import stats_dir, stats_export

    tables = stats_dir() / "tables.xml"
    if tables.exists() and time.time() - tables.stat().st_mtime < max_age_s:
        return 0
    stats_export()
    return 1


def housekeeping_pass() -> dict[str, int]:
    from sparecycles.ledger.services import epochs_close_due

    return {"validated": pending_validate(), "timed_out": replicas_time_out(),
            "unstuck": workunits_unstick(),
            "epochs_closed": len(epochs_close_due()),
            "stats_exported": stats_export_if_due()}


class HousekeepingThread(threading.Thread):
    """The embedded mode's housekeeping: a daemon thread in the web process."""

    def __init__(self, interval_s: float):
        super().__init__(name="housekeeping", daemon=True)
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        # Results a process that died acked but never validated (it is the only web
        # process, so nothing pending is anyone else's): at once, not in 10-25 s.
        self._pass(lambda: {"validated": pending_validate(older_than_s=0)})
        while not self.stopped.wait(self.interval_s):
            self._pass(housekeeping_pass)

    @staticmethod
    def _pass(work) -> None:
        try:
            close_old_connections()
            counts = work()
            if any(counts.values()):
                logger.info("housekeeping: %s", counts)
        except Exception:  # keep the loop alive; the next pass retries
            logger.exception("housekeeping pass failed")
        finally:
            close_old_connections()


_thread: HousekeepingThread | None = None
_lock = threading.Lock()


def ensure_embedded_housekeeping() -> None:
    """Start the in-process loop once, if this run mode wants it."""
    global _thread
    if not settings.SPARECYCLES["EMBEDDED_HOUSEKEEPING"] or _thread is not None:
        return
    with _lock:
        if _thread is None:
            _thread = HousekeepingThread(settings.SPARECYCLES["HOUSEKEEPING_INTERVAL_S"])
            _thread.start()
