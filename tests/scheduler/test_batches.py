"""Pause, resume, abort and retire a batch (BOINC's remote job life cycle), and the replicas
the scheduler issues for a new batch's work units."""

import pytest

from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.projects.services import BatchStateError, batch_pause, batch_resume
from sparecycles.scheduler.batches import batch_abort, batch_retire
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report

pytestmark = pytest.mark.django_db


def test_paused_batches_hand_out_nothing_until_resumed(make_batch, make_device):
    batch = make_batch(count=2)
    device = make_device().device
    batch_pause(batch=batch)
    assert tasks_dispatch(device=device, slots=2).replicas == []
    batch_resume(batch=batch)
    assert len(tasks_dispatch(device=device, slots=2).replicas) == 2


def test_abort_cancels_open_work_keeps_results_and_tells_devices(
        make_batch, make_device, monkeypatch, django_capture_on_commit_callbacks):
    sent_events = []
    monkeypatch.setattr("sparecycles.events.send_events", sent_events.extend)
    batch = make_batch(count=3)
    device = make_device().device
    sent = tasks_dispatch(device=device, slots=3).replicas
    replica_report(device=device, task_id=sent[0].task_id, ok=True, output={"n": 1})
    with django_capture_on_commit_callbacks(execute=True):
        batch_abort(batch=batch)
    states = dict(batch.workunits.values_list("seq", "state"))
    assert list(states.values()).count(WorkUnit.State.COMPLETED) == 1
    assert list(states.values()).count(WorkUnit.State.CANCELLED) == 2
    told = [task_id for _group, event in sent_events if event["type"] == "tasks.cancel"
            for task_id in event["task_ids"]]
    assert set(told) == {r.task_id for r in sent[1:]}
    assert not Replica.objects.filter(server_state__in=["unsent", "in_progress"]).exists()
    # A result that comes back late for a cancelled unit is stored and judged too late.
    ack = replica_report(device=device, task_id=sent[1].task_id, ok=True, output={"n": 2})
    assert ack.accepted
    assert Replica.objects.get(task_id=sent[1].task_id).validate_state == "too_late"


def test_state_rules(make_batch):
    batch = make_batch(count=1)
    assert batch_abort(batch=batch).state == Batch.State.ABORTED
    assert batch_abort(batch=batch).state == Batch.State.ABORTED   # no-op
    for forbidden in (batch_pause, batch_resume):
        with pytest.raises(BatchStateError, match="aborted"):
            forbidden(batch=batch)
    assert batch_retire(batch=batch).state == Batch.State.RETIRED
    with pytest.raises(BatchStateError, match="retired"):
        batch_abort(batch=batch)


def test_retire_cancels_what_is_left(make_batch):
    batch = make_batch(count=2)
    batch_retire(batch=batch)
    assert set(batch.workunits.values_list("state", flat=True)) == {WorkUnit.State.CANCELLED}
    assert batch.workunits.first().error_reason == "The batch was retired by its owner."


def test_a_new_batch_gets_target_nresults_unsent_replicas_per_work_unit(app_version):
    from sparecycles.projects.services import QuorumParams, batch_create

    batch = batch_create(app_version=app_version, name="b", inputs=[{"n": n} for n in range(3)],
                         quorum=QuorumParams(min_quorum=2, target_nresults=3,
                                             max_total_results=6))
    replicas = Replica.objects.filter(workunit__batch=batch)
    assert replicas.count() == 9
    assert set(replicas.values_list("server_state", flat=True)) == {Replica.ServerState.UNSENT}
    assert len(set(replicas.values_list("task_id", flat=True))) == 9


def test_projects_imports_nothing_of_the_scheduler():
    """The work layer has one direction: scheduler imports projects, never the reverse
    (the owners' admin, an edge app of its own, calls the scheduler's services)."""
    from pathlib import Path

    import sparecycles.projects as projects

    root = Path(projects.__file__).parent
    offenders = [str(path.relative_to(root)) for path in root.rglob("*.py")
                 if "migrations" not in path.parts and "sparecycles.scheduler" in path.read_text()]
    assert offenders == []
