"""Deadlines: overdue replicas time out, their work is reissued, late results still count."""

import datetime as dt

import pytest
from django.utils import timezone

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import HostAppVersion, Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.validation.sweeps import replicas_time_out, workunits_unstick

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


def test_unstick_leaves_a_workunit_whose_results_await_the_validator(make_batch, make_device):
    """Both replicas reported, the validator's pass not run yet: no live replica, but the
    work unit is not stuck. It is the validator's (its next pass, or the pending sweep);
    unstick taking it raced the validator with a transaction per work unit."""
    from sparecycles.scheduler.intake import Report, results_store
    from sparecycles.validation.sweeps import pending_validate

    make_batch(count=1, min_quorum=2, target_nresults=2)
    for _ in range(2):
        device = make_device().device
        replica = tasks_dispatch(device=device, slots=1).replicas[0]
        results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                              output={"n": 1, "square": 1})])  # stored, not validated
    assert workunits_unstick() == 0
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN
    pending_validate(older_than_s=0)  # the validator's pass judges them
    judged = workunit.replicas.filter(outcome=Replica.Outcome.SUCCESS)
    assert judged.count() == 2 and not judged.filter(pending=True).exists()
    assert not judged.filter(validate_state=Replica.ValidateState.INIT).exists()
