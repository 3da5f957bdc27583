"""The one place credit changes."""

import math
from typing import TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone

from sparecycles import events
from sparecycles.db.bulk import rows_update

from .badges import Earning, badges_award_many
from .claims import replicas_credit_micro
from .models import (
    Badge,
    CreditGrant,
    CreditTotals,
    FlopsApproval,
    ProjectCredit,
    TeamCredit,
    VolunteerCredit,
    VolunteerProjectCredit,
)
from .reversals import ReversalError, credit_reverse_many  # noqa: F401 (credit's one write API)

T = TypeVar("T", bound=CreditTotals)


def credit_grant(*, replica) -> CreditGrant | None:
    """Grant credit for one valid replica, at most once; None if already granted or not valid."""
    grants = credit_grant_many(replicas=[replica])
    return grants[0] if grants else None


def credit_grant_many(*, replicas: list) -> list[CreditGrant]:
    """Grant credit for valid replicas, at most once each; returns the grants made.

    Every valid replica of a work unit gets the same credit, from the work measured
    (credit.claims; `replica.workunit.app_version` is read, so load it with the replica).
    Runs inside the caller's transaction (the transitioner's). The caller holds the
    replicas' work unit locks, so no other transaction grants for these replicas
    meanwhile; the OneToOne on replica is the backstop (a second grant fails the
    savepoint and nothing is counted). Totals are credit's own rows, updated under row
    locks taken in one order everywhere — volunteers', projects', teams', per-project
    rows, each by primary key — and each row is written once however many grants it
    gets. Device totals are never kept: a device's credit is summed from its grants.

    `replicas` are scheduler.Replica rows, handed in by the caller (validation): credit
    reads their verdict, volunteer, device and work unit, and queries no replica itself.
    """
    eligible = {r.pk: r for r in replicas
                if r.validate_state == type(r).ValidateState.VALID and r.volunteer_id is not None}
    if not eligible:
        return []
    granted = set(CreditGrant.objects.filter(replica_id__in=list(eligible))
                  .values_list("replica_id", flat=True))
    todo = [eligible[pk] for pk in sorted(eligible) if pk not in granted]
    if not todo:
        return []
    now = timezone.now()
    amounts = replicas_credit_micro(replicas=todo)
    grants = [
        CreditGrant(replica=r, workunit=r.workunit,
                    project_id=r.workunit.app_version.app.project_id,
                    volunteer_id=r.volunteer_id, device_id=r.device_id,
                    amount_micro=amounts[r.pk],
                    granted_at=now)
        for r in todo
    ]
    try:
        with transaction.atomic():  # savepoint: a grant made meanwhile fails them all here
            CreditGrant.objects.bulk_create(grants)
    except IntegrityError:
        return []
    volunteers = totals_lock(VolunteerCredit, {g.volunteer_id for g in grants},
                             related="volunteer")
    before = {pk: (v.credit_micro, v.rac_time) for pk, v in volunteers.items()}
    projects = totals_lock(ProjectCredit, {g.project_id for g in grants})
    teams = totals_lock(TeamCredit, {v.volunteer.team_id for v in volunteers.values()
                                     if v.volunteer.team_id})
    per_project = {(row.volunteer_id, row.project_id): row for row in
                   VolunteerProjectCredit.objects.select_for_update(no_key=True).order_by("pk")
                   .filter(volunteer_id__in=list(volunteers),
                           project_id__in=list(projects))}
    moment = now.timestamp()
    for grant, replica in zip(grants, todo, strict=True):
        started = replica.sent_at.timestamp() if replica.sent_at else None
        volunteer = volunteers[grant.volunteer_id]
        key = (grant.volunteer_id, grant.project_id)
        if key not in per_project:  # the volunteer's row lock serialises its creation
            per_project[key] = VolunteerProjectCredit(project_id=grant.project_id,
                                                      volunteer_id=grant.volunteer_id)
        rows = [projects[grant.project_id], volunteer, per_project[key]]
        team_id = volunteer.volunteer.team_id
        if team_id is not None:
            rows.append(teams[team_id])
        for row in rows:
            row.accrue(grant.amount_micro, now=moment, start=started)
    fields = CreditTotals.TOTAL_FIELDS
    rows_update(VolunteerCredit, volunteers.values(), fields)
    rows_update(ProjectCredit, projects.values(), fields)
    if teams:
        rows_update(TeamCredit, teams.values(), fields)
    fresh = [row for row in per_project.values() if row.pk is None]
    if fresh:
        VolunteerProjectCredit.objects.bulk_create(fresh)
    old = [row for row in per_project.values() if row.pk is not None]
    if old:
        rows_update(VolunteerProjectCredit, old, fields)
    badges_award_many([Earning(pk, totals.credit_micro, before[pk][0], before[pk][1])
                       for pk, totals in volunteers.items()], now=now)
    devices = sorted({g.device_id for g in grants if g.device_id is not None})
    events.credit_granted(volunteer_ids=sorted(volunteers), device_ids=devices)
    return grants


def totals_lock(model: type[T], owner_ids: set[int], *, related: str | None = None
                ) -> dict[int, T]:
    """The credit rows of these owners (by the owner's id), locked in id order.

    A missing row (the owner's first credit) is inserted first, ignoring a row a
    concurrent first grant inserted meanwhile, then locked like the others: one query
    when every row exists, three on a first grant.
    """
    if not owner_ids:
        return {}

    def load(ids) -> dict[int, T]:
        qs = model.objects.order_by("pk").filter(pk__in=sorted(ids))
        if related:  # the owner comes along in the same query; only credit's row is locked
            return {r.pk: r for r in qs.select_related(related)
                    .select_for_update(no_key=True, of=("self",))}
        return {r.pk: r for r in qs.select_for_update(no_key=True)}

    rows = load(owner_ids)
    missing = set(owner_ids) - set(rows)
    if missing:
        model.objects.bulk_create([model(pk=pk) for pk in sorted(missing)],
                                  ignore_conflicts=True)
        rows.update(load(missing))
    return rows


@transaction.atomic
def volunteer_credit_merge(*, source_id: int, target_id: int, sealed_grant_ids) -> None:
    """Fold one volunteer's credit into another's (accounts' volunteer_merge): their totals,
    their per-project rows, their badges, and their grants not yet sealed in a closed
    epoch (`sealed_grant_ids`: a query of the grants the ledger already paid out, which
    stay attributed to the source so the journal still verifies).

    The caller holds both volunteers' row locks; credit's rows are locked here too, in the
    order every credit writer uses.
    """
    CreditGrant.objects.filter(volunteer_id=source_id).exclude(
        pk__in=sealed_grant_ids).update(volunteer_id=target_id)
    Badge.objects.filter(volunteer_id=source_id).exclude(
        kind__in=Badge.objects.filter(volunteer_id=target_id).values("kind")).update(
        volunteer_id=target_id)
    now = timezone.now().timestamp()
    rows = totals_lock(VolunteerCredit, {source_id, target_id})
    source, target = rows[source_id], rows[target_id]
    target.absorb(source, now=now)
    rows_update(VolunteerCredit, [target, source], CreditTotals.TOTAL_FIELDS)
    locked = VolunteerProjectCredit.objects.select_for_update(no_key=True).order_by("pk")
    theirs = {row.project_id: row for row in locked.filter(volunteer_id=target_id)}
    for row in locked.filter(volunteer_id=source_id):
        into = theirs.get(row.project_id)
        if into is None:
            row.volunteer_id = target_id
            row.save(update_fields=["volunteer"])
            continue
        into.absorb(row, now=now)
        into.save(update_fields=CreditTotals.TOTAL_FIELDS)
        row.delete()


class ApprovalRefused(PermissionError):
    """Only a superuser approves a declared FLOPs estimate; the message says so."""


def _superuser_or_refuse(by) -> None:
    if not (by is not None and by.is_active and by.is_superuser):
        raise ApprovalRefused("Only a site superuser may approve or revoke a declared FLOPs "
                              "estimate; project owners cannot raise their own credit.")


@transaction.atomic
def flops_approve(*, app_version, by, flops_per_unit: float | None = None,
                  note: str = "") -> FlopsApproval:
    """Record a superuser's approval of an app version's declared FLOPs estimate.

    From now on its work units earn up to `flops_per_unit` (default: the version's current
    estimate) as declared, even above what was measured. Credit already granted is not
    changed. Anyone else is refused (ApprovalRefused).
    """
    _superuser_or_refuse(by)
    value = app_version.flops_per_unit if flops_per_unit is None else float(flops_per_unit)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("The approved estimate must be a positive, finite number of FLOPs.")
    return FlopsApproval.objects.create(app_version=app_version, flops_per_unit=value,
                                        approved_by=by, approved_at=timezone.now(),
                                        note=note[:200])


@transaction.atomic
def flops_approval_revoke(*, app_version, by, note: str = "") -> FlopsApproval:
    """Record that the app version's declared estimate is no longer approved."""
    _superuser_or_refuse(by)
    return FlopsApproval.objects.create(app_version=app_version, flops_per_unit=0,
                                        revoked=True, approved_by=by,
                                        approved_at=timezone.now(), note=note[:200])
