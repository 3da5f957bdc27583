"""Reads that join the scheduler's replicas to projects' batches (for owners' pages and API).

`batch_status` is the one read model of a batch for owners: the admin's batch page, the
API's batch detail and the CLI's `status` all show what it says, in its words.
"""

import datetime as dt
from typing import Any

from django.db.models import Count, Q

from sparecycles.projects.models import App, Batch, WorkUnit
from sparecycles.projects.selectors import app_version_warnings, batch_progress

from .models import Replica

# What an unsettled work unit is waiting for, in the order it is checked: the first that
# applies names it. Each text for one work unit and for several ({n}).
WAITING = {
    "validation_error": (
        "1 work unit waits on validation, which failed (see the reasons below); fix the "
        "validator and it is validated again.",
        "{n} work units wait on validation, which failed (see the reasons below); fix the "
        "validator and they are validated again."),
    "in_progress": ("1 work unit is being computed by a volunteer now.",
                    "{n} work units are being computed by volunteers now."),
    "after_error": (
        "1 work unit waits for a different volunteer: a copy of it ended in an error or "
        "timed out, and the retry must go to someone else.",
        "{n} work units wait for a different volunteer: a copy of each ended in an error or "
        "timed out, and the retry must go to someone else."),
    "quorum": (
        "1 work unit has a result and waits for quorum: results from other volunteers "
        "must agree with it before one is accepted.",
        "{n} work units have results and wait for quorum: results from other volunteers "
        "must agree with them before one is accepted."),
    "unsent": ("1 work unit waits for its first volunteer.",
               "{n} work units wait for their first volunteer."),
}


def units(n: int) -> str:
    return "1 work unit" if n == 1 else f"{n:,} work units"


def waiting_text(code: str, n: int) -> str:
    one, several = WAITING[code]
    return one if n == 1 else several.format(n=f"{n:,}")


def _waiting(batch: Batch, n_open: int) -> dict[str, int]:
    """Count the batch's `n_open` open work units by what they wait for (WAITING's keys).

    Only work units with a replica sent are looked at one by one (one GROUP BY over their
    replicas); every other open unit waits for its first volunteer. A batch of 100,000
    mostly unsent units costs what its units in flight cost.
    """
    flag = {"out": Q(server_state=Replica.ServerState.IN_PROGRESS),
            "erred": Q(outcome__in=[Replica.Outcome.CLIENT_ERROR, Replica.Outcome.NO_REPLY]),
            "succeeded": Q(outcome=Replica.Outcome.SUCCESS)}
    touched = (Replica.objects
               .filter(workunit__batch=batch, workunit__state=WorkUnit.State.OPEN,
                       workunit__error_reason="", spot_check=False)
               .exclude(server_state=Replica.ServerState.UNSENT)
               .values("workunit_id")
               .annotate(**{name: Count("id", filter=q) for name, q in flag.items()}))
    counts = dict.fromkeys(WAITING, 0)
    for row in touched:
        key = ("in_progress" if row["out"] else "after_error" if row["erred"]
               else "quorum" if row["succeeded"] else None)
        if key:
            counts[key] += 1
    counts["validation_error"] = batch.workunits.filter(
        state=WorkUnit.State.OPEN).exclude(error_reason="").count()
    counts["unsent"] = max(0, n_open - sum(counts.values()))
    return counts


def _state(batch: Batch, progress: dict[str, int]) -> str:
    """The batch's state as owners read it: an open or paused batch with nothing left to
    settle is "completed" (Batch.state stays what the owner set)."""
    if batch.state in (Batch.State.OPEN, Batch.State.PAUSED) and progress["total"] \
            and not progress["open"]:
        return "completed"
    return batch.state


def _explanations(batch: Batch, state: str, progress: dict[str, int],
                  waiting: dict[str, int], failures: list[dict]) -> list[dict[str, Any]]:
    """Why the batch is where it is, in sentences, most important first."""
    out: list[dict[str, Any]] = []

    def say(code: str, text: str, count: int | None = None) -> None:
        out.append({"code": code, "count": count, "text": text})

    total, failed = progress["total"], progress["failed"]
    reasons = "; ".join(f"{row['reason']} ({row['count']})" for row in failures)
    every = "the work unit" if total == 1 else f"all {total:,} work units"
    if state == "completed":
        if failed == total:
            say("all_failed", f"{every.capitalize()} failed: {reasons}.", failed)
        elif failed:
            say("completed", f"Completed: {progress['completed']:,} of {units(total)} have "
                             f"a validated result; {failed:,} failed: {reasons}.", failed)
        else:
            say("completed", f"Completed: {every} {'has' if total == 1 else 'have'} a "
                             "validated result.", total)
        return out
    if state == Batch.State.ABORTED:
        say("aborted", "Aborted: unfinished work units were cancelled; results so far are "
                       "kept.")
    elif state == Batch.State.RETIRED:
        say("retired", "Retired: what was left was cancelled; results stay downloadable.")
    elif state == Batch.State.PAUSED:
        left = progress["open"]
        say("paused", f"Paused: no new tasks go out until you resume it; {units(left)} "
                      f"{'is' if left == 1 else 'are'} left.", left)
    elif not total:
        say("empty", "This batch has no work units.", 0)
    if state in (Batch.State.OPEN, Batch.State.PAUSED):
        for code, count in waiting.items():
            if count and not (state == Batch.State.PAUSED and code == "unsent"):
                say(code, waiting_text(code, count), count)
        if failed:
            say("failed", f"{units(failed)} failed: {reasons}.", failed)
    return out


def batch_status(*, batch: Batch, reasons: int = 10) -> dict[str, Any]:
    """Progress, replicas out, the commonest reasons for failures, and in words why the
    batch is where it is (`explanations`) and what to fix (`warnings`), for owners."""
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
    failure_reasons = [{"reason": row["error_reason"] or "unknown", "count": row["count"]}
                       for row in failed_units]
    state = _state(batch, progress)
    waiting = (_waiting(batch, progress["open"]) if progress["open"]
               else dict.fromkeys(WAITING, 0))
    return {
        **progress,
        "state": state,
        "fraction_done": round(finished / progress["total"], 4) if progress["total"] else 0.0,
        "replicas": {key: value or 0 for key, value in replicas.items()},
        # Work units validation sent back because a device that helped settle them was
        # caught cheating later (their canonical result was derived again).
        "revalidated": revalidated,
        "failure_reasons": failure_reasons,
        "replica_errors": [{"error": row["error_message"] or "unspecified", "count": row["count"]}
                           for row in replica_errors],
        "waiting": waiting,
        "explanations": _explanations(batch, state, progress, waiting, failure_reasons),
        "warnings": app_version_warnings(app_version=batch.app_version),
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
