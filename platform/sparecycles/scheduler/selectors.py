"""Reads that join the scheduler's replicas to projects' batches (for owners' pages and API)."""

import datetime as dt
from typing import Any

from django.db.models import Count, Q

from sparecycles.projects.models import App, Batch, WorkUnit
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


def work_status(*, since: dt.datetime) -> dict[str, Any]:
    """The work side of the public server status (BOINC's server_status.php names): tasks
    ready to send and in progress, results received since `since`, and the first two per
    public app. Four queries whatever the size of the site."""
    S = Replica.ServerState
    totals = Replica.objects.aggregate(
        ready=Count("id", filter=Q(server_state=S.UNSENT)),
        in_progress=Count("id", filter=Q(server_state=S.IN_PROGRESS)))
    received = Replica.objects.filter(received_at__gte=since).count()
    by_app = {row["workunit__app_version__app"]: row for row in (
        Replica.objects.filter(server_state__in=[S.UNSENT, S.IN_PROGRESS]).order_by()
        .values("workunit__app_version__app")
        .annotate(unsent=Count("id", filter=Q(server_state=S.UNSENT)),
                  in_progress=Count("id", filter=Q(server_state=S.IN_PROGRESS))))}
    apps = [{"id": pk, "name": name,
             "unsent": by_app.get(pk, {}).get("unsent", 0),
             "in_progress": by_app.get(pk, {}).get("in_progress", 0)}
            for pk, name in App.objects.filter(project__is_public=True).order_by("pk")
            .values_list("pk", "name")]
    return {"results_ready_to_send": totals["ready"] or 0,
            "results_in_progress": totals["in_progress"] or 0,
            "results_received_in_past_24_hours": received, "apps": apps}
