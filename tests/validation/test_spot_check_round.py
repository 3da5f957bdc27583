"""Spot checks of one dispatch transaction, issued together (validation.spot_checks.SpotCheckRound).

Each app's known-answer pools are read once per dispatch batch and the replicas written in one
statement, so a batch of new devices (half their tasks are spot checks) costs a handful of
queries instead of about five per spot check; the rules stay spot_check_issue's.
"""

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sparecycles.projects.services import spot_check_batch_create
from sparecycles.scheduler.dispatch import Ask, tasks_dispatch_many
from sparecycles.scheduler.models import HostAppVersion, Replica
from sparecycles.validation.spot_checks import SpotCheckRound, spot_check_issue
from sparecycles.volunteers.services import device_connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def known(app, app_version):
    app.spot_check_rate = 1.0
    app.save()
    return spot_check_batch_create(
        app_version=app_version,
        known=[({"n": n}, {"n": n, "square": n * n}) for n in range(100, 110)])


def spot_queries(make_batch, make_device, devices: int) -> tuple[int, list]:
    make_batch(count=4 * devices)
    asks = [Ask(device_id=make_device().device.pk, slots=2) for _ in range(devices)]
    with CaptureQueriesContext(connection) as queries:
        dispatches = tasks_dispatch_many(asks, rng=random.Random(5))
    return len(queries), dispatches


def test_a_batch_of_spot_checks_costs_the_same_queries_for_2_devices_as_for_8(
        make_batch, make_device, known):
    few, dispatches = spot_queries(make_batch, make_device, 2)
    assert all(r.spot_check for d in dispatches for r in d.replicas)
    assert [len(d.replicas) for d in dispatches] == [2, 2]
    many, dispatches = spot_queries(make_batch, make_device, 8)
    assert [len(d.replicas) for d in dispatches] == [2] * 8
    assert all(r.spot_check and r.workunit.is_spot_check for d in dispatches for r in d.replicas)
    assert many == few


def test_a_round_never_gives_one_volunteer_or_network_a_known_answer_twice(
        make_batch, make_device, owner, known):
    make_batch(count=4)
    mine = [device_connect(token=None, user=owner).device for _ in range(3)]  # one volunteer
    others = [make_device().device for _ in range(2)]
    asks = ([Ask(device_id=d.pk, slots=3) for d in mine]
            + [Ask(device_id=d.pk, slots=3, network="net-a") for d in others])
    dispatches = tasks_dispatch_many(asks, rng=random.Random(1))
    owner_units = [r.workunit_id for d in dispatches[:3] for r in d.replicas]
    assert len(owner_units) == len(set(owner_units)) == 9  # ten known answers: 9 distinct
    net_units = [r.workunit_id for d in dispatches[3:] for r in d.replicas]
    assert len(net_units) == len(set(net_units)) == 6
    # Counted against the devices' daily quota as every task is.
    assert sorted(HostAppVersion.objects.values_list("jobs_today", flat=True)) == [3] * 5


def test_a_round_leaves_out_what_the_volunteer_already_holds_and_runs_dry_like_one_issue(
        make_device, app, known):
    device = make_device().device
    rng = random.Random(2)
    held = [spot_check_issue(device=device, app_id=app.pk, rng=rng) for _ in range(8)]
    round_ = SpotCheckRound(volunteers={device.volunteer_id}, networks=set())
    picks = [round_.issue(device=device, app_id=app.pk, rng=rng) for _ in range(3)]
    assert picks[2] is None  # ten known answers, eight held: two left
    saved = round_.save()
    assert {r.workunit_id for r in saved}.isdisjoint({r.workunit_id for r in held})
    assert len({r.workunit_id for r in saved}) == 2 and all(r.pk for r in saved)
    assert Replica.objects.filter(volunteer_id=device.volunteer_id, spot_check=True).count() == 10


def test_a_pick_another_device_took_meanwhile_is_left_unsaved_and_the_rest_are_kept(
        make_device, app, known):
    device = make_device().device
    round_ = SpotCheckRound(volunteers={device.volunteer_id}, networks=set())
    picks = [round_.issue(device=device, app_id=app.pk, rng=random.Random(4)) for _ in range(3)]
    # Another process's device of the same volunteer takes the first pick's work unit.
    Replica.objects.create(workunit_id=picks[0].workunit_id, volunteer_id=device.volunteer_id,
                           server_state=Replica.ServerState.IN_PROGRESS, spot_check=True)
    saved = round_.save()
    assert saved == picks[1:] and picks[0].pk is None and all(r.pk for r in saved)
