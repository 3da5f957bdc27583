"""Known-answer tasks (Sarmenta's spot checks), automatic and at no cost to the owner.

A spot check is a fresh replica (a new task id, a normal deadline) of a work unit
whose answer is known: an owner's known-answer work unit (WorkUnit.known_output), or
— on by default — a work unit already validated at quorum 2 or more, whose canonical
output is the answer. To the client it is an ordinary task of the same app. A
device gets a share of them that is high while it is new and falls as its
credibility grows (validation.policy.spot_check_rate); a quarantined device gets
nothing else.
"""

import datetime as dt
import random

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device

from .policy import spot_check_rate

S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState
POOL = 200  # candidate known answers looked at per spot check


def device_spot_check_rate(*, confirmed: int, app_rate: float = 0.0) -> float:
    options = settings.SPARECYCLES
    return spot_check_rate(confirmed=confirmed, new_rate=options["SPOT_CHECK_NEW"],
                           floor=options["SPOT_CHECK_MIN"], app_rate=app_rate)


def _known_answers(app_id: int | None = None, runtimes: list[str] | None = None):
    """Work units whose answer is known: the owner's, or validated by a real quorum."""
    known = Q(known_output__isnull=False) | Q(
        state=WorkUnit.State.COMPLETED, min_quorum__gte=2, canonical_output__isnull=False,
        revalidated_at__isnull=True)
    units = WorkUnit.objects.filter(known)
    if app_id is not None:
        units = units.filter(app_version__app_id=app_id)
    if runtimes is not None:
        units = units.filter(app_version__runtime__in=runtimes)
    return units


def spot_check_issue(*, device: Device, app_id: int, rng: random.Random,
                     network: str = "") -> Replica | None:
    """Send `device` a known-answer task of app `app_id` its volunteer (and network) has
    not seen, if any: owners' known answers first, then validated work."""
    mine = Replica.objects.filter(volunteer_id=device.volunteer_id).values("workunit_id")
    pool = []
    for owners in (True, False):
        units = _known_answers(app_id).filter(known_output__isnull=not owners)
        units = units.exclude(pk__in=mine)
        if network:
            units = units.exclude(pk__in=Replica.objects.filter(network=network)
                                  .values("workunit_id"))
        # Newest validated work first: it is the least likely to be public yet.
        pool = list(units.order_by("-pk").values_list("pk", "delay_bound")[:POOL])
        if pool:
            break
    rng.shuffle(pool)
    now = timezone.now()
    for workunit_id, delay_bound in pool[:5]:
        try:
            with transaction.atomic():
                return Replica.objects.create(
                    workunit_id=workunit_id, device=device, volunteer_id=device.volunteer_id,
                    network=network, server_state=S.IN_PROGRESS, sent_at=now,
                    deadline=now + dt.timedelta(seconds=delay_bound), spot_check=True,
                )
        except IntegrityError:  # another device of this volunteer or network just took it
            continue
    return None


def spot_check_apps(*, device: Device, runtimes: list[str]) -> list[int]:
    """Apps with known-answer tasks this device could be sent."""
    return list(_known_answers(runtimes=runtimes).order_by()
                .values_list("app_version__app_id", flat=True).distinct())


# Kept for callers of the old single-device API: validation.services does this in bulk.
def device_spot_check_passed(*, device_id: int) -> None:
    from .services import devices_spot_check_passed

    devices_spot_check_passed(device_ids=[device_id])


def device_quarantine(*, device_id: int) -> list[int]:
    from .services import devices_quarantine

    return devices_quarantine(device_ids=[device_id], reason="quarantined by an operator")
