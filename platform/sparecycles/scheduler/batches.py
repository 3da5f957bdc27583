"""The scheduler's side of a batch's life: replicas for new work units, and abort and retire
(BOINC's abort_batch and retire_batch), which cancel the unfinished work and withdraw its
replicas. Pause and resume touch no replica and stay in projects.services.

projects never imports this module: it announces new work units with the
`workunits_created` signal (projects.signals), connected here in SchedulerConfig.ready.
"""

from django.db import transaction
from django.utils import timezone

from sparecycles import events
from sparecycles.db.bulk import RowWriter
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.projects.services import BatchStateError, batch_locked

from .models import Cancelled, Replica, new_task_id


def replicas_issue(*, workunit_ids: list[int], replicas_each: int) -> None:
    """Write `replicas_each` unsent replicas for each of these new work units."""
    if not workunit_ids:
        return
    replicas = RowWriter(Replica(workunit_id=0), ["workunit_id", "task_id"])
    replicas.write([replicas.row(workunit_id=pk, task_id=new_task_id())
                    for pk in workunit_ids for _ in range(replicas_each)])


def on_workunits_created(sender, *, batch: Batch, workunit_ids: list[int], replicas_each: int,
                         **kwargs) -> None:
    replicas_issue(workunit_ids=workunit_ids, replicas_each=replicas_each)
    events.progress_changed(batch_ids=[batch.pk],
                            project_ids=[batch.app_version.app.project_id])


def _batch_cancel_open(batch: Batch, reason: str) -> list[Cancelled]:
    """Cancel the batch's unfinished work units and withdraw their live replicas.

    Work units first (their row locks are what reports take), then replicas, so a
    concurrent result report either finishes its work unit first or finds it
    cancelled and is judged too late.
    """
    now = timezone.now()
    WorkUnit.objects.filter(batch=batch, state=WorkUnit.State.OPEN).update(
        state=WorkUnit.State.CANCELLED, error_reason=reason[:300], completed_at=now)
    live = Replica.objects.filter(
        workunit__batch=batch, workunit__state=WorkUnit.State.CANCELLED,
        server_state__in=[Replica.ServerState.UNSENT, Replica.ServerState.IN_PROGRESS])
    cancelled = [Cancelled(device_id=device_id, task_id=task_id) for device_id, task_id in
                 live.filter(server_state=Replica.ServerState.IN_PROGRESS,
                             device_id__isnull=False).values_list("device_id", "task_id")]
    Replica.objects.filter(pk__in=live.values("pk")).update(
        server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.DIDNT_NEED)
    return cancelled


def _batch_end(batch: Batch, state: str, reason: str) -> None:
    """Cancel the batch's unfinished work, put it in `state`, and tell the devices."""
    cancelled = _batch_cancel_open(batch, reason)
    batch.state = state
    batch.save(update_fields=["state"])
    events.tasks_cancelled(cancelled)
    events.progress_changed(batch_ids=[batch.pk],
                            project_ids=[batch.app_version.app.project_id])


@transaction.atomic
def batch_abort(*, batch: Batch) -> Batch:
    """Cancel every unfinished work unit; finished ones keep their results."""
    batch = batch_locked(batch)
    if batch.state == Batch.State.RETIRED:
        raise BatchStateError("The batch is retired; there is nothing left to abort.")
    if batch.state != Batch.State.ABORTED:
        _batch_end(batch, Batch.State.ABORTED, "The batch was aborted by its owner.")
    return batch


@transaction.atomic
def batch_retire(*, batch: Batch) -> Batch:
    """The owner is done with the batch: cancel what is left and close it for good.

    Its results stay downloadable; a retired batch no longer shows among active ones.
    """
    batch = batch_locked(batch)
    if batch.state != Batch.State.RETIRED:
        _batch_end(batch, Batch.State.RETIRED, "The batch was retired by its owner.")
    return batch
