"""Writes on the scheduler's hot path: handing out tasks and taking results back."""

import dataclasses
import datetime as dt
import ipaddress
import logging
import random
from typing import Any

from django.conf import settings

from sparecycles.validation.services import transition_announce as _announce  # noqa: F401
from sparecycles.validation.services import workunits_validate
from sparecycles.volunteers.models import Device

from .dispatch import Ask, Dispatch, tasks_dispatch_many
from .intake import Ack, Report, results_store
from .models import Replica

logger = logging.getLogger(__name__)

_rng = random.SystemRandom()
# Adaptive replication also needs the volunteer's overall reputation (validation.reputation).


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


def workunit_revalidate(*, workunit_id: int) -> None:
    """Run validation again on one work unit, in its own transaction."""
    workunits_validate(workunit_ids=[workunit_id])


def replicas_move(*, source_id: int, target_id: int) -> int:
    """Give one volunteer's replicas to another (a claimed device's volunteer is folded into
    the account's), except where both had one of the same work unit: that one stays with
    the source as history, so no work unit ends up twice with the same volunteer."""
    both = Replica.objects.filter(volunteer_id=target_id).values("workunit_id")
    return (Replica.objects.filter(volunteer_id=source_id).exclude(workunit_id__in=both)
            .update(volunteer_id=target_id))
