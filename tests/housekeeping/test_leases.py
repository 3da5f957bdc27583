"""A job's lease: of several processes (or machines) racing the same job, one runs it."""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from sparecycles.housekeeping.leases import job_claim, job_release, next_due
from sparecycles.housekeeping.models import JobLease
from tests.live_server import REPO, database_url

pytestmark = pytest.mark.django_db


def test_a_claimed_job_is_not_claimed_again_until_due_and_released():
    now = timezone.now()
    assert job_claim("j", interval_s=60, lease_s=30, now=now)
    assert not job_claim("j", interval_s=60, lease_s=30, now=now)           # not due
    assert not job_claim("j", interval_s=60, lease_s=30, force=True, now=now)  # held
    job_release("j", now=now)
    assert job_claim("j", interval_s=60, lease_s=30, force=True, now=now)   # forced, free
    job_release("j", now=now)
    later = now + dt.timedelta(seconds=61)
    assert job_claim("j", interval_s=60, lease_s=30, now=later)
    assert JobLease.objects.get(name="j").runs == 2


def test_a_dead_holders_lease_ends():
    now = timezone.now()
    assert job_claim("j", interval_s=1, lease_s=30, now=now)   # and never released
    assert not job_claim("j", interval_s=1, lease_s=30, now=now + dt.timedelta(seconds=10))
    assert job_claim("j", interval_s=1, lease_s=30, now=now + dt.timedelta(seconds=31))


def test_next_due_is_the_soonest_job():
    now = timezone.now()
    assert next_due(["a", "b"]) is None
    job_claim("a", interval_s=100, lease_s=10, now=now)
    job_claim("b", interval_s=50, lease_s=10, now=now)
    assert next_due(["a", "b"]) == now + dt.timedelta(seconds=50)


@pytest.mark.django_db(transaction=True)
def test_two_processes_racing_the_same_job_run_it_once(tmp_path: Path):
    marker = tmp_path / "runs"
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict),
           "PYTHONPATH": str(REPO / "platform")}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    start_at = time.time() + 4   # both are set up (Django imported) by then
    racers = [subprocess.Popen([sys.executable, str(REPO / "tests/housekeeping/race_job.py"),
                                str(marker), str(start_at)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    assert sorted(out.strip() for out, _ in outputs) == ["ran", "skipped"]
    assert len(marker.read_text().split()) == 1
    assert JobLease.objects.get(name="race").runs == 1
