"""The locked pass locks only what it decides on (validation.transitioner): a known
answer's spot checks still out on other devices stay free, so their results are stored
while a pass over the same known answer is in progress."""

import random
import threading

import pytest
from django.db import connection, transaction

from sparecycles.projects.models import WorkUnit
from sparecycles.projects.services import spot_check_batch_create
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.transitioner import workunits_transition

V = Replica.ValidateState


@pytest.fixture
def checks_out(make_batch, make_device, app, app_version, settings):
    """One known answer, sent as a spot check to three devices."""
    make_batch(count=3, min_quorum=2, target_nresults=2)
    spot_check_batch_create(app_version=app_version, known=[({"n": 100}, {"n": 100,
                                                                          "square": 10000})])
    app.spot_check_rate = 1.0
    app.save()
    settings.SPARECYCLES = {**settings.SPARECYCLES, "SPOT_CHECK_NEW": 1.0,
                            "SPOT_CHECK_MIN": 1.0}
    devices = [make_device().device for _ in range(3)]
    replicas = [tasks_dispatch(device=d, slots=1, rng=random.Random(i)).replicas[0]
                for i, d in enumerate(devices)]
    [known] = {r.workunit_id for r in replicas}
    assert WorkUnit.objects.get(pk=known).is_spot_check and all(r.spot_check for r in replicas)
    return known, devices, replicas


def store(device, replica, square=10000):
    results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                          output={"n": 100, "square": square})])


@pytest.mark.django_db
def test_a_pass_over_a_known_answer_judges_each_returned_spot_check(checks_out):
    known, devices, replicas = checks_out
    store(devices[0], replicas[0])
    store(devices[1], replicas[1], square=7)
    with transaction.atomic():
        workunits_transition([known])
    states = dict(Replica.objects.filter(workunit_id=known).values_list("pk", "validate_state"))
    assert states == {replicas[0].pk: V.VALID, replicas[1].pk: V.INVALID,
                      replicas[2].pk: V.INIT}  # the third is still out: untouched
    store(devices[2], replicas[2])  # and judged by the next pass
    with transaction.atomic():
        workunits_transition([known])
    assert Replica.objects.get(pk=replicas[2].pk).validate_state == V.VALID


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="real row locks: PostgreSQL")
def test_a_spot_check_result_is_stored_while_a_pass_holds_its_known_answer(checks_out):
    known, devices, replicas = checks_out
    store(devices[0], replicas[0])
    locked, release, errors = threading.Event(), threading.Event(), []

    def validating() -> None:
        try:
            with transaction.atomic():
                workunits_transition([known])
                locked.set()
                release.wait(timeout=30)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            locked.set()
            connection.close()

    thread = threading.Thread(target=validating)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            store(devices[1], replicas[1])  # would wait for the pass, and time out
    finally:
        release.set()
        thread.join(timeout=30)
    assert not errors, errors
    assert Replica.objects.get(pk=replicas[1].pk).received_at is not None
