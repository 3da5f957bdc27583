"""Handing out tasks to many devices at once (BOINC's feeder and scheduler, batched).

The socket gathers `request` frames from every connection of a process
(gateway.batching) and serves them together: one transaction locks the
asking devices, reads their in-flight tasks and reliability rows, reads one
window of unsent replicas (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two
processes never fight over a row), checks which of those work units the
asking volunteers and networks already hold, and then decides in memory,
with BOINC's scheduler rules: runtime,
memory and phone fit, one replica of a work unit per volunteer and per
network, the daily quota, the wait before a tie-breaker goes to an untested
device, spot checks and adaptive replication, and pair diversity (work units whose
holders' volunteers or networks the asker's volunteer or network already met in
PAIR_MAX_MEETINGS units over PAIR_WINDOW_S go last). The claims go out in one
statement. A device the shared window could not serve gets a window of its
own, with its volunteer's and network's work units left out in SQL.
"""

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from sparecycles import events
from sparecycles.db.bulk import rows_update
from sparecycles.db.retry import deadlock_retry
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.volunteers.models import Device

from .models import HostAppVersion, Replica
from .reliability import host_quota_left, starting_quota
from .trust import trust


def max_inflight() -> int:
    """Tasks one device may hold at once (SPARECYCLES_MAX_INFLIGHT)."""
    return settings.SPARECYCLES["MAX_INFLIGHT"]


S, V = Replica.ServerState, Replica.ValidateState
# Adaptive replication also needs the volunteer's overall reputation (validation.reputation).
ADAPTIVE_MIN_REPUTATION = 0.8
CLAIM_FIELDS = ["server_state", "device", "volunteer", "network", "sent_at", "deadline", "solo"]


@dataclass(frozen=True)
class Ask:
    """One `request` frame: a device wants up to `slots` tasks."""

    device_id: int
    slots: int
    known_task_ids: frozenset[str] = frozenset()
    network: str = ""


@dataclass(frozen=True)
class Candidate:
    id: int
    workunit_id: int
    delay_bound: int
    version_id: int
    runtime: str
    app_id: int
    spot_rate: float
    adaptive: bool
    threshold: int
    min_memory_mb: int
    allow_mobile: bool
    retry: bool
    created_at: dt.datetime


def candidates_window(*, limit: int, volunteer_id: int | None = None, network: str = ""
                      ) -> list[Candidate]:
    """The first `limit` unsent replicas of open work, in id order (rows locked on PostgreSQL,
    skipping any another dispatch holds); without the work units `volunteer_id` or
    `network` already hold, if given."""
    rows = (
        Replica.objects.filter(server_state=S.UNSENT, workunit__state=WorkUnit.State.OPEN,
                               workunit__batch__state=Batch.State.OPEN)
        .annotate(retry=Exists(Replica.objects.filter(workunit_id=OuterRef("workunit_id"),
                                                      validate_state=V.INCONCLUSIVE)))
        .order_by("id")
        .values_list(
            "id", "workunit_id", "workunit__delay_bound", "workunit__app_version_id",
            "workunit__app_version__runtime", "workunit__app_version__app_id",
            "workunit__app_version__app__spot_check_rate",
            "workunit__app_version__app__adaptive_replication",
            "workunit__app_version__app__adaptive_threshold",
            "workunit__app_version__app__min_memory_mb",
            "workunit__app_version__app__allow_mobile", "retry", "created_at",
        )
    )
    if volunteer_id is not None:
        rows = rows.exclude(workunit_id__in=Replica.objects.filter(volunteer_id=volunteer_id)
                            .values("workunit_id"))
    if network:
        rows = rows.exclude(workunit_id__in=Replica.objects.filter(network=network)
                            .values("workunit_id"))
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(no_key=True, skip_locked=True, of=("self",))
    return [Candidate(*row) for row in rows[:limit]]


def _random_keys(rng: random.Random, n: int) -> memoryview:
    """`n` random 32-bit sort keys in one draw from `rng` (a SystemRandom makes one
    os.urandom call for all of them, instead of a system call per key)."""
    return memoryview(rng.getrandbits(32 * n).to_bytes(4 * n, "little") if n else b"").cast("I")


def claims_for(*, devices: dict[int, Device], wants: dict[int, int], networks: dict[int, str],
               rng: random.Random, alone: bool = False
               ) -> tuple[dict[int, list[int]], dict[int, int]]:
    """Claim up to wants[device] new replicas for each device. Returns the replica ids
    claimed per device, and what each device still wants (the window ran dry for it).
    `alone`: one device, whose window leaves out what its volunteer and network hold."""
    now = timezone.now()
    today = now.date()
    hosts = {(h.device_id, h.app_version_id): h for h in
             HostAppVersion.objects.select_for_update(no_key=True)
             .filter(device_id__in=list(wants)).order_by("pk")}
    limit = 4 * sum(wants.values()) + 16
    if alone:
        [device_id] = wants
        window = candidates_window(limit=limit, volunteer_id=devices[device_id].volunteer_id,
                                   network=networks[device_id])
    else:
        window = candidates_window(limit=limit)
    volunteers = {devices[d].volunteer_id for d in wants}
    nets = {networks[d] for d in wants} - {""}
    held = Q(volunteer_id__in=volunteers)
    if nets:
        held |= Q(network__in=nets)
    taken_by_volunteer, taken_by_network = set(), set()
    for workunit_id, volunteer_id, network in (
            Replica.objects.filter(held, workunit_id__in={c.workunit_id for c in window})
            .values_list("workunit_id", "volunteer_id", "network")):
        taken_by_volunteer.add((workunit_id, volunteer_id))
        if network:
            taken_by_network.add((workunit_id, network))

    # Validation's answers (scheduler.trust): device standings and spot checks.
    credibility = spot_checks_module = trust()
    standing = credibility.standings(wants)
    # Pair diversity, per volunteer and per network (a device is its volunteer's, so the
    # volunteer rule covers devices too): who holds each window work unit, and how often
    # the asking volunteers and networks already met them over the window.
    holders: dict[int, set[int]] = defaultdict(set)  # work unit -> volunteers holding one
    holder_nets: dict[int, set[str]] = defaultdict(set)  # work unit -> networks holding one
    for workunit_id, holder, net in (
            Replica.objects.filter(workunit_id__in={c.workunit_id for c in window},
                                   device_id__isnull=False, spot_check=False)
            .values_list("workunit_id", "volunteer_id", "network")):
        if holder is not None:
            holders[workunit_id].add(holder)
        if net:
            holder_nets[workunit_id].add(net)
    meetings = pair_meetings("volunteer_id", volunteers,
                             {v for h in holders.values() for v in h})
    net_meetings = pair_meetings("network", nets, {n for h in holder_nets.values() for n in h})
    pair_max = settings.SPARECYCLES["PAIR_MAX_MEETINGS"]

    # Spot checks of this transaction: pools read once, replicas written in one statement.
    spot_round = (credibility.spot_check_round(volunteers=volunteers, networks=nets)
                  if credibility.spot_check_round is not None else None)
    issue_spot = spot_round.issue if spot_round is not None else (
        spot_checks_module.spot_check_issue)
    retry_wait = dt.timedelta(seconds=settings.SPARECYCLES["RELIABLE_RETRY_WAIT_S"])
    used: set[int] = set()
    claims: list[tuple[int, int, dt.datetime, bool]] = []  # replica, device, deadline, solo
    spot_checks: dict[int, list[Replica]] = defaultdict(list)
    sent: dict[tuple[int, int], int] = defaultdict(int)
    short: dict[int, int] = {}
    for device_id, want in wants.items():
        device = devices[device_id]
        caps = device.capabilities or {}
        runtimes = {str(r) for r in caps.get("runtimes", ["pyodide"])}
        memory_mb, mobile = int(caps.get("memory_mb") or 0), bool(caps.get("mobile"))
        volunteer_id, network = device.volunteer_id, networks[device_id]
        recent = {v for (d, v), h in hosts.items()
                  if d == device_id and h.quota_day == today and h.jobs_today}
        picked = 0
        mine = standing.get(device_id)

        def crowded(c: Candidate, volunteer_id=volunteer_id, network=network) -> bool:
            """Would this pair a volunteer or network with one it already met too often?"""
            return (any(meetings.get((volunteer_id, other), 0) >= pair_max
                        for other in holders.get(c.workunit_id, ()))
                    or bool(network) and any(net_meetings.get((network, other), 0) >= pair_max
                                             for other in holder_nets.get(c.workunit_id, ())))

        # Versions it was sent today first (their code is loaded); among those, work units
        # whose holders it has not met too often, in random order: devices that ask
        # together are not paired again and again.
        # (The random keys come from one draw: SystemRandom reads the kernel once per call.)
        noise = _random_keys(rng, len(window))
        order = [c for _, c in sorted(zip(noise, window, strict=True), key=lambda kc: (
            kc[1].version_id not in recent, crowded(kc[1]), kc[0]))]
        for c in order:
            if picked == want:
                break
            if (c.id in used or (c.workunit_id, volunteer_id) in taken_by_volunteer
                    or (network and (c.workunit_id, network) in taken_by_network)
                    or c.runtime not in runtimes
                    or (memory_mb and c.min_memory_mb and c.min_memory_mb > memory_mb)
                    or (mobile and not c.allow_mobile)):
                continue
            host = hosts.get((device_id, c.version_id))
            if c.retry and not (mine and mine.established) and (
                    now - c.created_at < retry_wait):
                continue  # a tie-breaker waits a while for an established device
            left = host_quota_left(host, today=today) if host else starting_quota()
            if left - sent[(device_id, c.version_id)] <= 0:
                continue  # daily quota for this app version is spent
            rate = spot_checks_module.device_spot_check_rate(
                confirmed=mine.confirmed if mine else 0, app_rate=c.spot_rate)
            if rng.random() < rate:
                spot = issue_spot(device=device, app_id=c.app_id, rng=rng, network=network)
                if spot is not None:
                    spot_checks[device_id].append(spot)
                    taken_by_volunteer.add((spot.workunit_id, volunteer_id))
                    if network:
                        taken_by_network.add((spot.workunit_id, network))
                    sent[(device_id, c.version_id)] += 1
                    picked += 1
                    continue
            solo = bool(c.adaptive and host and host.consecutive_valid >= c.threshold
                        and device.volunteer.reputation >= ADAPTIVE_MIN_REPUTATION
                        and rng.random() < 1 - 1 / host.consecutive_valid)
            used.add(c.id)
            _meet(meetings, volunteer_id, holders[c.workunit_id])
            if network:
                _meet(net_meetings, network, holder_nets[c.workunit_id])
                holder_nets[c.workunit_id].add(network)
            if volunteer_id is not None:
                holders[c.workunit_id].add(volunteer_id)
            taken_by_volunteer.add((c.workunit_id, volunteer_id))
            if network:
                taken_by_network.add((c.workunit_id, network))
            claims.append((c.id, device_id, now + dt.timedelta(seconds=c.delay_bound), solo))
            sent[(device_id, c.version_id)] += 1
            picked += 1
        if picked < want and len(window) == limit and not alone:
            short[device_id] = want - picked

    if spot_round is not None:
        spot_round.save()  # a pick another process's device took meanwhile stays unsaved
    spot_ids = {device_id: [r.pk for r in spots if r.pk is not None]
                for device_id, spots in spot_checks.items()}
    claimed = _claims_write(claims, devices=devices, networks=networks, now=now)
    version_of = {c.id: c.version_id for c in window}
    for replica_id, device_id, _, solo in claims:
        if replica_id in claimed.get(device_id, ()) and solo:
            _go_solo(workunit_id=next(c.workunit_id for c in window if c.id == replica_id),
                     replica_id=replica_id)
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for device_id, ids in claimed.items():
        for replica_id in ids:
            counts[(device_id, version_of[replica_id])] += 1
    spot_versions = dict(Replica.objects.filter(
        pk__in=[pk for ids in spot_ids.values() for pk in ids]).values_list(
        "pk", "workunit__app_version_id")) if any(spot_ids.values()) else {}
    for device_id, ids in spot_ids.items():
        for replica_id in ids:
            counts[(device_id, spot_versions[replica_id])] += 1
        claimed.setdefault(device_id, []).extend(ids)
    hosts_sent(hosts, {k: n for k, n in counts.items() if n}, today=today)
    return claimed, short


def pair_meetings(field: str, mine: set, others: set) -> dict[tuple, int]:
    """How many work units each (asking, other) pair of volunteers (`field` "volunteer_id")
    or of networks ("network") shared over PAIR_WINDOW_S, spot checks left out. One query.
    Each work unit holds one replica per volunteer and per network (the constraints), so
    counting rows counts work units."""
    mine, others = {m for m in mine if m}, {o for o in others if o}
    if not mine or not others:
        return {}
    since = timezone.now() - dt.timedelta(seconds=settings.SPARECYCLES["PAIR_WINDOW_S"])
    other = f"workunit__replicas__{field}"
    rows = (Replica.objects.filter(**{f"{field}__in": mine, f"{other}__in": others},
                                   sent_at__gte=since, spot_check=False,
                                   workunit__replicas__spot_check=False)
            .values_list(field, other).annotate(n=Count("workunit_id", distinct=True))
            .order_by())
    return {(a, b): n for a, b, n in rows if a != b}


def _meet(meetings: dict[tuple, int], who, others) -> None:
    """`who` now shares one more work unit with each of `others` (both directions)."""
    for other in others:
        if other != who:
            meetings[(who, other)] = meetings.get((who, other), 0) + 1
            meetings[(other, who)] = meetings.get((other, who), 0) + 1


def _claims_write(claims, *, devices, networks, now) -> dict[int, list[int]]:
    """Mark the chosen replicas sent, in one statement; returns what each device got.

    The window's rows are this transaction's (locked on PostgreSQL; SQLite's write lock
    is held since BEGIN), so they are still unsent. A constraint refusal (two devices of
    one volunteer or network racing in two processes) sends the batch through one by
    one, skipping the refused rows."""
    if not claims:
        return {}
    rows = [Replica(pk=replica_id, server_state=S.IN_PROGRESS, device_id=device_id,
                    volunteer_id=devices[device_id].volunteer_id, network=networks[device_id],
                    sent_at=now, deadline=deadline, solo=solo)
            for replica_id, device_id, deadline, solo in claims]
    got: dict[int, list[int]] = defaultdict(list)
    try:
        with transaction.atomic():
            rows_update(Replica, rows, CLAIM_FIELDS)
    except IntegrityError:
        for row in rows:
            try:
                with transaction.atomic():
                    rows_update(Replica, [row], CLAIM_FIELDS)
            except IntegrityError:
                continue
            got[row.device_id].append(row.pk)
        return got
    for row in rows:
        got[row.device_id].append(row.pk)
    return got


def hosts_sent(hosts: dict[tuple[int, int], HostAppVersion], counts: dict[tuple[int, int], int],
               *, today) -> None:
    """Count tasks sent against each (device, app version)'s daily quota; `hosts` holds the
    rows already locked."""
    missing = [key for key in counts if key not in hosts]
    if missing:
        HostAppVersion.objects.bulk_create(
            [HostAppVersion(device_id=d, app_version_id=v, max_jobs_per_day=starting_quota())
             for d, v in sorted(missing)], ignore_conflicts=True)
        for h in (HostAppVersion.objects.select_for_update(no_key=True).order_by("pk")
                  .filter(device_id__in={d for d, _ in missing},
                          app_version_id__in={v for _, v in missing})):
            hosts[(h.device_id, h.app_version_id)] = h
    rows = []
    for key, n in counts.items():
        host = hosts[key]
        if host.quota_day != today:
            host.quota_day, host.jobs_today = today, 0
        host.jobs_today += n
        rows.append(host)
    rows_update(HostAppVersion, rows, ["quota_day", "jobs_today"])


@dataclass(frozen=True)
class Dispatch:
    replicas: list[Replica]
    retry_after_s: int


def tasks_dispatch_many(asks: list[Ask], *, rng: random.Random) -> list[Dispatch]:
    """Serve many devices' requests in one transaction; one Dispatch per ask, in order.

    Each device gets up to `slots` tasks, never more than max_inflight in flight.
    In-flight tasks the client does not hold on this connection (`known_task_ids`),
    e.g. after a page reload, are sent again first: a device that reconnects with
    its token keeps its tasks. A device may ask only once per batch.
    """
    device_ids = [ask.device_id for ask in asks]
    if len(set(device_ids)) != len(device_ids):
        raise ValueError("one ask per device in a batch")
    chosen = deadlock_retry(lambda: _choose(asks, rng=rng),
                            what=f"dispatching to {len(asks)} devices")
    replicas: dict[int, list[Replica]] = defaultdict(list)
    for replica in (Replica.objects.filter(pk__in=[pk for ids in chosen.values() for pk in ids])
                    .select_related("workunit__app_version__app__project").order_by("id")):
        replicas[replica.device_id].append(replica)
    # Owners' batch pages show the tasks out (coalesced: a dict update per call).
    events.progress_changed(batch_ids={r.workunit.batch_id for rs in replicas.values()
                                       for r in rs})
    retry = settings.SPARECYCLES["RETRY_AFTER_S"]
    return [Dispatch(replicas=replicas[ask.device_id],
                     retry_after_s=0 if replicas[ask.device_id] or ask.slots == 0 else retry)
            for ask in asks]


def _choose(asks: list[Ask], *, rng: random.Random) -> dict[int, list[int]]:
    """The transaction of tasks_dispatch_many: the replica ids each device gets."""

    device_ids = [ask.device_id for ask in asks]
    chosen: dict[int, list[int]] = {}
    with transaction.atomic():
        # One dispatch per device at a time: the device rows are locked first.
        devices = {d.pk: d for d in Device.objects.select_for_update(no_key=True, of=("self",))
                   .select_related("volunteer").filter(pk__in=device_ids).order_by("pk")}
        inflight: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for pk, device_id, task_id in (
                Replica.objects.filter(device_id__in=device_ids, server_state=S.IN_PROGRESS)
                .order_by("id").values_list("pk", "device_id", "task_id")):
            inflight[device_id].append((pk, task_id))
        wants, networks = {}, {}
        for ask in asks:
            device = devices.get(ask.device_id)
            if device is None:
                chosen[ask.device_id] = []
                continue
            mine = inflight[device.pk]
            chosen[device.pk] = [pk for pk, task_id in mine
                                 if task_id not in ask.known_task_ids][:ask.slots]
            want = min(ask.slots - len(chosen[device.pk]), max_inflight() - len(mine))
            if want <= 0:
                continue
            if device.quarantined:
                chosen[device.pk] += _spot_checks_only(device=device, want=want, rng=rng,
                                                       network=ask.network)
            else:
                wants[device.pk], networks[device.pk] = want, ask.network
        if wants:
            claimed, short = claims_for(devices=devices, wants=wants, networks=networks,
                                        rng=rng)
            for device_id, ids in claimed.items():
                chosen[device_id] += ids
            for device_id, want in short.items():  # the shared window ran dry for it
                more, _ = claims_for(devices=devices, wants={device_id: want},
                                     networks=networks, rng=rng, alone=True)
                chosen[device_id] += more.get(device_id, [])
    return chosen


def _go_solo(*, workunit_id: int, replica_id: int) -> None:
    """The first replica went to a trusted device alone: withdraw the unsent others.

    Only when no other replica was ever sent; if the solo one fails, the
    transitioner replicates the work unit as usual.
    """
    others = Replica.objects.filter(workunit_id=workunit_id).exclude(pk=replica_id)
    if others.exclude(server_state=S.UNSENT).exists():
        Replica.objects.filter(pk=replica_id).update(solo=False)
        return
    others.delete()


def _spot_checks_only(*, device: Device, want: int, rng: random.Random, network: str = ""
                      ) -> list[int]:
    """A quarantined device gets known-answer tasks and nothing else."""
    spot_checks = trust()
    runtimes = [str(r) for r in (device.capabilities or {}).get("runtimes", ["pyodide"])]
    apps = spot_checks.spot_check_apps(device=device, runtimes=runtimes)
    rng.shuffle(apps)
    issued = []
    for app_id in apps:
        if len(issued) == want:
            break
        spot = spot_checks.spot_check_issue(device=device, app_id=app_id, rng=rng,
                                            network=network)
        if spot is not None:
            issued.append(spot.pk)
    return issued
