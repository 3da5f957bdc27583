"""The housekeeping loop: one entry point for every periodic job, run by `manage.py
housekeeping` (which `serve` starts) or by the embedded server's start-up."""

from dataclasses import replace

import pytest
from django.core.management import call_command

from sparecycles.housekeeping import runner
from sparecycles.housekeeping.jobs import JOBS
from sparecycles.housekeeping.models import JobLease
from sparecycles.housekeeping.runner import HousekeepingThread, housekeeping_pass
from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from tests.waiting import wait_for_completed

pytestmark = pytest.mark.django_db


def test_housekeeping_command_runs_once(capsys):
    call_command("housekeeping", "--once")
    assert "timed_out: 0" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_restarted_web_process_validates_what_a_dead_one_left_pending(make_batch, make_device):
    """The process that stored (and acked) the result died before validating it."""
    batch = make_batch(count=1, min_quorum=1, target_nresults=1)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    stored = results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                                   output={"n": 1, "square": 1})])
    assert stored.acks[0].accepted
    assert WorkUnit.objects.get().state == WorkUnit.State.OPEN   # acked, not validated

    thread = HousekeepingThread(interval_s=3600)   # its periodic pass never comes
    thread.start()
    try:
        wait_for_completed(batch, 1, timeout_s=10)
    finally:
        thread.stopped.set()
        thread.join(timeout=10)
    assert not Replica.objects.filter(pending=True).exists()


def test_a_pass_runs_each_due_job_once_then_waits_for_its_interval():
    first = housekeeping_pass()
    assert {"timed_out", "unstuck", "validated", "epochs_closed", "stats_exported",
            "jobs_reaped"} <= set(first)
    assert housekeeping_pass() == {}   # nothing is due again yet
    assert set(JobLease.objects.values_list("name", flat=True)) == {job.name for job in JOBS}
    assert all(row.lease_until is None and row.runs == 1 for row in JobLease.objects.all())


def test_the_loop_sleeps_until_the_next_job_is_due(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "HOUSEKEEPING_INTERVAL_S": 15}
    assert runner.seconds_to_next(ceiling_s=15) == 1.0   # never ran: soon
    housekeeping_pass()
    assert 10 < runner.seconds_to_next(ceiling_s=15) <= 15


def test_a_failing_job_does_not_stop_the_others(monkeypatch):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "JOBS", [replace(JOBS[0], run=broken), *JOBS[1:]])
    counts = housekeeping_pass()
    assert "timed_out" not in counts and "epochs_closed" in counts
    assert JobLease.objects.get(name=JOBS[0].name).lease_until is None   # released anyway


def test_embedded_housekeeping_is_off_unless_the_settings_say_so(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "EMBEDDED_HOUSEKEEPING": False}
    assert runner.housekeeping_start_embedded() is False
    assert runner._thread is None


def test_no_socket_connect_starts_housekeeping():
    import inspect

    from sparecycles.gateway import consumers

    assert "housekeeping" not in inspect.getsource(consumers)
