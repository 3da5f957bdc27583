"""Sybil resistance: many devices on one network are one voice; new devices ramp up."""

import pytest

from sparecycles.scheduler.models import HostAppVersion
from sparecycles.scheduler.services import network_of, tasks_dispatch
from sparecycles.validation.services import replica_report

pytestmark = pytest.mark.django_db


def test_network_of_groups_addresses(settings):
    assert network_of("203.0.113.7") == network_of("203.0.113.200") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of("127.0.0.1") == ""  # local swarms and tests
    assert network_of("not an address") == ""
    settings.SPARECYCLES = {**settings.SPARECYCLES, "DISTINCT_NETWORKS": False}
    assert network_of("203.0.113.7") == ""


def test_devices_on_one_network_never_share_a_workunit(make_batch, make_device):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    net = network_of("198.51.100.10")
    first = tasks_dispatch(device=make_device().device, slots=1, network=net)
    sybil = tasks_dispatch(device=make_device().device, slots=1, network=net)
    assert len(first.replicas) == 1 and sybil.replicas == []
    other = tasks_dispatch(device=make_device().device, slots=1,
                           network=network_of("192.0.2.1"))
    assert len(other.replicas) == 1


def test_new_devices_start_with_a_small_quota_that_valid_results_double(make_batch,
                                                                        make_device, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "DAILY_QUOTA_START": 2, "DAILY_QUOTA": 50}
    make_batch(count=10)
    device = make_device().device
    for _ in range(2):
        replica = tasks_dispatch(device=device, slots=1).replicas[0]
        replica_report(device=device, task_id=replica.task_id, ok=True, output={"x": 1})
    host = HostAppVersion.objects.get(device=device)
    assert host.max_jobs_per_day == 8 and host.jobs_today == 2
    fresh = make_device().device
    assert len(tasks_dispatch(device=fresh, slots=4).replicas) == 2  # the ramp
