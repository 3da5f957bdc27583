"""Deadlines: overdue replicas time out, their work is reissued, late results still count."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.housekeeping import (
    HousekeepingThread,
    replicas_time_out,
    workunits_unstick,
)
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import HostAppVersion, Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from tests.waiting import wait_for_completed

pytestmark = pytest.mark.django_db


def later(seconds):
    return timezone.now() + dt.timedelta(seconds=seconds)


def test_overdue_replica_times_out_and_is_reissued(make_batch, make_device, settings):
    make_batch(count=1, delay_bound=60)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    grace = settings.SPARECYCLES["DEADLINE_GRACE_S"]
    assert replicas_time_out(now=later(60 + grace - 5)) == 0  # still within the grace
    assert replicas_time_out(now=later(60 + grace + 5)) == 1
    replica.refresh_from_db()
    assert replica.status == "timed out"
    workunit = WorkUnit.objects.get()
    assert workunit.replicas.filter(server_state=Replica.ServerState.UNSENT).count() == 1
    host = HostAppVersion.objects.get(device=device)
    assert host.n_timeout == 1
    assert host.max_jobs_per_day == settings.SPARECYCLES["DAILY_QUOTA_START"] - 1


def test_late_result_is_accepted_while_the_workunit_is_open(make_batch, make_device):
    make_batch(count=1, delay_bound=1)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    replicas_time_out(now=later(3600))
    ack = replica_report(device=device, task_id=replica.task_id, ok=True,
                         output={"n": 1, "square": 1})
    assert ack.accepted and not ack.duplicate
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.COMPLETED
    # The reissued replica is no longer needed.
    assert workunit.replicas.filter(outcome=Replica.Outcome.DIDNT_NEED).count() == 1


def test_timeouts_up_to_max_total_results_fail_the_workunit(make_batch, make_device):
    make_batch(count=1, delay_bound=1, max_total_results=2, max_error_results=5)
    for _ in range(2):
        tasks_dispatch(device=make_device().device, slots=1)
        replicas_time_out(now=later(3600))
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.FAILED
    assert "max_total_results" in workunit.error_reason


def test_unstick_reissues_an_open_workunit_with_no_live_replica(make_batch):
    make_batch(count=1)
    Replica.objects.all().delete()  # as if a crash lost them
    assert workunits_unstick() == 1
    assert Replica.objects.filter(server_state=Replica.ServerState.UNSENT).count() == 1


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
