"""Known-answer tasks (Sarmenta's spot checks) and the quarantine of devices that fail them.

A spot check is a fresh replica of a work unit whose answer is known
(WorkUnit.known_output). To the client it is an ordinary task of the same app.
"""

import datetime as dt
import random

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device

S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState


def spot_check_issue(*, device: Device, app_id: int, rng: random.Random) -> Replica | None:
    """Send `device` a known-answer task of app `app_id` its volunteer has not seen, if any."""
    mine = Replica.objects.filter(volunteer_id=device.volunteer_id).values("workunit_id")
    pool = list(
        WorkUnit.objects.filter(known_output__isnull=False, app_version__app_id=app_id)
        .exclude(pk__in=mine)
        .values_list("pk", "delay_bound")[:200]
    )
    rng.shuffle(pool)
    now = timezone.now()
    for workunit_id, delay_bound in pool[:5]:
        try:
            with transaction.atomic():
                return Replica.objects.create(
                    workunit_id=workunit_id, device=device, volunteer_id=device.volunteer_id,
                    server_state=S.IN_PROGRESS, sent_at=now,
                    deadline=now + dt.timedelta(seconds=delay_bound),
                )
        except IntegrityError:  # another device of this volunteer just took it
            continue
    return None


def spot_check_apps(*, device: Device, runtimes: list[str]) -> list[int]:
    """Apps with known-answer tasks this device could be sent."""
    return list(
        WorkUnit.objects.filter(known_output__isnull=False, app_version__runtime__in=runtimes)
        .values_list("app_version__app_id", flat=True).distinct()
    )


def device_spot_check_passed(*, device_id: int) -> None:
    needed = settings.SPARECYCLES["QUARANTINE_RELEASE_PASSES"]
    Device.objects.filter(pk=device_id, quarantined=True).update(
        quarantine_passes=F("quarantine_passes") + 1)
    Device.objects.filter(pk=device_id, quarantined=True, quarantine_passes__gte=needed).update(
        quarantined=False, quarantine_passes=0)


def device_quarantine(*, device_id: int) -> list[int]:
    """Distrust a device that gave a wrong known answer.

    Its pending results in open work units are marked invalid; returns those
    work units, which the caller sends back to validation after commit.
    """
    Device.objects.filter(pk=device_id).update(quarantined=True, quarantine_passes=0)
    pending = Replica.objects.filter(
        device_id=device_id,
        outcome=O.SUCCESS,
        validate_state__in=[V.INIT, V.INCONCLUSIVE],
        workunit__state=WorkUnit.State.OPEN,
        workunit__known_output__isnull=True,
    )
    workunit_ids = sorted(set(pending.values_list("workunit_id", flat=True)))
    pending.update(validate_state=V.INVALID)
    return workunit_ids
