"""Validation's writes, against the attacks of issue 16 (each fails on the rules before it)."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from sparecycles.credit.models import CreditGrant
from sparecycles.credit.reversals import CreditReversal
from sparecycles.credit.selectors import volunteer_credit_micro
from sparecycles.ledger.services import ledger_init
from sparecycles.ledger.verify import verify_ledger
from sparecycles.projects.models import App, WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_version_create,
    batch_create,
    spot_check_batch_create,
)
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import task_payload, tasks_dispatch
from sparecycles.validation.models import DeviceCredibility, ValidationAudit
from sparecycles.validation.services import replica_report
from sparecycles.validation.transitioner import workunits_transition
from sparecycles.volunteers.models import Device
from tests.api.conftest import token_client

pytestmark = pytest.mark.django_db
V = Replica.ValidateState


def right(replica):
    n = replica.workunit.input["n"]
    return {"n": n, "square": n * n}


def wrong(replica):
    return {"n": replica.workunit.input["n"], "square": -1}


def take(device):
    [replica] = tasks_dispatch(device=device, slots=1).replicas
    return replica


def answer(device, replica, output):
    return replica_report(device=device, task_id=replica.task_id, ok=True, output=output)


def test_two_new_devices_cannot_settle_a_quorum_with_a_shared_wrong_answer(
        make_batch, make_device):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    first, second = make_device().device, make_device().device
    for device in (first, second):
        replica = take(device)
        answer(device, replica, wrong(replica))
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN and workunit.canonical_output is None
    assert not CreditGrant.objects.exists()
    audit = ValidationAudit.objects.filter(workunit=workunit, kind="inconclusive").first()
    assert audit is not None and "established" in audit.reason


def test_an_established_device_settles_and_confirms_a_new_one(make_batch, make_device,
                                                              establish):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    veteran, newcomer = establish(make_device().device), make_device().device
    for device in (veteran, newcomer):
        replica = take(device)
        answer(device, replica, right(replica))
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.COMPLETED
    assert DeviceCredibility.objects.get(device=newcomer).confirmed == 1
    audit = ValidationAudit.objects.get(workunit=workunit, kind="completed")
    assert audit.credibility >= workunit.app_version.app.credibility_threshold


def test_validated_work_comes_back_as_a_spot_check_that_looks_like_any_task(
        make_batch, make_device, establish, settings):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    veteran, newcomer = establish(make_device().device), make_device().device
    for device in (veteran, newcomer):
        replica = take(device)
        answer(device, replica, right(replica))
    done = WorkUnit.objects.get()
    make_batch(count=1, min_quorum=2, target_nresults=2)  # open work the check stands in for
    settings.SPARECYCLES = {**settings.SPARECYCLES, "SPOT_CHECK_NEW": 1.0}
    honest, liar = make_device().device, make_device().device

    check = take(honest)
    assert check.spot_check and check.workunit_id == done.pk
    assert check.task_id not in set(done.replicas.exclude(pk=check.pk)
                                    .values_list("task_id", flat=True))
    ordinary = Replica.objects.filter(workunit__state="open").exclude(device=None).first()
    payload = task_payload(check)
    assert set(payload) == {"task_id", "deadline", "app", "input", "about"}
    assert check.deadline - check.sent_at == dt.timedelta(seconds=done.delay_bound)
    assert ordinary is None or set(task_payload(ordinary)) == set(payload)
    answer(honest, check, right(check))
    check.refresh_from_db()
    assert check.status == "valid"
    record = DeviceCredibility.objects.get(device=honest)
    assert (record.spot_checks_passed, record.confirmed) == (1, 1)
    assert record.last_clean_check_at is not None

    caught = take(liar)
    assert caught.spot_check
    answer(liar, caught, wrong(caught))
    liar.refresh_from_db()
    assert liar.quarantined
    assert ValidationAudit.objects.filter(kind="quarantine", device=liar).exists()
    done.refresh_from_db()
    assert done.state == WorkUnit.State.COMPLETED  # a spot check never changes its unit


def test_suspect_devices_cannot_exhaust_max_success_results(make_batch, make_device,
                                                            establish):
    make_batch(count=1, min_quorum=2, target_nresults=2, max_success_results=4,
               max_total_results=8)
    cheaters = [make_device().device for _ in range(4)]
    for cheater in cheaters:  # each was in the minority once already: suspect
        DeviceCredibility.objects.create(device=cheater, minority=1)
        replica = take(cheater)
        answer(cheater, replica, {"n": 1, "square": cheater.pk + 1000})
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN, workunit.error_reason  # before: failed
    veteran, newcomer = establish(make_device().device), make_device().device
    for device in (veteran, newcomer):
        replica = take(device)
        answer(device, replica, right(replica))
    workunit.refresh_from_db()
    assert workunit.state == WorkUnit.State.COMPLETED
    assert workunit.canonical_output == {"n": 1, "square": 1}


def test_a_broken_validator_is_an_error_of_its_work_unit_alone(project, make_batch,
                                                              make_device, establish):
    broken = App.objects.create(project=project, name="broken", title="Broken",
                                validator="custom", validate_code="x = 1\n")
    version = app_version_create(app=broken, code=b"def main(input):\n    return input\n")
    bad_batch = batch_create(app_version=version, name="bad", inputs=[{"n": 1}],
                             quorum=QuorumParams(min_quorum=2, target_nresults=2))
    good_batch = make_batch(count=1, min_quorum=2, target_nresults=2)
    veteran, newcomer = establish(make_device().device), make_device().device
    for device in (veteran, newcomer):
        for replica in tasks_dispatch(device=device, slots=2).replicas:
            Replica.objects.filter(pk=replica.pk).update(
                server_state="over", outcome="success", output=right(replica),
                received_at=timezone.now())
    bad_unit, good_unit = bad_batch.workunits.get(), good_batch.workunits.get()
    workunits_transition([bad_unit.pk, good_unit.pk])  # one pass over both
    bad_unit.refresh_from_db()
    good_unit.refresh_from_db()
    assert good_unit.state == WorkUnit.State.COMPLETED
    assert bad_unit.state == WorkUnit.State.OPEN
    # The sandbox could not load it: the work unit waits, with the reason for its owner.
    assert bad_unit.error_reason.startswith(("Validator error", "Validation paused"))
    assert not bad_unit.replicas.filter(validate_state=V.INVALID).exists()
    assert ValidationAudit.objects.filter(kind="validator_error", workunit=bad_unit).count() == 1
    workunits_transition([bad_unit.pk])  # again: no second audit row for the same error
    assert ValidationAudit.objects.filter(kind="validator_error", workunit=bad_unit).count() == 1


def test_devices_asking_together_are_not_paired_again_and_again(make_batch, make_device):
    make_batch(count=40, min_quorum=2, target_nresults=2)
    first, second = make_device().device, make_device().device
    for _ in range(12):  # they always ask one right after the other
        for device in (first, second):
            replica = take(device)
            answer(device, replica, right(replica))
    first_units = set(Replica.objects.filter(device=first).values_list("workunit", flat=True))
    second_units = set(Replica.objects.filter(device=second).values_list("workunit", flat=True))
    # Before: the second always got the other copy of the first's unit (12 of 12).
    assert len(first_units & second_units) <= 2


def test_a_device_that_turns_bad_has_its_settled_work_revalidated_and_credit_reversed(
        make_batch, make_device, establish, settings, app_version, client, owner,
        django_capture_on_commit_callbacks):
    ledger_init()
    batch = make_batch(count=2, min_quorum=2, target_nresults=2)
    turncoat, veteran = establish(make_device().device), establish(make_device().device)
    colluder = make_device().device
    DeviceCredibility.objects.filter(device=turncoat).update(
        last_clean_check_at=timezone.now() - dt.timedelta(hours=1))
    first, second = batch.workunits.order_by("seq")
    # The turncoat and a new colluder settle the first unit with a shared wrong answer...
    for device in (turncoat, colluder):
        replica = Replica.objects.filter(workunit=first, device=None).first()
        Replica.objects.filter(pk=replica.pk).update(
            device=device, volunteer=device.volunteer, server_state="in_progress",
            sent_at=timezone.now(), deadline=timezone.now() + dt.timedelta(hours=1))
        answer(device, replica, wrong(replica))
    # ...and the turncoat and the veteran the second, correctly.
    for device in (turncoat, veteran):
        replica = Replica.objects.filter(workunit=second, device=None).first()
        Replica.objects.filter(pk=replica.pk).update(
            device=device, volunteer=device.volunteer, server_state="in_progress",
            sent_at=timezone.now(), deadline=timezone.now() + dt.timedelta(hours=1))
        answer(device, replica, right(replica))
    first.refresh_from_db()
    assert first.state == WorkUnit.State.COMPLETED and first.canonical_output["square"] == -1
    credit_before = volunteer_credit_micro(volunteer_id=turncoat.volunteer_id)
    assert CreditGrant.objects.filter(device=turncoat).count() == 2

    # A spot check catches it.
    spot_check_batch_create(app_version=app_version, known=[({"n": 99}, {"n": 99, "square": 9801})])
    make_batch(count=1, min_quorum=2, target_nresults=2)
    settings.SPARECYCLES = {**settings.SPARECYCLES, "SPOT_CHECK_NEW": 1.0, "SPOT_CHECK_MIN": 1.0}
    check = take(turncoat)
    assert check.spot_check
    with django_capture_on_commit_callbacks(execute=True):  # revalidation runs after commit
        answer(turncoat, check, wrong(check))
    settings.SPARECYCLES = {**settings.SPARECYCLES, "SPOT_CHECK_NEW": 0.0, "SPOT_CHECK_MIN": 0.0}

    turncoat.refresh_from_db()
    assert turncoat.quarantined
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.revalidated_at and second.revalidated_at
    assert first.state == WorkUnit.State.OPEN  # the colluder's result alone settles nothing
    reversed_replicas = set(CreditReversal.objects.values_list("grant__replica__device",
                                                                flat=True))
    assert reversed_replicas == {turncoat.pk}
    assert volunteer_credit_micro(volunteer_id=turncoat.volunteer_id) < credit_before
    assert CreditGrant.objects.filter(device=turncoat).count() == 2  # rows never edited

    # Honest devices finish the reopened units; the colluder's credit goes back too.
    for device in (veteran, make_device().device, make_device().device):
        for replica in tasks_dispatch(device=device, slots=2).replicas:
            if replica.workunit.batch_id == batch.pk:
                with django_capture_on_commit_callbacks(execute=True):
                    answer(device, replica, right(replica))
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == second.state == WorkUnit.State.COMPLETED
    assert first.canonical_output == {"n": 1, "square": 1}
    assert set(CreditReversal.objects.values_list("grant__device", flat=True)) == {
        turncoat.pk, colluder.pk}
    # The honest veteran's result on the second unit stayed valid and kept its credit.
    assert not CreditReversal.objects.filter(grant__device=veteran).exists()
    assert not Replica.objects.filter(device=veteran, validate_state=V.INVALID).exists()
    assert verify_ledger().ok

    # The owner's download marks the results that were derived again.
    owner.is_staff = True
    owner.save()
    api = token_client(owner)
    response = api.get(f"/api/v1/batches/{batch.pk}/results.jsonl")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [(r["seq"], r["revalidated"]) for r in rows] == [(1, True), (2, True)]
    assert api.get(f"/api/v1/batches/{batch.pk}/").json()["status"]["revalidated"] == 2


def test_the_audit_is_readable_in_the_admin(admin_client, make_batch, make_device):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    device = make_device().device
    replica = take(device)
    answer(device, replica, right(replica))
    ValidationAudit.objects.create(kind="quarantine", device=device, reason="test")
    response = admin_client.get("/admin/validation/validationaudit/")
    assert response.status_code == 200 and b"Device quarantined" in response.content
    assert Device.objects.filter(pk=device.pk).exists()
