"""validation.signals: what validation announces, inside its own transaction."""

import pytest
from django.db import connection, transaction

from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import devices_quarantine
from sparecycles.validation.signals import results_invalidated, results_validated
from sparecycles.validation.transitioner import workunits_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    """What the signals carried, and whether the sender's transaction was open then."""
    calls = []

    def validated(sender, *, replicas, **kwargs):
        calls.append(("validated", [r.pk for r in replicas], connection.in_atomic_block))

    def invalidated(sender, *, replica_ids, reason, **kwargs):
        calls.append(("invalidated", replica_ids, connection.in_atomic_block))

    results_validated.connect(validated, dispatch_uid="test.validated")
    results_invalidated.connect(invalidated, dispatch_uid="test.invalidated")
    yield calls
    results_validated.disconnect(dispatch_uid="test.validated")
    results_invalidated.disconnect(dispatch_uid="test.invalidated")


def stored(make_device):
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                          output={"x": 1})])
    return device, replica


def test_a_valid_result_is_announced_once_inside_the_transaction(make_batch, make_device,
                                                                  heard):
    make_batch(count=1)
    _, replica = stored(make_device)
    with transaction.atomic():
        workunits_transition([replica.workunit_id])
        workunits_transition([replica.workunit_id])  # nothing new: nothing announced
    assert heard == [("validated", [replica.pk], True)]


def test_revalidation_announces_the_thrown_out_result(make_batch, make_device, heard,
                                                      django_capture_on_commit_callbacks):
    make_batch(count=1)
    device, replica = stored(make_device)
    with transaction.atomic():
        workunits_transition([replica.workunit_id])
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            devices_quarantine(device_ids=[device.pk], reason="caught")
    invalidated = [call for call in heard if call[0] == "invalidated"]
    assert invalidated == [("invalidated", [replica.pk], True)]
    assert Replica.objects.get(pk=replica.pk).validate_state == Replica.ValidateState.INVALID
