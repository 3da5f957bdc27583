"""Storing reported results in batches (scheduler.intake) and validating them afterwards."""

import pytest

from sparecycles.credit.models import CreditGrant
from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import workunits_validate
from sparecycles.validation.sweeps import pending_validate

pytestmark = pytest.mark.django_db


def _square(replica):
    n = replica.workunit.input["n"]
    return {"n": n, "square": n * n}


def test_a_batch_stores_results_and_answers_each_report(make_batch, make_device):
    make_batch(count=3)
    device, other = make_device().device, make_device().device
    replicas = tasks_dispatch(device=device, slots=3).replicas
    reports = [Report(device_id=device.pk, task_id=r.task_id, ok=True, output=_square(r))
               for r in replicas]
    reports += [reports[0],  # the same result twice in one batch
                Report(device_id=other.pk, task_id=replicas[1].task_id, ok=True, output={}),
                Report(device_id=device.pk, task_id="no-such-task", ok=True, output={})]
    stored = results_store(reports)
    assert [a.accepted for a in stored.acks] == [True, True, True, True, False, False]
    assert stored.acks[3].duplicate
    assert [a.reason for a in stored.acks[4:]] == ["not_assigned", "unknown_task"]
    assert sorted(stored.workunit_ids) == sorted(r.workunit_id for r in replicas)
    assert Replica.objects.filter(pending=True).count() == 3
    assert not WorkUnit.objects.filter(state="completed").exists()  # validation comes after


def test_validation_after_storing_grants_credit_once(make_batch, make_device):
    make_batch(count=2)
    device = make_device().device
    replicas = tasks_dispatch(device=device, slots=2).replicas
    stored = results_store([Report(device_id=device.pk, task_id=r.task_id, ok=True,
                                   output=_square(r)) for r in replicas])
    workunits_validate(workunit_ids=stored.workunit_ids)
    workunits_validate(workunit_ids=stored.workunit_ids)  # again: nothing changes
    assert WorkUnit.objects.filter(state="completed").count() == 2
    assert CreditGrant.objects.count() == 2
    assert not Replica.objects.filter(pending=True).exists()


def test_housekeeping_validates_results_a_crash_left_pending(make_batch, make_device):
    make_batch(count=1)
    device = make_device().device
    [replica] = tasks_dispatch(device=device, slots=1).replicas
    results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                          output=_square(replica))])
    assert pending_validate(older_than_s=60) == 0  # recent: its own process validates it
    assert pending_validate(older_than_s=0) == 1
    assert WorkUnit.objects.get().state == "completed"
    assert CreditGrant.objects.count() == 1


def test_an_error_report_counts_against_the_device_when_validated(make_batch, make_device):
    make_batch(count=1)
    device = make_device().device
    [replica] = tasks_dispatch(device=device, slots=1).replicas
    stored = results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=False,
                                   error="MemoryError")])
    workunits_validate(workunit_ids=stored.workunit_ids)
    host = device.host_app_versions.get()
    assert host.n_error == 1 and host.consecutive_valid == 0


# Found by the red team (tests/redteam/README.md, issue 14): the intake stored a batch of
# reports (every device's results that arrived together) in one transaction, so one
# output the database refuses failed everybody's, honest results included.
IDENTITY = b"def main(i):\n    return i\n"


def _two_devices_one_task_each(app):
    from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
    from sparecycles.volunteers.services import device_connect

    version = app_version_create(app=app, code=IDENTITY)
    batch_create(app_version=version, name="b", inputs=[{"n": 1}, {"n": 2}],
                 quorum=QuorumParams(min_quorum=1, target_nresults=1))
    cheater = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
    honest = device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device
    [mine] = tasks_dispatch(device=cheater, slots=1).replicas
    [theirs] = tasks_dispatch(device=honest, slots=1).replicas
    return cheater, mine, honest, theirs


@pytest.mark.django_db(transaction=True)
def test_a_nan_output_is_refused_and_does_not_sink_honest_results(app):
    cheater, mine, honest, theirs = _two_devices_one_task_each(app)
    stored = results_store([
        Report(device_id=cheater.pk, task_id=mine.task_id, ok=True, output={"x": float("nan")}),
        Report(device_id=honest.pk, task_id=theirs.task_id, ok=True, output={"n": 2}),
    ])
    assert [(a.accepted, a.reason) for a in stored.acks] == [(False, "invalid"), (True, "")]
    assert Replica.objects.get(task_id=theirs.task_id).output == {"n": 2}
    assert Replica.objects.get(task_id=mine.task_id).received_at is None   # may resend
    assert stored.workunit_ids == [theirs.workunit_id]


@pytest.mark.django_db(transaction=True)
def test_text_postgresql_can_not_store_is_refused_before_the_database_on_both(app, caplog):
    """Red team (batch extension): a NUL or a lone surrogate in an output, an error text or a
    task id reached the database; on PostgreSQL each one failed the whole batch's
    transaction, sent every report of it (other devices' too) down the one-transaction-each
    path and logged a traceback, 64 per `results` frame. Now: refused (or cleaned) first."""
    cheater, mine, honest, theirs = _two_devices_one_task_each(app)
    stored = results_store([
        Report(device_id=cheater.pk, task_id=mine.task_id, ok=True, output={"s": "a\ud800"}),
        Report(device_id=cheater.pk, task_id=mine.task_id, ok=True, output={"k\u0000": 1}),
        Report(device_id=cheater.pk, task_id="x\u0000", ok=True, output={}),
        Report(device_id=honest.pk, task_id=theirs.task_id, ok=False, error="oops\u0000\ud800"),
    ])
    assert [(a.accepted, a.reason) for a in stored.acks] == [
        (False, "invalid"), (False, "invalid"), (False, "unknown_task"), (True, "")]
    assert Replica.objects.get(task_id=theirs.task_id).error_message == "oops\ufffd\ufffd"
    assert Replica.objects.get(task_id=mine.task_id).received_at is None   # may resend
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.django_db(transaction=True)
def test_a_report_the_database_refuses_sinks_only_itself(app):
    """A NUL character is valid JSON, but PostgreSQL's jsonb refuses it: only that report
    is refused, the others of its batch are stored (SQLite takes it: both are stored)."""
    from django.db import connection

    cheater, mine, honest, theirs = _two_devices_one_task_each(app)
    stored = results_store([
        Report(device_id=cheater.pk, task_id=mine.task_id, ok=True, output={"s": "a\u0000b"}),
        Report(device_id=honest.pk, task_id=theirs.task_id, ok=True, output={"n": 2}),
    ])
    assert stored.acks[1].accepted is True
    assert Replica.objects.get(task_id=theirs.task_id).output == {"n": 2}
    if connection.vendor == "postgresql":
        assert (stored.acks[0].accepted, stored.acks[0].reason) == (False, "invalid")
        assert stored.workunit_ids == [theirs.workunit_id]



@pytest.mark.django_db(transaction=True)
def test_a_result_stored_behind_a_pass_that_quarantines_its_holder_never_counts(
        make_batch, make_device):
    """A validation pass locks a work unit's replicas and, in the same transaction,
    quarantines a device it caught. That device's result, stored meanwhile, waits for the
    replica's lock: its holder's quarantine must be read after the wait (a column joined
    onto the locked select would be read from before it), so the result is invalid, never
    counted toward a quorum. (Found by a red-team review; PostgreSQL locks rows, SQLite
    serialises the two transactions whole.)"""
    import threading
    import time

    from django.db import connection, transaction

    from sparecycles.validation.services import devices_quarantine
    from sparecycles.validation.transitioner import workunits_transition

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    make_batch(count=1, min_quorum=2, target_nresults=2)
    device = make_device().device
    [replica] = tasks_dispatch(device=device, slots=1).replicas
    locked, errors, stored = threading.Event(), [], []

    def validating() -> None:  # as Writes.flush: lock the work unit's replicas, then
        try:                   # quarantine a device caught elsewhere in the same pass
            with transaction.atomic():
                workunits_transition([replica.workunit_id])
                devices_quarantine(device_ids=[device.pk], reason="caught")
                locked.set()
                time.sleep(1.0)
        except Exception as exc:
            errors.append(exc)
        finally:
            locked.set()
            connection.close()

    def storing() -> None:
        try:
            stored.append(results_store([Report(device_id=device.pk, task_id=replica.task_id,
                                                ok=True, output={"n": 1, "square": 1})]))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    pass_thread = threading.Thread(target=validating)
    pass_thread.start()
    assert locked.wait(timeout=30)
    store_thread = threading.Thread(target=storing)
    store_thread.start()
    pass_thread.join(timeout=30)
    store_thread.join(timeout=30)
    assert not errors, errors
    assert stored and stored[0].acks[0].accepted
    row = Replica.objects.select_related("device").get(pk=replica.pk)
    assert row.device.quarantined
    assert row.validate_state == Replica.ValidateState.INVALID, (row.outcome, row.validate_state)
