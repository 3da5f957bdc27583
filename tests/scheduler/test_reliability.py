"""Host reliability, daily quota and adaptive replication."""

import random

import pytest

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import HostAppVersion, Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report

pytestmark = pytest.mark.django_db


def run(device, output=None, ok=True, rng=None):
    kwargs = {"rng": rng} if rng else {}
    replica = tasks_dispatch(device=device, slots=1, **kwargs).replicas[0]
    replica_report(device=device, task_id=replica.task_id, ok=ok,
                   output=output if output is not None else {"ok": True}, error="boom")
    return replica


def trusted(device):
    """A device with a long run of valid results, of a volunteer with a good reputation."""
    HostAppVersion.objects.create(device=device, app_version=WorkUnit.objects.get().app_version,
                                  consecutive_valid=1000, max_jobs_per_day=100)
    device.volunteer.reputation = 0.95
    device.volunteer.save()
    return device


def test_low_reputation_volunteer_never_works_alone(make_batch, make_device, app):
    app.adaptive_replication, app.adaptive_threshold = True, 3
    app.save()
    make_batch(count=1, min_quorum=2, target_nresults=2)
    device = trusted(make_device().device)
    device.volunteer.reputation = 0.3
    device.volunteer.save()
    always = random.Random(1)
    always.random = lambda: 0.0
    run(device, output={"n": 1}, rng=always)
    assert WorkUnit.objects.get().state == WorkUnit.State.OPEN


def test_valid_results_build_consecutive_valid_and_invalid_resets_it(make_batch, make_device,
                                                                    establish, settings):
    # Reliability only: no automatic spot checks, so each task is the work unit made here.
    settings.SPARECYCLES = {**settings.SPARECYCLES, "SPOT_CHECK_NEW": 0.0, "SPOT_CHECK_MIN": 0.0}
    honest, other = establish(make_device().device), make_device().device
    for _ in range(2):  # one work unit at a time: assignment is random
        make_batch(count=1, min_quorum=2, target_nresults=2)
        run(honest)
        run(other)
    host = HostAppVersion.objects.get(device=honest)
    assert (host.n_valid, host.consecutive_valid) == (2, 2)
    assert host.turnaround_avg_s is not None
    liar = make_device().device
    make_batch(count=1, min_quorum=2, target_nresults=2)
    run(honest)
    run(liar, output={"ok": False})
    run(make_device().device)  # the tie-breaker agrees with the honest device
    liar_host = HostAppVersion.objects.get(device=liar)
    assert (liar_host.n_invalid, liar_host.consecutive_valid) == (1, 0)
    assert HostAppVersion.objects.get(device=honest).consecutive_valid == 3


def test_errors_cut_the_daily_quota_and_valid_results_restore_it(make_batch, make_device,
                                                                 settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "DAILY_QUOTA": 4}
    make_batch(count=8, max_error_results=9, max_total_results=9)
    device = make_device().device
    run(device, ok=False)
    run(device, ok=False)
    host = HostAppVersion.objects.get(device=device)
    assert host.max_jobs_per_day == 2 and host.n_error == 2
    assert host.jobs_today == 2
    # The quota is spent for today: no more tasks of this app version.
    assert tasks_dispatch(device=device, slots=1).replicas == []
    host.jobs_today = 0
    host.save()
    run(device)
    assert HostAppVersion.objects.get(device=device).max_jobs_per_day == 4


def test_adaptive_replication_lets_a_trusted_device_work_alone(make_batch, make_device, app):
    app.adaptive_replication, app.adaptive_threshold = True, 3
    app.save()
    make_batch(count=1, min_quorum=2, target_nresults=2)
    device = trusted(make_device().device)
    always = random.Random(1)
    always.random = lambda: 0.0  # inside 1 - 1/1000
    replica = run(device, output={"n": 1}, rng=always)
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.COMPLETED
    assert workunit.replicas.count() == 1
    replica.refresh_from_db()
    assert replica.solo and replica.status == "valid"


def test_untrusted_device_never_works_alone(make_batch, make_device, app):
    app.adaptive_replication, app.adaptive_threshold = True, 3
    app.save()
    make_batch(count=1, min_quorum=2, target_nresults=2)
    device = make_device().device
    run(device, output={"n": 1}, rng=random.Random(0))
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN
    assert workunit.replicas.filter(server_state=Replica.ServerState.UNSENT).count() == 1


def test_failed_solo_replica_falls_back_to_full_replication(make_batch, make_device, app):
    app.adaptive_replication, app.adaptive_threshold = True, 3
    app.save()
    make_batch(count=1, min_quorum=2, target_nresults=2)
    device = trusted(make_device().device)
    always = random.Random(1)
    always.random = lambda: 0.0
    run(device, ok=False, rng=always)
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN
    assert workunit.replicas.filter(server_state=Replica.ServerState.UNSENT).count() == 2


def test_capabilities_decide_which_apps_a_device_gets(make_batch, app):
    from sparecycles.volunteers.services import device_connect

    app.min_memory_mb, app.allow_mobile = 2048, False
    app.save()
    make_batch(count=2)
    small = device_connect(token=None, capabilities={"runtimes": ["pyodide"], "memory_mb": 512})
    phone = device_connect(token=None, capabilities={"runtimes": ["pyodide"], "mobile": True})
    big = device_connect(token=None, capabilities={"runtimes": ["pyodide"], "memory_mb": 4096})
    assert tasks_dispatch(device=small.device, slots=1).replicas == []
    assert tasks_dispatch(device=phone.device, slots=1).replicas == []
    assert len(tasks_dispatch(device=big.device, slots=1).replicas) == 1


def test_tie_breakers_go_to_established_devices(make_batch, make_device, settings, establish):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "RELIABLE_RETRY_WAIT_S": 120}
    make_batch(count=1, min_quorum=2, target_nresults=2)
    run(make_device().device, output={"x": 1})
    run(make_device().device, output={"x": 2})  # inconclusive: one tie-breaker is created
    assert WorkUnit.objects.filter(replicas__validate_state="inconclusive").exists()
    make_batch(count=1, min_quorum=2, target_nresults=2)  # and fresh work beside it
    fresh = make_device().device
    got = tasks_dispatch(device=fresh, slots=4).replicas
    assert all(not r.workunit.replicas.filter(validate_state="inconclusive").exists()
               for r in got)
    veteran = establish(make_device().device)
    got = tasks_dispatch(device=veteran, slots=4).replicas
    assert any(r.workunit.replicas.filter(validate_state="inconclusive").exists() for r in got)
