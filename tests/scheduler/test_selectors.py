"""scheduler/selectors.py: a batch's status for owners (the batch page, the API, the CLI)."""

import pytest

from sparecycles.projects.services import app_version_create
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.selectors import batch_status
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from tests.conftest import SQUARE_APP

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


def codes(status) -> dict:
    return {row["code"]: row for row in status["explanations"]}


def test_an_error_leaves_the_unit_waiting_for_a_different_volunteer(make_batch, make_device):
    batch = make_batch(count=1, min_quorum=1, target_nresults=1, max_error_results=3)
    device = make_device().device
    [task] = tasks_dispatch(device=device, slots=1).replicas
    replica_report(device=device, task_id=task.task_id, ok=False, error="ZeroDivisionError")
    assert tasks_dispatch(device=device, slots=1).replicas == []  # never the same volunteer
    status = batch_status(batch=batch)
    assert status["state"] == "open"
    assert status["waiting"]["after_error"] == 1
    explained = codes(status)["after_error"]
    assert explained["count"] == 1
    assert "waits for a different volunteer" in explained["text"]
    assert status["replica_errors"] == [{"error": "ZeroDivisionError", "count": 1}]


def test_one_result_of_two_waits_for_quorum(make_batch, make_device):
    batch = make_batch(count=1, min_quorum=2, target_nresults=2)
    device = make_device().device
    [task] = tasks_dispatch(device=device, slots=2).replicas
    replica_report(device=device, task_id=task.task_id, ok=True, output={"n": 1, "square": 1})
    status = batch_status(batch=batch)
    assert status["waiting"]["quorum"] == 1
    assert "waits for quorum" in codes(status)["quorum"]["text"]


def test_units_out_and_unsent_are_told_apart(make_batch, make_device):
    batch = make_batch(count=3, min_quorum=1, target_nresults=1)
    tasks_dispatch(device=make_device().device, slots=1)
    status = batch_status(batch=batch)
    assert status["waiting"] == {"validation_error": 0, "in_progress": 1, "after_error": 0,
                                 "quorum": 0, "unsent": 2}
    assert codes(status)["unsent"]["text"] == "2 work units wait for their first volunteer."


def test_a_paused_batch_says_so(make_batch):
    from sparecycles.projects.services import batch_pause

    batch = batch_pause(batch=make_batch(count=2))
    status = batch_status(batch=batch)
    assert status["state"] == "paused"
    assert codes(status)["paused"]["text"].startswith("Paused: no new tasks go out")
    assert "unsent" not in codes(status)  # while paused, nothing waits for a volunteer


def test_all_remaining_units_failed_with_their_reasons(make_batch, make_device):
    batch = make_batch(count=2, min_quorum=1, target_nresults=1, max_error_results=1)
    device = make_device().device
    for task in tasks_dispatch(device=device, slots=2).replicas:
        replica_report(device=device, task_id=task.task_id, ok=False, error="MemoryError")
    status = batch_status(batch=batch)
    assert (status["failed"], status["open"], status["state"]) == (2, 0, "completed")
    explained = codes(status)["all_failed"]
    assert explained["text"].startswith("All 2 work units failed: ")
    assert status["failure_reasons"][0]["reason"] in explained["text"]


def test_a_finished_batch_is_completed_not_open(make_batch, make_device):
    batch = make_batch(count=2, min_quorum=1, target_nresults=1)
    device = make_device().device
    for task in tasks_dispatch(device=device, slots=2).replicas:
        replica_report(device=device, task_id=task.task_id, ok=True, output={"n": 0})
    batch.refresh_from_db()
    status = batch_status(batch=batch)
    assert (batch.state, status["state"], status["fraction_done"]) == ("open", "completed", 1.0)
    assert codes(status)["completed"]["text"] == (
        "Completed: all 2 work units have a validated result.")


def test_a_broken_validator_is_named(make_batch):
    from sparecycles.projects.models import WorkUnit

    batch = make_batch(count=1)
    WorkUnit.objects.filter(batch=batch).update(error_reason="validator crashed: KeyError")
    status = batch_status(batch=batch)
    assert status["waiting"]["validation_error"] == 1
    assert "waits on validation" in codes(status)["validation_error"]["text"]


def test_the_default_workload_is_warned_about(app, make_batch):
    from sparecycles.projects.services import batch_create

    default = app_version_create(app=app, code=SQUARE_APP)
    batch = batch_create(app_version=default, name="b", inputs=[{"n": 1}])
    [warning] = batch_status(batch=batch)["warnings"]
    assert warning["code"] == "default_workload"
    assert "default workload (1e9 operations" in warning["text"]
    assert batch_status(batch=make_batch(count=1))["warnings"] == []  # declared: 432e9
