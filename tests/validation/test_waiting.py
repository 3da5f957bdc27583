"""A work unit with nothing to decide yet is looked at without locking it
(validation.services._waiting_looked_at), so a second result's store never waits for it."""

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.models import ValidationAudit
from sparecycles.validation.services import workunits_validate

pytestmark = pytest.mark.django_db


def report(device, replica, output):
    results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                          output=output)])


def two_out(make_batch, make_device, establish):
    [unit] = WorkUnit.objects.filter(pk__in=make_batch(count=1, min_quorum=2,
                                                      target_nresults=2)
                                     .workunits.values("pk"))
    devices = establish(make_device().device, make_device().device)
    replicas = [tasks_dispatch(device=d, slots=1, rng=random.Random(i)).replicas[0]
                for i, d in enumerate(devices)]
    return unit, devices, replicas


def test_a_first_result_is_looked_at_without_the_locked_pass_and_the_second_settles(
        make_batch, make_device, establish, app):
    app.spot_check_rate = 0.0
    app.save()
    unit, devices, replicas = two_out(make_batch, make_device, establish)
    report(devices[0], replicas[0], {"x": 1})
    with CaptureQueriesContext(connection) as queries:
        workunits_validate(workunit_ids=[unit.pk])
    sql = " ".join(q["sql"] for q in queries).upper()
    assert "FOR UPDATE" not in sql and "SAVEPOINT" not in sql  # no lock, no transaction
    first = Replica.objects.get(pk=replicas[0].pk)
    assert not first.pending and first.validate_state == Replica.ValidateState.INIT
    unit.refresh_from_db()
    assert unit.state == WorkUnit.State.OPEN
    # The second result takes the locked pass and settles the quorum with the first.
    report(devices[1], replicas[1], {"x": 1})
    workunits_validate(workunit_ids=[unit.pk])
    unit.refresh_from_db()
    assert unit.state == WorkUnit.State.COMPLETED
    assert set(Replica.objects.filter(workunit=unit).values_list("validate_state", flat=True)
               ) == {Replica.ValidateState.VALID}
    assert not Replica.objects.filter(workunit=unit, pending=True).exists()


@pytest.mark.parametrize("case", ["error", "timed_out", "both_in"])
def test_work_units_with_something_to_decide_take_the_locked_pass(
        make_batch, make_device, establish, app, case):
    app.spot_check_rate = 0.0
    app.save()
    unit, devices, replicas = two_out(make_batch, make_device, establish)
    if case == "error":
        results_store([Report(device_id=devices[0].pk, task_id=replicas[0].task_id, ok=False,
                              error="boom")])
    elif case == "timed_out":
        report(devices[0], replicas[0], {"x": 1})
        Replica.objects.filter(pk=replicas[1].pk).update(
            server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.NO_REPLY)
    else:
        report(devices[0], replicas[0], {"x": 1})
        report(devices[1], replicas[1], {"x": 2})  # disagree: inconclusive
    with CaptureQueriesContext(connection) as queries:
        workunits_validate(workunit_ids=[unit.pk])
    if connection.features.has_select_for_update:
        assert "FOR" in " ".join(q["sql"] for q in queries if "projects_workunit" in q["sql"]
                                 and q["sql"].startswith("SELECT")).upper()
    # In each case the transitioner acted: a replacement replica, or an inconclusive audit.
    if case == "both_in":
        assert ValidationAudit.objects.filter(
            workunit=unit, kind=ValidationAudit.Kind.INCONCLUSIVE).exists()
    assert Replica.objects.filter(workunit=unit).count() == 3
    assert not Replica.objects.filter(workunit=unit, pending=True).exists()
