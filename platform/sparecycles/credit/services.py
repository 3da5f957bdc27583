"""The one place credit changes."""


from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from sparecycles.projects.models import Project
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.badges import badges_award
from sparecycles.volunteers.models import Team, Volunteer

from .averages import rac_update
from .models import CreditGrant, credit_micro_for_flops
from .notify import notify_credit_granted


def credit_grant(*, replica: Replica) -> CreditGrant | None:
    """Grant credit for one valid replica, at most once; None if already granted or not valid.

    Every valid replica of a work unit gets the same credit, from its app
    version's FLOPs estimate. Runs inside the caller's transaction (the
    transitioner's); the OneToOne on replica and the savepoint make a
    concurrent second grant fail harmlessly, and the totals are updated under
    row locks: the volunteer first (to learn its team), then project and team. Device
    rows are never touched here: a device's credit is summed from its grants, so no
    lock is taken on another device while its own result may be reporting.
    """
    if replica.validate_state != Replica.ValidateState.VALID or replica.volunteer_id is None:
        return None
    if CreditGrant.objects.filter(replica_id=replica.pk).exists():
        return None
    workunit = replica.workunit
    version = workunit.app_version
    amount = credit_micro_for_flops(version.flops_per_unit)
    now = timezone.now()
    try:
        with transaction.atomic():
            grant = CreditGrant.objects.create(
                replica=replica, workunit=workunit, project_id=version.app.project_id,
                volunteer_id=replica.volunteer_id, device_id=replica.device_id,
                amount_micro=amount, granted_at=now,
            )
    except IntegrityError:
        return None
    volunteer = Volunteer.objects.select_for_update().get(pk=replica.volunteer_id)
    started = replica.sent_at.timestamp() if replica.sent_at else None
    for model, pk in ((Project, version.app.project_id), (Team, volunteer.team_id),
                      (Volunteer, volunteer.pk)):
        if pk is not None:
            _add(model, pk, amount, now=now.timestamp(), start=started)
    badges_award(volunteer_id=volunteer.pk, now=now)
    transaction.on_commit(lambda: notify_credit_granted(
        volunteer_id=replica.volunteer_id, device_id=replica.device_id))
    return grant


def _add(model: type[Model], pk: int, amount_micro: int, *, now: float,
         start: float | None) -> None:
    row = model.objects.select_for_update().get(pk=pk)
    row.credit_micro += amount_micro
    row.rac = rac_update(rac=row.rac, rac_time=row.rac_time, credit=amount_micro / 1_000_000,
                         now=now, start=start)
    row.rac_time = now
    row.refresh_rac_key()
    row.save(update_fields=["credit_micro", "rac", "rac_time", "rac_key"])
