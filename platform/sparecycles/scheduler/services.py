"""Writes on the scheduler's hot path: handing out tasks and taking results back."""

import dataclasses
import datetime as dt
import ipaddress
import logging
import random
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from sparecycles.db.retry import deadlock_retry
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.volunteers.models import Device

from .dispatch import Ask, Dispatch, tasks_dispatch_many
from .intake import Ack, Report, results_store
from .models import HostAppVersion, Replica
from .notify import notify_cancelled
from .reliability import host_quota_left, host_record_sent, starting_quota
from .spot_checks import spot_check_apps, spot_check_issue
from .transitioner import Transition, workunits_transition

logger = logging.getLogger(__name__)

S, O, V = Replica.ServerState, Replica.Outcome, Replica.ValidateState

_rng = random.SystemRandom()
# Adaptive replication also needs the volunteer's overall reputation (volunteers.reputation).
ADAPTIVE_MIN_REPUTATION = 0.8


def max_inflight() -> int:
    return settings.SPARECYCLES["MAX_INFLIGHT"]


def network_of(address: str | None) -> str:
    """The network a client address counts as for the distinct-networks rule ("" if off)."""
    if not address or not settings.SPARECYCLES["DISTINCT_NETWORKS"]:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if ip.is_loopback:
        # Local swarms and tests. Behind a proxy, daphne's --proxy-headers gives real addresses.
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def tasks_dispatch(*, device: Device, slots: int, known_task_ids: frozenset[str] = frozenset(),
                   network: str = "", rng: random.Random = _rng) -> Dispatch:
    """Give `device` up to `slots` tasks, never more than max_inflight in flight.

    The volunteer socket batches requests across connections (dispatch.tasks_dispatch_many);
    this is one request alone. `network` (see network_of) keeps replicas of one work unit
    on distinct networks.
    """
    [dispatch] = tasks_dispatch_many(
        [Ask(device_id=device.pk, slots=slots, known_task_ids=known_task_ids, network=network)],
        rng=rng)
    return dispatch


def _capabilities(device: Device) -> tuple[list[str], int, bool]:
    caps = device.capabilities or {}
    runtimes = [str(r) for r in caps.get("runtimes", ["pyodide"])]
    return runtimes, int(caps.get("memory_mb") or 0), bool(caps.get("mobile"))


def _claim_new(*, device: Device, want: int, network: str, rng: random.Random) -> list[int]:
    runtimes, memory_mb, mobile = _capabilities(device)
    now = timezone.now()
    today = now.date()
    hosts = {h.app_version_id: h for h in HostAppVersion.objects.filter(device=device)}
    recent_versions = list(
        Replica.objects.filter(device=device).order_by("-id")
        .values_list("workunit__app_version_id", flat=True)[:5]
    )
    mine = Replica.objects.filter(volunteer_id=device.volunteer_id).values("workunit_id")
    candidates = (
        Replica.objects.filter(
            server_state=S.UNSENT,
            workunit__state=WorkUnit.State.OPEN,
            workunit__batch__state=Batch.State.OPEN,
            workunit__app_version__runtime__in=runtimes,
        )
        .exclude(workunit_id__in=mine)
        .annotate(retry=Exists(Replica.objects.filter(workunit_id=OuterRef("workunit_id"),
                                                      validate_state=V.INCONCLUSIVE)))
        .order_by("id")
        .values_list(
            "id", "workunit_id", "workunit__delay_bound", "workunit__app_version_id",
            "workunit__app_version__app_id", "workunit__app_version__app__spot_check_rate",
            "workunit__app_version__app__adaptive_replication",
            "workunit__app_version__app__adaptive_threshold", "retry", "created_at",
        )
    )
    if connection.features.has_select_for_update_skip_locked:
        # Rows another dispatch or a validation holds are skipped, never waited for.
        candidates = candidates.select_for_update(no_key=True, skip_locked=True, of=("self",))
    if network:
        candidates = candidates.exclude(
            workunit_id__in=Replica.objects.filter(network=network).values("workunit_id"))
    if memory_mb:
        candidates = candidates.filter(
            Q(workunit__app_version__app__min_memory_mb=0)
            | Q(workunit__app_version__app__min_memory_mb__lte=memory_mb))
    if mobile:
        candidates = candidates.filter(workunit__app_version__app__allow_mobile=True)

    claimed: list[int] = []
    plain: dict[int, list[int]] = {}  # delay_bound -> replica ids to claim in one UPDATE
    seen_workunits: set[int] = set()
    sent_per_version: dict[int, int] = {}
    version_of: dict[int, int] = {}
    retry_wait = dt.timedelta(seconds=settings.SPARECYCLES["RELIABLE_RETRY_WAIT_S"])
    claim = {"server_state": S.IN_PROGRESS, "device": device, "sent_at": now,
             "volunteer_id": device.volunteer_id, "network": network}
    picked = 0
    # The app versions this device ran lately come first (their code is loaded), then the
    # rest; each in id order, which the partial index on unsent replicas serves directly.
    limit = want * 4
    rows = list(candidates.filter(workunit__app_version_id__in=recent_versions)[:limit]
                ) if recent_versions else []
    if len(rows) < limit:
        rows += candidates.exclude(workunit__app_version_id__in=recent_versions)[:limit - len(rows)]
    for (replica_id, workunit_id, delay_bound, version_id, app_id, spot_rate, adaptive,
         threshold, retry, created_at) in rows:
        if picked == want:
            break
        if workunit_id in seen_workunits:
            continue
        host = hosts.get(version_id)
        if retry and (host is None or host.consecutive_valid == 0) and now - created_at < retry_wait:
            # BOINC sends retries to reliable hosts: a tie-breaker for an inconclusive work
            # unit waits a while for a device with a valid result behind it.
            continue
        used = sent_per_version.get(version_id, 0)
        left = host_quota_left(host, today=today) if host else starting_quota()
        if left - used <= 0:
            continue  # daily quota for this app version is spent
        if spot_rate and rng.random() < spot_rate:
            spot = spot_check_issue(device=device, app_id=app_id, rng=rng)
            if spot is not None:
                claimed.append(spot.pk)
                picked += 1
                sent_per_version[version_id] = used + 1
                continue
        solo = bool(adaptive and host and host.consecutive_valid >= threshold
                    and device.volunteer.reputation >= ADAPTIVE_MIN_REPUTATION
                    and rng.random() < 1 - 1 / host.consecutive_valid)
        seen_workunits.add(workunit_id)
        sent_per_version[version_id] = used + 1
        version_of[replica_id] = version_id
        picked += 1
        deadline = now + dt.timedelta(seconds=delay_bound)
        if not solo:
            plain.setdefault(delay_bound, []).append(replica_id)
            continue
        with transaction.atomic():
            if Replica.objects.filter(pk=replica_id, server_state=S.UNSENT).update(
                    **claim, deadline=deadline, solo=True):
                _go_solo(workunit_id=workunit_id, replica_id=replica_id)
                claimed.append(replica_id)
    for delay_bound, ids in plain.items():
        claimed += _claim_many(ids, claim={**claim, "deadline": now + dt.timedelta(
            seconds=delay_bound)})
    # Count what was really sent (a lost race sends less than was picked).
    sent: dict[int, int] = {}
    for replica_id in claimed:
        version_id = version_of.get(replica_id)
        if version_id is None:  # a spot check: look its version up
            version_id = Replica.objects.filter(pk=replica_id).values_list(
                "workunit__app_version_id", flat=True).get()
        sent[version_id] = sent.get(version_id, 0) + 1
    for version_id, count in sent.items():
        host_record_sent(device_id=device.pk, app_version_id=version_id, count=count)
    return claimed


def _claim_many(ids: list[int], *, claim: dict) -> list[int]:
    """Claim unsent replicas in one UPDATE; fall back to one by one if a constraint objects.

    The UPDATE re-checks server_state, so a replica another device took meanwhile is
    skipped; the distinct-volunteer and distinct-network constraints can still refuse
    a row (a race between two devices of one volunteer or network).
    """
    try:
        with transaction.atomic():
            Replica.objects.filter(pk__in=ids, server_state=S.UNSENT).update(**claim)
    except IntegrityError:
        for replica_id in ids:
            try:
                with transaction.atomic():
                    Replica.objects.filter(pk=replica_id, server_state=S.UNSENT).update(**claim)
            except IntegrityError:
                continue
    return list(Replica.objects.filter(pk__in=ids, device=claim["device"],
                                       sent_at=claim["sent_at"]).values_list("pk", flat=True))


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


def _spot_checks_only(*, device: Device, want: int, rng: random.Random) -> list[int]:
    runtimes, _, _ = _capabilities(device)
    apps = spot_check_apps(device=device, runtimes=runtimes)
    rng.shuffle(apps)
    issued = []
    for app_id in apps:
        if len(issued) == want:
            break
        spot = spot_check_issue(device=device, app_id=app_id, rng=rng)
        if spot is not None:
            issued.append(spot.pk)
    return issued


def task_payload(replica: Replica) -> dict[str, Any]:
    version = replica.workunit.app_version
    return {
        "task_id": replica.task_id,
        "deadline": replica.deadline.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "app": {
            "name": version.app.name,
            "version": version.number,
            "runtime": version.runtime,
            "code_url": version.code_url,
            "sha256": version.sha256,
            "entry": version.entry,
            "packages": list(version.packages),
        },
        "input": replica.workunit.input,
    }


def replica_report(*, device: Device, task_id: str, ok: bool, output: Any = None,
                   error: str = "", elapsed_ms: int | None = None) -> Ack:
    """Store one reported result durably, then validate its work unit.

    The volunteer socket batches these steps across connections (gateway.batching);
    this is the same path for one result, used by scripts and tests. `accepted=True`
    means the result is safe; a result reported twice is acknowledged as a duplicate.
    """
    stored = results_store([Report(device_id=device.pk, task_id=task_id, ok=ok, output=output,
                                   error=error, elapsed_ms=elapsed_ms)])
    [ack] = stored.acks
    if not stored.workunit_ids:
        return ack
    transition = workunits_validate(workunit_ids=stored.workunit_ids)
    return dataclasses.replace(ack, cancelled=transition.cancelled)


def workunits_validate(*, workunit_ids) -> Transition:
    """Run the transitioner over these work units in one transaction, and announce.

    A deadlock the database broke is retried; if it persists the work units stay
    pending for the housekeeping sweep.
    """
    def run() -> Transition:
        with transaction.atomic():
            transition = workunits_transition(workunit_ids)
            transaction.on_commit(lambda: _announce(transition))
        return transition

    return deadlock_retry(run, what=f"validating {len(workunit_ids)} work units")


def _announce(transition) -> None:
    notify_cancelled(transition.cancelled)
    for workunit_id in transition.revalidate:
        workunit_revalidate(workunit_id=workunit_id)


def workunit_revalidate(*, workunit_id: int) -> None:
    """Run the transitioner again on one work unit, in its own transaction."""
    workunits_validate(workunit_ids=[workunit_id])
