"""Durable background jobs: claimed once, progress from the row, a dead holder's job fails."""

import subprocess
import sys

import pytest
from django.core.exceptions import ValidationError

from sparecycles.jobs import services
from sparecycles.jobs.models import BackgroundJob
from sparecycles.jobs.services import (
    DIED,
    job_enqueue,
    job_fail_if_dead,
    job_get,
    job_handler,
    job_run,
    jobs_reap,
)

pytestmark = pytest.mark.django_db

ran = []


@job_handler("test.count")
def count(job, progress):
    ran.append(job.id)
    for done in range(1, job.total + 1):
        progress(done, job.total)
    return {"counted": job.total}


@job_handler("test.refuse")
def refuse(job, progress):
    raise ValidationError(["Line 3: not JSON."])


tidied = []


@job_handler("test.tidy", cleanup=lambda job: tidied.append(job.id))
def tidy(job, progress):
    return {}


@job_handler("test.crash")
def crash(job, progress):
    raise KeyError("boom")


def test_a_job_runs_once_and_keeps_its_result():
    job = job_enqueue(kind="test.count", payload={}, total=3, start=False)
    assert job_get(job_id=job.id).state == BackgroundJob.State.QUEUED
    done = job_run(job.id)
    assert job_run(job.id) is None            # claimed already: nobody runs it twice
    assert ran.count(job.id) == 1
    assert (done.state, done.result, done.done, done.total) == ("done", {"counted": 3}, 3, 3)
    assert done.lease_until is None and done.finished_at is not None


def test_a_refused_job_fails_with_its_reasons_and_a_crash_with_a_plain_one():
    refused = job_run(job_enqueue(kind="test.refuse", payload={}, start=False).id)
    assert (refused.state, refused.errors) == ("failed", ["Line 3: not JSON."])
    crashed = job_run(job_enqueue(kind="test.crash", payload={}, start=False).id)
    assert crashed.state == "failed" and "KeyError" in crashed.errors[0]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="No handler"):
        job_enqueue(kind="nope", payload={})


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_job_whose_process_died_reads_as_failed():
    job = job_enqueue(kind="test.count", payload={}, start=False)
    BackgroundJob.objects.filter(pk=job.pk).update(
        state="running", holder=f"{services.socket.gethostname()}:{dead_pid()}")
    seen = job_get(job_id=job.id)
    assert (seen.state, seen.errors) == ("failed", [DIED])


def test_a_live_holder_is_left_alone_and_the_reaper_takes_the_dead():
    alive = job_enqueue(kind="test.count", payload={}, start=False)
    BackgroundJob.objects.filter(pk=alive.pk).update(state="running",
                                                     holder=services.holder())
    assert not job_fail_if_dead(BackgroundJob.objects.get(pk=alive.pk))
    gone = job_enqueue(kind="test.count", payload={}, start=False)
    BackgroundJob.objects.filter(pk=gone.pk).update(
        state="running", holder="another-machine:1",
        lease_until=services.timezone.now() - services.dt.timedelta(seconds=1))
    assert jobs_reap() == 1
    assert BackgroundJob.objects.get(pk=gone.pk).state == "failed"
    assert BackgroundJob.objects.get(pk=alive.pk).state == "running"


def test_a_dead_jobs_cleanup_runs_once():
    job = job_enqueue(kind="test.tidy", payload={}, start=False)
    BackgroundJob.objects.filter(pk=job.pk).update(
        state="running", holder=f"{services.socket.gethostname()}:{dead_pid()}")
    assert job_get(job_id=job.id).state == "failed"
    assert job_get(job_id=job.id).state == "failed"
    assert jobs_reap() == 0
    assert tidied == [job.id]


def test_a_job_queued_by_a_process_that_died_before_starting_it_fails():
    job = job_enqueue(kind="test.tidy", payload={}, start=False)
    BackgroundJob.objects.filter(pk=job.pk).update(
        created_at=services.timezone.now() - services.dt.timedelta(hours=1))
    assert jobs_reap() == 1
    assert BackgroundJob.objects.get(pk=job.pk).state == "failed" and job.id in tidied
