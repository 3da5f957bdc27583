"""Writes on the scheduler's hot path: handing out tasks.

Taking a result back and validating it is validation.services.replica_report (validation
sits above the scheduler); the socket batches the same steps (gateway.batching).
"""

import datetime as dt
import ipaddress
import logging
import random
from typing import Any

from django.conf import settings

from sparecycles.volunteers.models import Device

from .dispatch import Ask, Dispatch, max_inflight, tasks_dispatch_many  # noqa: F401 (max_inflight: part of this module's API)
from .models import Replica

logger = logging.getLogger(__name__)

_rng = random.SystemRandom()
# Adaptive replication also needs the volunteer's overall reputation (validation.reputation).


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
        "about": task_about(version.app),
    }


ABOUT_DESCRIPTION_CHARS = 240


def task_about(app) -> dict[str, Any]:
    """What a person sees of a task: the project's and the app's titles, one line of
    description and the public project page. An optional field of the `tasks` frame
    (protocol v1 allows new optional fields): older clients ignore it."""
    project = app.project
    text = " ".join((app.description or project.description or "").split())
    if len(text) > ABOUT_DESCRIPTION_CHARS:
        text = text[:ABOUT_DESCRIPTION_CHARS - 1].rstrip() + "…"
    return {
        "project": {"title": project.title,
                    "url": f"/projects/{project.slug}/" if project.is_public else None},
        "app": {"title": app.title or app.name},
        "description": text,
    }


def replicas_move(*, source_id: int, target_id: int) -> int:
    """Give one volunteer's replicas to another (a claimed device's volunteer is folded into
    the account's), except where both had one of the same work unit: that one stays with
    the source as history, so no work unit ends up twice with the same volunteer."""
    both = Replica.objects.filter(volunteer_id=target_id).values("workunit_id")
    return (Replica.objects.filter(volunteer_id=source_id).exclude(workunit_id__in=both)
            .update(volunteer_id=target_id))
