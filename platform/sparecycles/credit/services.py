"""The one place credit changes."""


from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from sparecycles.projects.models import Project
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.badges import badges_award
from sparecycles.volunteers.models import Team, Volunteer

from .averages import rac_now, rac_update
from .models import MICRO, CreditGrant, VolunteerProjectCredit, credit_micro_for_flops
from .notify import notify_credit_granted


def credit_grant(*, replica: Replica) -> CreditGrant | None:
    """Grant credit for one valid replica, at most once; None if already granted or not valid.

    Every valid replica of a work unit gets the same credit, from its app
    version's FLOPs estimate. Runs inside the caller's transaction (the
    transitioner's); the OneToOne on replica and the savepoint make a
    concurrent second grant fail harmlessly, and the totals are updated under
    row locks: the volunteer first (to learn its team), then project and team, then the
    volunteer's per-project row (created here the first time; the volunteer's lock keeps
    two grants from creating it at once). Device
    rows are never touched here: a device's credit is summed from its grants, so no
    lock is taken on another device while its own result may be reporting.
    """
    if replica.validate_state != Replica.ValidateState.VALID or replica.volunteer_id is None:
        return None
    workunit = replica.workunit
    version = workunit.app_version
    project_id = version.app.project_id
    amount = credit_micro_for_flops(version.flops_per_unit)
    now = timezone.now()
    try:
        with transaction.atomic():  # savepoint: a second grant for this replica fails here
            grant = CreditGrant.objects.create(
                replica=replica, workunit=workunit, project_id=project_id,
                volunteer_id=replica.volunteer_id, device_id=replica.device_id,
                amount_micro=amount, granted_at=now,
            )
    except IntegrityError:
        return None
    volunteer = Volunteer.objects.select_for_update().get(pk=replica.volunteer_id)
    before = (volunteer.credit_micro, volunteer.rac_time)
    started = replica.sent_at.timestamp() if replica.sent_at else None
    _add(Project, project_id, amount, now=now.timestamp(), start=started)
    if volunteer.team_id is not None:
        _add(Team, volunteer.team_id, amount, now=now.timestamp(), start=started)
    _accrue(volunteer, amount, now=now.timestamp(), start=started)
    per_project = (VolunteerProjectCredit.objects.select_for_update()
                   .filter(project_id=project_id, volunteer_id=volunteer.pk).first()
                   or VolunteerProjectCredit(project_id=project_id, volunteer_id=volunteer.pk))
    _accrue(per_project, amount, now=now.timestamp(), start=started)
    badges_award(volunteer=volunteer, credit_before=before[0], last_credit_time=before[1],
                 now=now)
    transaction.on_commit(lambda: notify_credit_granted(
        volunteer_id=replica.volunteer_id, device_id=replica.device_id))
    return grant


def _add(model: type[Model], pk: int, amount_micro: int, *, now: float,
         start: float | None) -> None:
    _accrue(model.objects.select_for_update().get(pk=pk), amount_micro, now=now, start=start)


def _accrue(row, amount_micro: int, *, now: float, start: float | None) -> None:
    row.credit_micro += amount_micro
    row.rac = rac_update(rac=row.rac, rac_time=row.rac_time, credit=amount_micro / MICRO,
                         now=now, start=start)
    row.rac_time = now
    row.refresh_rac_key()
    if row.pk is None:
        row.save(force_insert=True)
    else:
        row.save(update_fields=["credit_micro", "rac", "rac_time", "rac_key"])


def project_credit_merge(*, source_id: int, target_id: int, now: float) -> None:
    """Fold one volunteer's per-project credit rows into another's (volunteer_merge).

    The caller holds both volunteers' row locks, so no grant changes these rows meanwhile.
    """
    theirs = {row.project_id: row for row in
              VolunteerProjectCredit.objects.select_for_update().filter(volunteer_id=target_id)}
    for row in VolunteerProjectCredit.objects.select_for_update().filter(volunteer_id=source_id):
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
