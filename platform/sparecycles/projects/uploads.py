"""Large work-unit uploads from the admin, inserted by a background thread with visible progress.

The admin checks every line of the file in the request (fast: ~1 s per 100,000
lines) and shows bad lines on the form. A file that passes is copied to a
private temporary file and inserted here, in one transaction, while the
owner's browser polls the job's progress. Jobs live in this process's memory:
with several web processes, the progress page needs the same process (sticky
sessions); the batch itself appears in the batch list either way.
"""

import logging
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connections

from .models import AppVersion
from .services import QuorumParams, batch_create_from_file

logger = logging.getLogger(__name__)
JOB_TTL_S = 3600


@dataclass
class UploadJob:
    id: str
    user_id: int
    name: str
    total: int
    state: str = "queued"     # queued | inserting | done | failed
    done: int = 0
    batch_id: int | None = None
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "state": self.state, "done": self.done,
                "total": self.total, "batch_id": self.batch_id, "errors": self.errors,
                "elapsed_s": round((self.finished or time.time()) - self.started, 1)}


_jobs: dict[str, UploadJob] = {}
_lock = threading.Lock()


def _upload_dir() -> Path:
    path = Path(settings.VAR_DIR) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_job_start(*, upload: IO[bytes], total: int, app_version: AppVersion, name: str,
                     fmt: str, quorum: QuorumParams, user) -> UploadJob:
    """Copy `upload` somewhere the request won't delete it and insert it in a thread."""
    upload.seek(0)
    handle = tempfile.NamedTemporaryFile(dir=_upload_dir(), suffix=f".{fmt}", delete=False)
    with handle:
        shutil.copyfileobj(upload, handle, length=1024 * 1024)
    job = UploadJob(id=uuid.uuid4().hex, user_id=user.pk, name=name, total=total)
    with _lock:
        _forget_old()
        _jobs[job.id] = job
    thread = threading.Thread(
        target=_run, name=f"upload-{job.id[:8]}", daemon=True,
        kwargs={"job": job, "path": Path(handle.name), "app_version_id": app_version.pk,
                "fmt": fmt, "quorum": quorum, "user_id": user.pk})
    thread.start()
    return job


def upload_job_get(*, job_id: str, user) -> UploadJob | None:
    with _lock:
        job = _jobs.get(job_id)
    if job is None or (job.user_id != user.pk and not user.is_superuser):
        return None
    return job


def _forget_old() -> None:
    cutoff = time.time() - JOB_TTL_S
    for key in [k for k, j in _jobs.items() if j.finished and j.finished < cutoff]:
        del _jobs[key]


def _run(*, job: UploadJob, path: Path, app_version_id: int, fmt: str, quorum: QuorumParams,
         user_id: int) -> None:
    from django.contrib.auth import get_user_model

    close_old_connections()
    try:
        job.state = "inserting"
        version = AppVersion.objects.get(pk=app_version_id)
        user = get_user_model().objects.filter(pk=user_id).first()

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        with path.open("rb") as handle:
            batch = batch_create_from_file(app_version=version, name=job.name, file=handle,
                                           fmt=fmt, quorum=quorum, created_by=user,
                                           progress=progress)
        job.batch_id = batch.pk
        job.state = "done"
    except ValidationError as exc:
        job.errors = exc.messages
        job.state = "failed"
    except Exception as exc:  # the owner sees a reason; the log has the traceback
        logger.exception("upload %s failed", job.id)
        job.errors = [f"The upload failed and nothing was created ({type(exc).__name__}). "
                      "Try again; if it keeps failing, tell the site's administrators."]
        job.state = "failed"
    finally:
        job.finished = time.time()
        path.unlink(missing_ok=True)
        connections.close_all()   # this thread's own connections end with it
