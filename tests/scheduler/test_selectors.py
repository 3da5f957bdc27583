"""scheduler/selectors.py: a batch's status for owners (the batch page, the API, the CLI)."""

import pytest

from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.selectors import batch_status
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report

pytestmark = pytest.mark.django_db


def test_status_counts_replicas_out_and_names_the_commonest_errors(make_batch, make_device):
    batch = make_batch(count=3, min_quorum=1, target_nresults=1, max_error_results=3)
    device = make_device().device
    sent = tasks_dispatch(device=device, slots=3).replicas
    replica_report(device=device, task_id=sent[0].task_id, ok=False, error="MemoryError")
    replica_report(device=device, task_id=sent[1].task_id, ok=True, output={"n": 2})
    status = batch_status(batch=batch)
    assert (status["total"], status["completed"], status["open"]) == (3, 1, 2)
    assert status["replicas"]["errors"] == 1
    assert status["replicas"]["in_progress"] == Replica.objects.filter(
        workunit__batch=batch, server_state=Replica.ServerState.IN_PROGRESS).count()
    assert status["replica_errors"] == [{"error": "MemoryError", "count": 1}]
    assert status["fraction_done"] == round(1 / 3, 4)
