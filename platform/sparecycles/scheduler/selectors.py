"""Reads that join the scheduler's replicas to projects' batches (for owners' pages and API)."""

from typing import Any

from django.db.models import Count, Q

from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.projects.selectors import batch_progress

from .models import Replica


def batch_status(*, batch: Batch, reasons: int = 10) -> dict[str, Any]:
    """Progress, replicas out, and the commonest reasons for failures, for owners."""
    progress = batch_progress(batch=batch)
    replicas = Replica.objects.filter(workunit__batch=batch).aggregate(
        in_progress=Count("id", filter=Q(server_state=Replica.ServerState.IN_PROGRESS)),
        errors=Count("id", filter=Q(outcome=Replica.Outcome.CLIENT_ERROR)),
        timed_out=Count("id", filter=Q(outcome=Replica.Outcome.NO_REPLY)),
        invalid=Count("id", filter=Q(validate_state=Replica.ValidateState.INVALID)),
    )
    revalidated = batch.workunits.filter(revalidated_at__isnull=False).count()
    finished = progress["completed"] + progress["failed"] + progress["cancelled"]
    failed_units = list(
        # Failed work units, and open ones whose validation waits on a broken validator.
        batch.workunits.filter(Q(state=WorkUnit.State.FAILED)
                               | (Q(state=WorkUnit.State.OPEN) & ~Q(error_reason="")))
        .values("error_reason")
        .annotate(count=Count("id")).order_by("-count", "error_reason")[:reasons])
    replica_errors = list(
        Replica.objects.filter(workunit__batch=batch, outcome=Replica.Outcome.CLIENT_ERROR)
        .values("error_message").annotate(count=Count("id"))
        .order_by("-count", "error_message")[:reasons])
    return {
        **progress,
        "fraction_done": round(finished / progress["total"], 4) if progress["total"] else 0.0,
        "replicas": {key: value or 0 for key, value in replicas.items()},
        # Work units validation sent back because a device that helped settle them was
        # caught cheating later (their canonical result was derived again).
        "revalidated": revalidated,
        "failure_reasons": [{"reason": row["error_reason"] or "unknown", "count": row["count"]}
                            for row in failed_units],
        "replica_errors": [{"error": row["error_message"] or "unspecified", "count": row["count"]}
                           for row in replica_errors],
    }
