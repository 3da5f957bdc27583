"""The one place credit changes."""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device, Volunteer

from .models import CreditGrant, credit_micro_for_flops


def credit_grant(*, replica: Replica) -> CreditGrant | None:
    """Grant credit for one valid replica, at most once; None if already granted or not valid.

    Runs inside the caller's transaction (the transitioner's); the OneToOne on
    replica and the savepoint make a concurrent second grant fail harmlessly.
    """
    if replica.validate_state != Replica.ValidateState.VALID or replica.volunteer_id is None:
        return None
    if CreditGrant.objects.filter(replica=replica).exists():
        return None
    workunit = replica.workunit
    version = workunit.app_version
    amount = credit_micro_for_flops(version.flops_per_unit)
    try:
        with transaction.atomic():
            grant = CreditGrant.objects.create(
                replica=replica, workunit=workunit, project_id=version.app.project_id,
                volunteer_id=replica.volunteer_id, device_id=replica.device_id,
                amount_micro=amount, granted_at=timezone.now(),
            )
    except IntegrityError:
        return None
    Volunteer.objects.filter(pk=replica.volunteer_id).update(
        credit_micro=F("credit_micro") + amount)
    if replica.device_id:
        Device.objects.filter(pk=replica.device_id).update(credit_micro=F("credit_micro") + amount)
    return grant
