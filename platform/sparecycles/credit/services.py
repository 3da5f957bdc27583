"""The one place credit changes."""

import math

from django.db import IntegrityError, transaction
from django.utils import timezone

from sparecycles import events
from sparecycles.db.bulk import rows_update
from sparecycles.projects.models import Project
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.badges import badges_award
from sparecycles.volunteers.models import Team, Volunteer

from .averages import rac_now, rac_update
from .claims import replicas_credit_micro
from .models import MICRO, CreditGrant, FlopsApproval, VolunteerProjectCredit
from .reversals import ReversalError, credit_reverse_many  # noqa: F401 (credit's one write API)


def credit_grant(*, replica: Replica) -> CreditGrant | None:
    """Grant credit for one valid replica, at most once; None if already granted or not valid."""
    grants = credit_grant_many(replicas=[replica])
    return grants[0] if grants else None


def credit_grant_many(*, replicas: list[Replica]) -> list[CreditGrant]:
    """Grant credit for valid replicas, at most once each; returns the grants made.

    Every valid replica of a work unit gets the same credit, from the work measured
    (credit.claims; `replica.workunit.app_version` is read, so load it with the replica).
    Runs inside the caller's transaction (the transitioner's). The caller holds the
    replicas' work unit locks, so no other transaction grants for these replicas
    meanwhile; the OneToOne on replica is the backstop (a second grant fails the
    savepoint and nothing is counted). Totals are updated under row locks taken in one
    order everywhere — volunteers, projects, teams, per-project rows, each by primary
    key — and each row is written once however many grants it gets. Device rows are
    never touched: a device's credit is summed from its grants.
    """
    eligible = {r.pk: r for r in replicas
                if r.validate_state == Replica.ValidateState.VALID and r.volunteer_id is not None}
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
    volunteers = {v.pk: v for v in Volunteer.objects.select_for_update(no_key=True).order_by("pk")
                  .filter(pk__in={g.volunteer_id for g in grants})}
    before = {pk: (v.credit_micro, v.rac_time) for pk, v in volunteers.items()}
    projects = {p.pk: p for p in Project.objects.select_for_update(no_key=True).order_by("pk")
                .filter(pk__in={g.project_id for g in grants})}
    teams = {t.pk: t for t in Team.objects.select_for_update(no_key=True).order_by("pk")
             .filter(pk__in={v.team_id for v in volunteers.values() if v.team_id})}
    per_project = {(row.volunteer_id, row.project_id): row for row in
                   VolunteerProjectCredit.objects.select_for_update(no_key=True).order_by("pk")
                   .filter(volunteer_id__in=list(volunteers),
                           project_id__in=list(projects))}
    moment = now.timestamp()
    for grant, replica in zip(grants, todo, strict=True):
        started = replica.sent_at.timestamp() if replica.sent_at else None
        volunteer = volunteers[grant.volunteer_id]
        key = (volunteer.pk, grant.project_id)
        if key not in per_project:  # the volunteer's lock serialises its creation
            per_project[key] = VolunteerProjectCredit(project_id=grant.project_id,
                                                      volunteer_id=volunteer.pk)
        rows = [projects[grant.project_id], volunteer, per_project[key]]
        if volunteer.team_id is not None:
            rows.append(teams[volunteer.team_id])
        for row in rows:
            _accrue(row, grant.amount_micro, now=moment, start=started)
    fields = ["credit_micro", "rac", "rac_time", "rac_key"]
    rows_update(Volunteer, volunteers.values(), fields)
    rows_update(Project, projects.values(), fields)
    if teams:
        rows_update(Team, teams.values(), fields)
    fresh = [row for row in per_project.values() if row.pk is None]
    if fresh:
        VolunteerProjectCredit.objects.bulk_create(fresh)
    old = [row for row in per_project.values() if row.pk is not None]
    if old:
        rows_update(VolunteerProjectCredit, old, fields)
    for pk, volunteer in volunteers.items():
        badges_award(volunteer=volunteer, credit_before=before[pk][0],
                     last_credit_time=before[pk][1], now=now)
    devices = sorted({g.device_id for g in grants if g.device_id is not None})
    events.credit_granted(volunteer_ids=sorted(volunteers), device_ids=devices)
    return grants


def _accrue(row, amount_micro: int, *, now: float, start: float | None) -> None:
    """Add one grant to a credit row in memory (the caller saves it)."""
    row.credit_micro += amount_micro
    row.rac = rac_update(rac=row.rac, rac_time=row.rac_time, credit=amount_micro / MICRO,
                         now=now, start=start)
    row.rac_time = now
    row.refresh_rac_key()


def project_credit_merge(*, source_id: int, target_id: int, now: float) -> None:
    """Fold one volunteer's per-project credit rows into another's (volunteer_merge).

    The caller holds both volunteers' row locks, so no grant changes these rows meanwhile.
    """
    locked = VolunteerProjectCredit.objects.select_for_update(no_key=True)
    theirs = {row.project_id: row for row in locked.filter(volunteer_id=target_id)}
    for row in locked.filter(volunteer_id=source_id):
        into = theirs.get(row.project_id)
        if into is None:
            row.volunteer_id = target_id
            row.save(update_fields=["volunteer"])
            continue
        into.credit_micro += row.credit_micro
        into.rac = (rac_now(rac=into.rac, rac_time=into.rac_time, now=now)
                    + rac_now(rac=row.rac, rac_time=row.rac_time, now=now))
        into.rac_time = now
        into.refresh_rac_key()
        into.save(update_fields=["credit_micro", "rac", "rac_time", "rac_key"])
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
