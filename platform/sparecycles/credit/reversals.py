"""Taking credit back: reversal rows beside the grants, and every maintained total reduced.

Exposed as credit.services.credit_reverse_many (the one place credit changes); kept in
its own module so granting and reversing can evolve separately.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from sparecycles import events
from sparecycles.db.bulk import rows_update
from sparecycles.volunteers.models import Volunteer

from .models import (
    CreditGrant,
    CreditReversal,
    CreditTotals,
    ProjectCredit,
    TeamCredit,
    VolunteerCredit,
    VolunteerProjectCredit,
)

REASON_MAX = 200
MERGE_HOPS = 8  # volunteer_merge folds an anonymous volunteer into an account: one hop


class ReversalError(ValueError):
    """A refused reversal request; the message says what is wrong."""


@transaction.atomic
def credit_reverse_many(*, replica_ids: list[int], reason: str) -> int:
    """Reverse the credit granted for these replicas, at most once each; returns how many.

    For each replica that was granted credit and not reversed yet, a CreditReversal row
    for the grant's full amount is written beside the grant (the grant itself is never
    edited), and the totals the grant fed are reduced: the volunteer's, the project's,
    the (project, volunteer) row's and the team's credit and RAC. Devices keep no totals:
    their credit is summed from grants without a reversal. Replicas without a grant, or
    reversed before, are skipped.

    Concurrency: the grants are locked first (FOR NO KEY UPDATE, by primary key), so a
    concurrent reversal of the same grant waits and then finds it reversed; the
    OneToOne on CreditReversal.grant is the backstop. The volunteers are locked (to follow
    merges), then credit's rows in the order every credit writer uses — volunteers',
    projects', teams', per-project rows.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ReversalError("A reversal needs a reason (a short text saying why).")
    reason = " ".join(reason.split())
    if len(reason) > REASON_MAX:
        raise ReversalError(f"The reason is limited to {REASON_MAX} characters.")
    if isinstance(replica_ids, (str, bytes)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in replica_ids):
        raise ReversalError("replica_ids must be a list of replica ids (integers).")
    ids = sorted(set(replica_ids))
    if not ids:
        return 0
    grants = list(CreditGrant.objects.select_for_update(no_key=True).order_by("pk")
                  .filter(replica_id__in=ids))
    done = set(CreditReversal.objects.filter(grant_id__in=[g.pk for g in grants])
               .values_list("grant_id", flat=True))
    todo = [g for g in grants if g.pk not in done]
    if not todo:
        return 0
    now = timezone.now()
    volunteers = _lock_owners({g.volunteer_id for g in todo})
    owner_of = {g.pk: _owner(g.volunteer_id, volunteers) for g in todo}
    owners = {owner_of[g.pk] for g in todo}
    totals = _rows_locked(VolunteerCredit, owners)
    projects = _rows_locked(ProjectCredit, {g.project_id for g in todo})
    teams = _rows_locked(TeamCredit, {volunteers[pk].team_id for pk in owners} - {None})
    per_project = {(row.volunteer_id, row.project_id): row for row in
                   VolunteerProjectCredit.objects.select_for_update(no_key=True).order_by("pk")
                   .filter(volunteer_id__in=owners, project_id__in={g.project_id for g in todo})}
    reversals = [
        CreditReversal(grant=g, replica_id=g.replica_id, project_id=g.project_id,
                       volunteer_id=owner_of[g.pk], device_id=g.device_id,
                       team_id=volunteers[owner_of[g.pk]].team_id,
                       amount_micro=g.amount_micro, reason=reason, reversed_at=now)
        for g in todo
    ]
    try:
        with transaction.atomic():  # savepoint; the grant locks make a clash impossible
            CreditReversal.objects.bulk_create(reversals)
    except IntegrityError as exc:
        raise ReversalError("A grant was reversed concurrently; nothing was changed.") from exc
    moment = now.timestamp()
    for grant in todo:
        volunteer = volunteers[owner_of[grant.pk]]
        rows = [totals.get(volunteer.pk), projects.get(grant.project_id),
                teams.get(volunteer.team_id), per_project.get((volunteer.pk, grant.project_id))]
        for row in rows:
            if row is not None:  # no row: that total never counted the grant
                row.withdraw(grant.amount_micro, granted=grant.granted_at.timestamp(),
                             now=moment)
    fields = CreditTotals.TOTAL_FIELDS
    for model, rows in ((VolunteerCredit, totals), (ProjectCredit, projects),
                        (TeamCredit, teams)):
        if rows:
            rows_update(model, rows.values(), fields)
    if per_project:
        rows_update(VolunteerProjectCredit, per_project.values(), fields)
    devices = sorted({g.device_id for g in todo if g.device_id is not None})
    changed = sorted({owner_of[g.pk] for g in todo})
    events.credit_granted(volunteer_ids=changed, device_ids=devices)
    return len(todo)


def _lock_owners(volunteer_ids: set[int]) -> dict[int, Volunteer]:
    """Lock the grants' volunteers and the accounts they were merged into (by pk).

    volunteer_merge moves a claimed volunteer's totals to the account and leaves the
    grants already sealed in an epoch behind, so those totals are reduced at the account.
    A merge landing between reading merged_into and locking is seen after the lock, and
    the wider set is locked again (merges happen once per device claim: this converges).
    """
    wanted = set(volunteer_ids)
    for _ in range(MERGE_HOPS):
        locked = {v.pk: v for v in Volunteer.objects.select_for_update(no_key=True)
                  .order_by("pk").filter(pk__in=wanted)}
        targets = {v.merged_into_id for v in locked.values() if v.merged_into_id} - set(locked)
        if not targets:
            return locked
        wanted |= targets
    raise ReversalError("A chain of merged volunteers is too long to follow.")


def _owner(volunteer_id: int, volunteers: dict[int, Volunteer]) -> int:
    """The volunteer holding this volunteer's totals now (itself unless merged)."""
    seen = set()
    while volunteers[volunteer_id].merged_into_id and volunteer_id not in seen:
        seen.add(volunteer_id)
        volunteer_id = volunteers[volunteer_id].merged_into_id
    return volunteer_id


def _rows_locked(model: type[CreditTotals], owner_ids: set[int]) -> dict[int, CreditTotals]:
    """The owners' credit rows that exist, locked in id order (a reversal makes none)."""
    return {r.pk: r for r in model.objects.select_for_update(no_key=True).order_by("pk")
            .filter(pk__in=sorted(owner_ids))}
