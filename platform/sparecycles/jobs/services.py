"""Durable background jobs shared by every process (a small table, no broker).

`job_enqueue` stores the job and, after commit, starts it on a thread of this
process. `job_run` claims it with one conditional UPDATE (queued -> running, so
of several racing exactly one runs it), then calls the kind's handler while a
heartbeat thread renews the lease and publishes progress. Progress is written to
the job's row where the database allows a second writer (PostgreSQL) and to the
shared cache (Redis whenever there are several processes), so a poll on any
worker sees it. A job whose process died (kill -9, a restart) is marked failed by
`job_fail_if_dead`: when polled, and by housekeeping's sweep (`jobs_reap`).
Handlers do their writes in one transaction, so a dead job made nothing.

This module imports no domain app: handlers register themselves with `job_handler`.
"""

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from .models import BackgroundJob

logger = logging.getLogger(__name__)

LEASE_S = 30          # a running job's holder renews its lease this often (PostgreSQL)
HEARTBEAT_S = 1.0     # progress and lease are published this often
QUEUED_TOO_LONG_S = 600
DIED = ("The server process running this job stopped before it finished; nothing was "
        "created. Start it again.")
FAILED = ("The job failed and nothing was created ({kind}). Try again; if it keeps failing, "
          "tell the site's administrators.")

Handler = Callable[[BackgroundJob, Callable[[int, int], None]], dict[str, Any]]
_handlers: dict[str, Handler] = {}
_cleanups: dict[str, Callable[[BackgroundJob], None]] = {}


def job_handler(kind: str, *, cleanup: Callable[[BackgroundJob], None] | None = None
                ) -> Callable[[Handler], Handler]:
    """Register `handler(job, progress) -> result` for jobs of `kind`, and what to tidy
    (e.g. its input file) when a job of that kind is found dead and failed."""
    def register(handler: Handler) -> Handler:
        _handlers[kind] = handler
        if cleanup is not None:
            _cleanups[kind] = cleanup
        return handler
    return register


def holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_enqueue(*, kind: str, payload: dict, user=None, name: str = "", total: int = 0,
                start: bool = True) -> BackgroundJob:
    """Store a job; once committed, run it on a thread of this process (unless not `start`)."""
    if kind not in _handlers:
        raise ValueError(f"No handler for background jobs of kind {kind!r}.")
    job = BackgroundJob.objects.create(id=uuid.uuid4().hex, kind=kind, payload=payload,
                                       user=user, name=name, total=total)
    if start:
        transaction.on_commit(lambda: threading.Thread(
            target=_run_in_thread, args=(job.id,), name=f"job-{job.id[:8]}",
            daemon=True).start())
    return job


def job_get(*, job_id: str) -> BackgroundJob | None:
    """The job with its freshest progress; a job whose process died reads as failed."""
    job = BackgroundJob.objects.filter(pk=job_id).first()
    if job is None:
        return None
    if job.state == BackgroundJob.State.RUNNING:
        if job_fail_if_dead(job):
            job.refresh_from_db()
        else:
            job.done = max(job.done, cache.get(_progress_key(job.id), (0, 0))[0])
    return job


def job_run(job_id: str) -> BackgroundJob | None:
    """Claim a queued job and run it here; None if another process had it already."""
    now = timezone.now()
    claimed = BackgroundJob.objects.filter(pk=job_id, state=BackgroundJob.State.QUEUED).update(
        state=BackgroundJob.State.RUNNING, holder=holder(), started_at=now,
        lease_until=now + dt.timedelta(seconds=LEASE_S))
    if not claimed:
        return None
    job = BackgroundJob.objects.get(pk=job_id)
    heartbeat = _Heartbeat(job)
    heartbeat.start()
    try:
        result = _handlers[job.kind](job, heartbeat.progress)
    except ValidationError as exc:
        heartbeat.stop()
        return _finish(job, state=BackgroundJob.State.FAILED, errors=exc.messages)
    except Exception as exc:  # the owner sees a reason; the log has the traceback
        heartbeat.stop()
        logger.exception("background job %s (%s) failed", job.id, job.kind)
        return _finish(job, state=BackgroundJob.State.FAILED,
                       errors=[FAILED.format(kind=type(exc).__name__)])
    heartbeat.stop()
    return _finish(job, state=BackgroundJob.State.DONE, result=result or {},
                   done=heartbeat.done, total=heartbeat.total)


def job_fail_if_dead(job: BackgroundJob, *, now: dt.datetime | None = None) -> bool:
    """Mark a running job failed if its process is gone: True if it did."""
    now = now or timezone.now()
    if job.state != BackgroundJob.State.RUNNING or not _holder_dead(job, now):
        return False
    failed = BackgroundJob.objects.filter(
        pk=job.pk, state=BackgroundJob.State.RUNNING, holder=job.holder).update(
        state=BackgroundJob.State.FAILED, errors=[DIED], finished_at=now)
    if failed:
        _cleanup(job)
    return bool(failed)


def jobs_reap(*, now: dt.datetime | None = None) -> int:
    """Housekeeping: fail every job a dead process left running, or that never started."""
    now = now or timezone.now()
    reaped = 0
    running = BackgroundJob.objects.filter(state=BackgroundJob.State.RUNNING,
                                           lease_until__lt=now)
    for job in running:
        reaped += job_fail_if_dead(job, now=now)
    stale = BackgroundJob.objects.filter(
        state=BackgroundJob.State.QUEUED,
        created_at__lt=now - dt.timedelta(seconds=QUEUED_TOO_LONG_S))
    for job in stale:
        if BackgroundJob.objects.filter(pk=job.pk, state=BackgroundJob.State.QUEUED).update(
                state=BackgroundJob.State.FAILED, errors=[DIED], finished_at=now):
            _cleanup(job)
            reaped += 1
    return reaped


def _cleanup(job: BackgroundJob) -> None:
    cleanup = _cleanups.get(job.kind)
    if cleanup is None:
        return
    try:
        cleanup(job)
    except Exception:
        logger.exception("background job %s: cleanup failed", job.id)


def _holder_dead(job: BackgroundJob, now: dt.datetime) -> bool:
    """On this machine a process is dead when its pid is; elsewhere when its lease ended
    (SQLite, one machine, cannot renew a lease while a long insert holds the write lock)."""
    host, _, pid = job.holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return job.lease_until is not None and job.lease_until < now


def _finish(job: BackgroundJob, *, state: str, errors: list[str] | None = None,
            result: dict | None = None, done: int | None = None,
            total: int | None = None) -> BackgroundJob:
    fields: dict[str, Any] = {"state": state, "finished_at": timezone.now(),
                              "lease_until": None}
    if errors is not None:
        fields["errors"] = errors
    if result is not None:
        fields["result"] = result
    if done is not None:
        fields["done"], fields["total"] = done, total
    BackgroundJob.objects.filter(pk=job.pk, holder=job.holder or holder()).update(**fields)
    cache.delete(_progress_key(job.id))
    job.refresh_from_db()
    return job


def _progress_key(job_id: str) -> str:
    return f"jobs:progress:{job_id}"


class _Heartbeat(threading.Thread):
    """Publishes progress and renews the lease every HEARTBEAT_S, from its own connection
    (the handler's transaction must not carry them: it commits only at the end)."""

    def __init__(self, job: BackgroundJob):
        super().__init__(name=f"job-heartbeat-{job.id[:8]}", daemon=True)
        self.job_id, self.holder = job.id, job.holder
        self.done, self.total = job.done, job.total
        self.stopped = threading.Event()
        # SQLite has one writer: the handler's open transaction would block these writes.
        self.writes_row = connection.vendor != "sqlite"

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)

    def run(self) -> None:
        published = None
        try:
            while not self.stopped.wait(HEARTBEAT_S):
                now = (self.done, self.total)
                if now != published:
                    cache.set(_progress_key(self.job_id), now, timeout=3600)
                    published = now
                if self.writes_row:
                    BackgroundJob.objects.filter(
                        pk=self.job_id, holder=self.holder,
                        state=BackgroundJob.State.RUNNING).update(
                        done=self.done, total=self.total,
                        lease_until=timezone.now() + dt.timedelta(seconds=LEASE_S))
        except Exception:
            logger.exception("background job %s: heartbeat failed", self.job_id)
        finally:
            connections.close_all()


def _run_in_thread(job_id: str) -> None:
    close_old_connections()
    try:
        job_run(job_id)
    except Exception:
        logger.exception("background job %s could not run", job_id)
    finally:
        connections.close_all()   # this thread's own connections end with it
