"""credit.receivers: validation announces (validation.signals), credit grants and reverses
through its one service, inside validation's transaction, once per result."""

import pytest
from django.db import transaction

from sparecycles.credit.models import CreditGrant, CreditReversal
from sparecycles.scheduler.intake import Report, results_store
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.signals import results_invalidated, results_validated
from sparecycles.validation.transitioner import workunits_transition

pytestmark = pytest.mark.django_db


def stored(make_batch, make_device):
    """One result stored (pending), not validated yet: returns its replica."""
    make_batch(count=1)
    device = make_device().device
    replica = tasks_dispatch(device=device, slots=1).replicas[0]
    results_store([Report(device_id=device.pk, task_id=replica.task_id, ok=True,
                          output={"x": 1})])
    return replica


def test_credit_is_connected_to_validation():
    assert results_validated.has_listeners(Replica)
    assert results_invalidated.has_listeners(Replica)


def test_a_validated_result_grants_exactly_once(make_batch, make_device):
    replica = stored(make_batch, make_device)
    with transaction.atomic():
        workunits_transition([replica.workunit_id])
    assert CreditGrant.objects.filter(replica=replica).count() == 1
    valid = Replica.objects.select_related("workunit__app_version__app").get(pk=replica.pk)
    with transaction.atomic():  # announced again: the grant guard keeps it at one
        results_validated.send(sender=Replica, replicas=[valid])
    assert CreditGrant.objects.filter(replica=replica).count() == 1


def test_a_rolled_back_validation_leaves_no_grant(make_batch, make_device):
    replica = stored(make_batch, make_device)
    with pytest.raises(RuntimeError), transaction.atomic():
        workunits_transition([replica.workunit_id])
        assert CreditGrant.objects.filter(replica=replica).count() == 1  # same transaction
        raise RuntimeError("the validation fails after the grant")
    assert not CreditGrant.objects.exists()
    replica.refresh_from_db()
    assert replica.validate_state == Replica.ValidateState.INIT and replica.pending


def test_an_invalidated_result_is_reversed_exactly_once(make_batch, make_device):
    replica = stored(make_batch, make_device)
    with transaction.atomic():
        workunits_transition([replica.workunit_id])
    for _ in range(2):
        with transaction.atomic():
            results_invalidated.send(sender=Replica, replica_ids=[replica.pk],
                                     reason="Revalidated: its device was caught cheating.")
    assert CreditReversal.objects.filter(replica_id=replica.pk).count() == 1
