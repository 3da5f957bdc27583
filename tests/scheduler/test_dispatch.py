"""Serving many devices' requests in one transaction (scheduler.dispatch)."""

import random

import pytest

from sparecycles.scheduler import dispatch as dispatch_module
from sparecycles.scheduler.dispatch import Ask, tasks_dispatch_many
from sparecycles.scheduler.models import HostAppVersion, Replica
from sparecycles.volunteers.models import Device
from sparecycles.volunteers.services import device_connect

pytestmark = pytest.mark.django_db
RNG = random.Random(7)


def test_a_batch_serves_every_device_and_never_gives_one_volunteer_two_replicas(
        make_batch, make_device, owner):
    make_batch(count=12, min_quorum=2, target_nresults=2)
    strangers = [make_device().device for _ in range(3)]
    mine = [device_connect(token=None, user=owner).device for _ in range(2)]  # one volunteer
    asks = [Ask(device_id=d.pk, slots=4) for d in strangers + mine]
    dispatches = tasks_dispatch_many(asks, rng=RNG)
    assert [len(d.replicas) for d in dispatches[:3]] == [4, 4, 4]
    owner_units = [r.workunit_id for d in dispatches[3:] for r in d.replicas]
    assert len(owner_units) == len(set(owner_units))  # distinct work units across the two
    for dispatch, ask in zip(dispatches, asks, strict=True):
        assert all(r.device_id == ask.device_id for r in dispatch.replicas)
    per_unit = {}
    for replica in Replica.objects.filter(server_state=Replica.ServerState.IN_PROGRESS):
        per_unit.setdefault(replica.workunit_id, []).append(replica.volunteer_id)
    assert all(len(v) == len(set(v)) for v in per_unit.values())


def test_a_batch_counts_sent_tasks_against_each_devices_quota(make_batch, make_device):
    make_batch(count=5)
    devices = [make_device().device for _ in range(2)]
    tasks_dispatch_many([Ask(device_id=d.pk, slots=2) for d in devices], rng=RNG)
    assert sorted(HostAppVersion.objects.values_list("jobs_today", flat=True)) == [2, 2]


def test_distinct_networks_hold_within_one_batch(make_batch, make_device, settings):
    make_batch(count=2, min_quorum=2, target_nresults=2)
    devices = [make_device().device for _ in range(2)]
    dispatches = tasks_dispatch_many(
        [Ask(device_id=d.pk, slots=2, network="203.0.113.0/24") for d in devices], rng=RNG)
    units = [r.workunit_id for d in dispatches for r in d.replicas]
    assert len(units) == len(set(units)) == 2  # one replica of each unit for the network


def test_a_device_may_ask_once_per_batch(make_device):
    device = make_device().device
    with pytest.raises(ValueError):
        tasks_dispatch_many([Ask(device_id=device.pk, slots=1)] * 2, rng=RNG)


def test_a_device_the_window_cannot_serve_falls_back_to_its_own_query(
        make_batch, owner, settings, monkeypatch):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_INFLIGHT": 40, "DAILY_QUOTA_START": 100}
    make_batch(count=20, min_quorum=2, target_nresults=2)
    first = device_connect(token=None, user=owner).device
    [taken] = tasks_dispatch_many([Ask(device_id=first.pk, slots=20)], rng=RNG)
    assert len({r.workunit_id for r in taken.replicas}) == 20
    make_batch(count=5, min_quorum=2, target_nresults=2)  # later work, after those in id order
    # The volunteer's other device asks for one: the window (4 × 1 + 16 = 20 unsent rows)
    # holds only the second copies of those 20 units, which it may not have.
    second = device_connect(token=None, user=owner).device
    windows = []
    shared = dispatch_module.candidates_window
    monkeypatch.setattr(dispatch_module, "candidates_window",
                        lambda **kw: windows.append(kw) or shared(**kw))
    [dispatch] = tasks_dispatch_many([Ask(device_id=second.pk, slots=1)], rng=RNG)
    [replica] = dispatch.replicas
    assert replica.workunit_id not in {r.workunit_id for r in taken.replicas}
    assert [w.get("volunteer_id") for w in windows] == [None, second.volunteer_id]


# --- pair diversity per volunteer and per network (issue 16) ----------------------------------

def meetings_between(group_a, group_b) -> int:
    """Work units in which a device of group_a and a device of group_b both held a task."""
    def units(group):
        return set(Replica.objects.filter(device__in=group, spot_check=False)
                   .values_list("workunit_id", flat=True))
    return len(units(group_a) & units(group_b))


def take_rounds(devices, rounds, networks=None):
    networks = networks or {}
    for _ in range(rounds):
        for device in devices:
            for replica in tasks_dispatch_many(
                    [Ask(device_id=device.pk, slots=1, network=networks.get(device.pk, ""))],
                    rng=RNG)[0].replicas:
                Replica.objects.filter(pk=replica.pk).update(
                    server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.SUCCESS)


def test_many_devices_of_two_volunteers_meet_no_more_than_two_devices_would(
        make_batch, make_device, settings):
    # Each device pair alone stays under the limit; the volunteers behind them must too.
    make_batch(count=60, min_quorum=2, target_nresults=2)
    x_devices = [make_device().device for _ in range(3)]
    y_devices = [make_device().device for _ in range(3)]
    for group in (x_devices, y_devices):
        Device.objects.filter(pk__in=[d.pk for d in group]).update(volunteer=group[0].volunteer)
    take_rounds([d for pair in zip(x_devices, y_devices, strict=True) for d in pair], rounds=4)
    limit = settings.SPARECYCLES["PAIR_MAX_MEETINGS"]
    assert meetings_between(x_devices, y_devices) <= limit


def test_two_networks_of_many_volunteers_meet_no_more_than_two_devices_would(
        make_batch, make_device, settings):
    make_batch(count=60, min_quorum=2, target_nresults=2)
    here = [make_device().device for _ in range(3)]   # three volunteers behind one address
    there = [make_device().device for _ in range(3)]  # three behind another
    networks = {d.pk: "198.51.100.0/24" for d in here} | {d.pk: "192.0.2.0/24" for d in there}
    take_rounds([d for pair in zip(here, there, strict=True) for d in pair], rounds=4,
                networks=networks)
    assert meetings_between(here, there) <= settings.SPARECYCLES["PAIR_MAX_MEETINGS"]
    # The network is stored with each task, so the limit holds across processes.
    assert set(Replica.objects.filter(device__in=here).values_list("network", flat=True)) == {
        "198.51.100.0/24"}


def test_pair_diversity_is_a_preference_never_a_refusal(make_batch, make_device):
    # Two volunteers and nothing else to do: they still share work units.
    make_batch(count=4, min_quorum=2, target_nresults=2)
    first, second = make_device().device, make_device().device
    take_rounds([first, second], rounds=4)
    assert meetings_between([first], [second]) == 4
