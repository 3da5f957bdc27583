"""Large work-unit uploads from the admin, inserted by a background job with visible progress.

The admin checks every line of the file in the request (fast: ~1 s per 100,000
lines) and shows bad lines on the form. A file that passes is copied to a
private file under VAR_DIR and inserted by a durable background job
(sparecycles.jobs), in one transaction, while the owner's browser polls the
job's progress. The job is a database row, so a poll that lands on any web
process sees it; if the process inserting dies, the transaction dies with it
(nothing is half-made) and the job reads as failed.
"""

import dataclasses
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model

from sparecycles.jobs.models import BackgroundJob
from sparecycles.jobs.services import job_enqueue, job_get, job_handler

from .models import AppVersion
from .services import QuorumParams, batch_create_from_file

KIND = "projects.upload"
# The progress page's states (static/projects/upload-progress.js).
STATES = {BackgroundJob.State.QUEUED: "queued", BackgroundJob.State.RUNNING: "inserting",
          BackgroundJob.State.DONE: "done", BackgroundJob.State.FAILED: "failed"}


@dataclass
class UploadJob:
    id: str
    user_id: int | None
    name: str
    total: int
    state: str = "queued"     # queued | inserting | done | failed
    done: int = 0
    batch_id: int | None = None
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @classmethod
    def of(cls, job: BackgroundJob) -> "UploadJob":
        return cls(id=job.id, user_id=job.user_id, name=job.name, total=job.total,
                   state=STATES[job.state], done=job.done,
                   batch_id=(job.result or {}).get("batch_id"), errors=list(job.errors),
                   started=(job.started_at or job.created_at).timestamp(),
                   finished=job.finished_at.timestamp() if job.finished_at else None)

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "state": self.state, "done": self.done,
                "total": self.total, "batch_id": self.batch_id, "errors": self.errors,
                "elapsed_s": round((self.finished or time.time()) - self.started, 1)}


def _upload_dir() -> Path:
    path = Path(settings.VAR_DIR) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_job_start(*, upload: IO[bytes], total: int, app_version: AppVersion, name: str,
                     fmt: str, quorum: QuorumParams, user) -> UploadJob:
    """Copy `upload` somewhere the request won't delete it and insert it in a background job."""
    upload.seek(0)
    handle = tempfile.NamedTemporaryFile(dir=_upload_dir(), suffix=f".{fmt}", delete=False)
    with handle:
        shutil.copyfileobj(upload, handle, length=1024 * 1024)
    job = job_enqueue(kind=KIND, user=user, name=name, total=total, payload={
        "path": handle.name, "app_version_id": app_version.pk, "fmt": fmt,
        "quorum": dataclasses.asdict(quorum)})
    return UploadJob.of(job)


def upload_job_get(*, job_id: str, user) -> UploadJob | None:
    job = job_get(job_id=job_id)
    if job is None or job.kind != KIND or (job.user_id != user.pk and not user.is_superuser):
        return None
    return UploadJob.of(job)


def _upload_file(job: BackgroundJob) -> Path:
    """The job's copy of the upload; only ever a file in the uploads folder."""
    path = Path(job.payload["path"])
    if path.parent.resolve() != _upload_dir().resolve():
        raise ValueError(f"upload job {job.id}: its file is not in the uploads folder")
    return path


def _forget_file(job: BackgroundJob) -> None:
    _upload_file(job).unlink(missing_ok=True)


@job_handler(KIND, cleanup=_forget_file)
def _insert(job: BackgroundJob, progress) -> dict:
    payload = job.payload
    path = _upload_file(job)
    try:
        version = AppVersion.objects.get(pk=payload["app_version_id"])
        user = get_user_model().objects.filter(pk=job.user_id).first()
        with path.open("rb") as handle:
            batch = batch_create_from_file(app_version=version, name=job.name, file=handle,
                                           fmt=payload["fmt"],
                                           quorum=QuorumParams(**payload["quorum"]),
                                           created_by=user, progress=progress)
        return {"batch_id": batch.pk}
    finally:
        path.unlink(missing_ok=True)
