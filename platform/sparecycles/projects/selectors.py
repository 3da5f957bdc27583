"""Reads for projects."""

from django.db.models import Count, Q, QuerySet

from .models import AppVersion, Batch, WorkUnit


def app_version_get(*, app_name: str, number: int) -> AppVersion | None:
    return AppVersion.objects.select_related("app").filter(app__name=app_name, number=number).first()


def batch_progress(*, batch: Batch) -> dict[str, int]:
    """Counts of the batch's work units by state."""
    counts = batch.workunits.aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(state=WorkUnit.State.OPEN)),
        completed=Count("id", filter=Q(state=WorkUnit.State.COMPLETED)),
        failed=Count("id", filter=Q(state=WorkUnit.State.FAILED)),
        cancelled=Count("id", filter=Q(state=WorkUnit.State.CANCELLED)),
    )
    return {key: value or 0 for key, value in counts.items()}


def workunits_completed(*, batch: Batch) -> QuerySet[WorkUnit]:
    return batch.workunits.filter(state=WorkUnit.State.COMPLETED).order_by("seq")
