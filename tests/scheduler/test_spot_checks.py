"""Known-answer tasks catch wrong answers; a caught device is quarantined."""

import random

import pytest

from sparecycles.projects.models import WorkUnit
from sparecycles.projects.services import spot_check_batch_create
from sparecycles.scheduler.models import HostAppVersion, Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Device

pytestmark = pytest.mark.django_db


@pytest.fixture
def spot_checks(app, app_version):
    app.spot_check_rate = 1.0
    app.save()
    return spot_check_batch_create(
        app_version=app_version,
        known=[({"n": n}, {"n": n, "square": n * n}) for n in (100, 101, 102, 103)])


def answer(device, correct=True):
    [replica] = tasks_dispatch(device=device, slots=1, rng=random.Random(3)).replicas
    n = replica.workunit.input["n"]
    output = {"n": n, "square": n * n if correct else 7}
    replica_report(device=device, task_id=replica.task_id, ok=True, output=output)
    replica.refresh_from_db()
    return replica


def test_spot_check_looks_like_any_task_and_passes(make_batch, make_device, spot_checks):
    make_batch(count=2)
    device = make_device().device
    replica = answer(device)
    assert replica.workunit.is_spot_check
    assert replica.status == "valid"
    assert HostAppVersion.objects.get(device=device).spot_checks_passed == 1
    assert not Device.objects.get(pk=device.pk).quarantined


def test_wrong_known_answer_quarantines_and_revalidates_pending_results(
        make_batch, make_device, app, spot_checks, django_capture_on_commit_callbacks,
        settings):
    # Two work units: a spot check stands in for an ordinary task, so one must be available.
    make_batch(count=2, min_quorum=2, target_nresults=2)
    app.spot_check_rate = 0.0
    app.save()
    usual = settings.SPARECYCLES
    # No spot check at all for the first task (a new device gets them at SPOT_CHECK_NEW).
    settings.SPARECYCLES = {**usual, "SPOT_CHECK_NEW": 0.0, "SPOT_CHECK_MIN": 0.0}
    cheat = make_device().device
    pending = answer(cheat, correct=False)  # an ordinary task, answered wrongly
    assert not pending.workunit.is_spot_check
    assert pending.validate_state == Replica.ValidateState.INIT
    settings.SPARECYCLES = usual
    app.spot_check_rate = 1.0
    app.save()
    with django_capture_on_commit_callbacks(execute=True):  # revalidation runs after commit
        caught = answer(cheat, correct=False)
    assert caught.workunit.is_spot_check and caught.status == "invalid"
    cheat.refresh_from_db()
    assert cheat.quarantined
    pending.refresh_from_db()
    assert pending.status == "invalid"
    # The pending work unit went back to validation and needs two more honest results.
    workunit = pending.workunit
    assert workunit.replicas.filter(server_state=Replica.ServerState.UNSENT).count() == 2
    # A quarantined device gets only known-answer tasks.
    for _ in range(2):
        replica = tasks_dispatch(device=cheat, slots=1).replicas[0]
        assert replica.workunit.is_spot_check
        replica_report(device=cheat, task_id=replica.task_id, ok=True, output={"bad": 1})


def test_quarantine_ends_after_enough_correct_known_answers(make_device, spot_checks, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "QUARANTINE_RELEASE_PASSES": 2}
    device = make_device().device
    Device.objects.filter(pk=device.pk).update(quarantined=True)
    device.refresh_from_db()
    answer(device)
    assert Device.objects.get(pk=device.pk).quarantined
    answer(device)
    assert not Device.objects.get(pk=device.pk).quarantined


def test_quarantined_results_never_count_toward_a_quorum(make_batch, make_device, app):
    make_batch(count=1, min_quorum=1, target_nresults=1)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    Device.objects.filter(pk=device.pk).update(quarantined=True)
    replica_report(device=device, task_id=replica.task_id, ok=True, output={"n": 1, "square": 1})
    replica.refresh_from_db()
    assert replica.status == "invalid"
    assert WorkUnit.objects.get(pk=replica.workunit_id).state == WorkUnit.State.OPEN
