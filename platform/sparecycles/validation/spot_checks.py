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


def _newest(app_id: int, *, owners: bool, exclude=()) -> list[tuple[int, int]]:
    """(work unit, delay bound) of the newest POOL known answers of app `app_id`: the
    owners' or validated work (the newest is the least likely to be public yet), leaving
    out the work units of each queryset in `exclude`."""
    units = _known_answers(app_id).filter(known_output__isnull=not owners)
    for held in exclude:
        units = units.exclude(pk__in=held)
    return list(units.order_by("-pk").values_list("pk", "delay_bound")[:POOL])


def _pool(*, volunteer_id: int | None, app_id: int, network: str) -> list[tuple[int, int]]:
    """(work unit, delay bound) of up to POOL known answers of app `app_id` that volunteer
    `volunteer_id` and `network` hold no replica of: owners' known answers if any, else
    validated work, newest first."""
    held = [Replica.objects.filter(volunteer_id=volunteer_id).values("workunit_id")]
    if network:
        held.append(Replica.objects.filter(network=network).values("workunit_id"))
    pool = []
    for owners in (True, False):
        pool = _newest(app_id, owners=owners, exclude=held)
        if pool:
            break
    return pool


def _new_replica(*, device: Device, workunit_id: int, delay_bound: int, network: str,
                 now) -> Replica:
    return Replica(workunit_id=workunit_id, device=device, volunteer_id=device.volunteer_id,
                   network=network, server_state=S.IN_PROGRESS, sent_at=now,
                   deadline=now + dt.timedelta(seconds=delay_bound), spot_check=True)


def spot_check_issue(*, device: Device, app_id: int, rng: random.Random,
                     network: str = "") -> Replica | None:
    """Send `device` a known-answer task of app `app_id` its volunteer (and network) has
    not seen, if any: owners' known answers first, then validated work."""
    pool = _pool(volunteer_id=device.volunteer_id, app_id=app_id, network=network)
    rng.shuffle(pool)
    now = timezone.now()
    for workunit_id, delay_bound in pool[:5]:
        try:
            with transaction.atomic():
                replica = _new_replica(device=device, workunit_id=workunit_id,
                                       delay_bound=delay_bound, network=network, now=now)
                replica.save(force_insert=True)
                return replica
        except IntegrityError:  # another device of this volunteer or network just took it
            continue
    return None


class SpotCheckRound:
    """The spot checks of one dispatch transaction, issued together.

    spot_check_issue costs two pool queries (each walks the work-unit table), a savepoint
    and an insert per known-answer task, and half the tasks of a new device are spot
    checks: it was the largest query source per result. A round reads each app's pools
    once (owners' known answers, then validated work, each the newest POOL), which of
    those work units the asking volunteers and networks hold in one more query, picks in
    memory, and writes every pick in one statement (save()). The choice is the same as
    spot_check_issue's: a work unit the device's volunteer and network hold no replica of,
    owners' first; where the shared pool is used up for one device (it holds all of the
    newest POOL) that device's pool is read as spot_check_issue reads it.
    """

    def __init__(self, *, volunteers: set[int], networks: set[str]) -> None:
        self.volunteers = {v for v in volunteers if v is not None}
        self.networks = {n for n in networks if n}
        # app -> [(owners' rows, complete?), (validated rows, complete?)], read lazily
        self.pools: dict[int, list[tuple[list[tuple[int, int]], bool]]] = {}
        self.held_by_volunteer: set[tuple[int, int]] = set()
        self.held_by_network: set[tuple[int, str]] = set()
        self.picked: list[Replica] = []
        self.now = timezone.now()

    def _kind(self, app_id: int, index: int) -> tuple[list[tuple[int, int]], bool]:
        kinds = self.pools.setdefault(app_id, [])
        while len(kinds) <= index:
            rows = _newest(app_id, owners=len(kinds) == 0)
            self._held([pk for pk, _ in rows])
            kinds.append((rows, len(rows) < POOL))
        return kinds[index]

    def _held(self, workunit_ids: list[int]) -> None:
        if not workunit_ids or not (self.volunteers or self.networks):
            return
        who = Q(volunteer_id__in=self.volunteers)
        if self.networks:
            who |= Q(network__in=self.networks)
        for workunit_id, volunteer_id, network in (
                Replica.objects.filter(who, workunit_id__in=workunit_ids)
                .values_list("workunit_id", "volunteer_id", "network")):
            self.held_by_volunteer.add((workunit_id, volunteer_id))
            if network:
                self.held_by_network.add((workunit_id, network))

    def issue(self, *, device: Device, app_id: int, rng: random.Random,
              network: str = "") -> Replica | None:
        """A known-answer task for `device` (not saved yet: save() writes the round's)."""
        volunteer_id = device.volunteer_id

        def free(rows: list[tuple[int, int]]) -> list[tuple[int, int]]:
            """The rows this device's volunteer and network hold nothing of (this round's
            picks included)."""
            return [(pk, bound) for pk, bound in rows
                    if (pk, volunteer_id) not in self.held_by_volunteer
                    and not (network and (pk, network) in self.held_by_network)]

        if volunteer_id not in self.volunteers or (network and network not in self.networks):
            pool = None  # not an asker this round was made for: its own pool
        else:
            pool = []
            for index in (0, 1):
                rows, complete = self._kind(app_id, index)
                pool = free(rows)
                if pool:
                    break
                if not complete:
                    pool = None  # this device holds all of the newest POOL: look further
                    break
        if pool is None:
            pool = free(_pool(volunteer_id=volunteer_id, app_id=app_id, network=network))
        if not pool:
            return None
        workunit_id, delay_bound = rng.choice(pool)
        self.held_by_volunteer.add((workunit_id, volunteer_id))
        if network:
            self.held_by_network.add((workunit_id, network))
        replica = _new_replica(device=device, workunit_id=workunit_id, delay_bound=delay_bound,
                               network=network, now=self.now)
        self.picked.append(replica)
        return replica

    def save(self) -> list[Replica]:
        """Write the round's picks in one statement; the ones saved (all, unless another
        process's device of the same volunteer or network took a work unit meanwhile)."""
        if not self.picked:
            return []
        try:
            with transaction.atomic():
                saved = Replica.objects.bulk_create(self.picked)
            if all(r.pk is not None for r in saved):
                return saved
            ids = dict(Replica.objects.filter(task_id__in=[r.task_id for r in saved])
                       .values_list("task_id", "pk"))
            for replica in saved:
                replica.pk = ids[replica.task_id]
            return saved
        except IntegrityError:
            saved = []
            for replica in self.picked:
                try:
                    with transaction.atomic():
                        replica.save(force_insert=True)
                except IntegrityError:
                    replica.pk = None
                    continue
                saved.append(replica)
            return saved


def spot_check_round(*, volunteers: set[int], networks: set[str]) -> SpotCheckRound:
    return SpotCheckRound(volunteers=volunteers, networks=networks)


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
