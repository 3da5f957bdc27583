"""credit.claims' per-process calibration: the medians of full device windows are kept
REFERENCE_TTL_S; everything below a full window is read every pass."""

import datetime as dt
import random
import time
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sparecycles.credit import claims
from sparecycles.credit.claims import (
    REFERENCE_TTL_S,
    app_version_scale,
    calibration_cache_clear,
    replicas_credit_micro,
)
from sparecycles.credit.normalisation import DEVICE_WINDOW, MIN_RESULTS
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.services import device_connect

pytestmark = pytest.mark.django_db


def new_device():
    return device_connect(token=None, capabilities={"runtimes": ["pyodide"]}).device


def history(version, device, times, *, wall=dt.timedelta(minutes=1)):
    """Validated results of `device` on `version` with these elapsed times, oldest first,
    each on a work unit of its own (the tests call credit.claims directly: no dispatch)."""
    batch = batch_create(app_version=version, name="history",
                         inputs=[{"n": i} for i in range(len(times))],
                         quorum=QuorumParams(min_quorum=1, target_nresults=1))
    now = timezone.now()
    Replica.objects.bulk_create([
        Replica(workunit=unit, device=device, volunteer_id=device.volunteer_id,
                server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.SUCCESS,
                validate_state=Replica.ValidateState.VALID, elapsed_ms=elapsed,
                sent_at=now - wall, received_at=now)
        for unit, elapsed in zip(batch.workunits.order_by("id"), times, strict=True)])


def window_reads(queries) -> int:
    """The device-window queries among captured ones (the reference query has no window)."""
    return sum("ROW_NUMBER" in q["sql"].upper() for q in queries)


def later(monkeypatch, seconds):
    """credit.claims' clock moved on by `seconds` (only its own view of time)."""
    moved = time.monotonic() + seconds
    monkeypatch.setattr(claims, "time", SimpleNamespace(monotonic=lambda: moved))


@pytest.fixture
def app_version(app):
    """An app version whose declared estimate never lowers the measured credit."""
    return app_version_create(app=app, code=b"def main(input):\n    return input\n",
                              flops_per_unit=1e24)


@pytest.fixture
def fleet(app_version):
    """Three devices with full windows, one with a full window of zeros (never
    established), and one still establishing (ten results)."""
    full = [new_device() for _ in range(3)]
    for speed, device in enumerate(full, start=1):
        history(app_version, device, [speed * 100 + i % 7 for i in range(DEVICE_WINDOW + 5)])
    zeros, young = new_device(), new_device()
    history(app_version, zeros, [0] * DEVICE_WINDOW)
    history(app_version, young, [400 + i for i in range(10)])
    return SimpleNamespace(full=full, zeros=zeros, young=young,
                           ids={d.pk for d in [*full, zeros, young]})


def test_a_second_pass_reads_no_sample_of_a_full_window(app_version, fleet):
    with CaptureQueriesContext(connection) as first:
        scale = app_version_scale(app_version=app_version, device_ids=fleet.ids)
    assert len(first.captured_queries) == 2     # the reference and the devices' windows
    assert set(scale.device_median_ms) == {d.pk for d in [*fleet.full, fleet.young]}

    with CaptureQueriesContext(connection) as second:
        again = app_version_scale(app_version=app_version, device_ids=fleet.ids)
    assert again == scale
    # Only the establishing device is read again, by its own window query.
    assert window_reads(second.captured_queries) == len(second.captured_queries) == 1
    assert str(fleet.young.pk) in second.captured_queries[0]["sql"]

    full_only = {d.pk for d in [*fleet.full, fleet.zeros]}
    with CaptureQueriesContext(connection) as third:
        cached = app_version_scale(app_version=app_version, device_ids=full_only)
    assert third.captured_queries == []
    assert cached.device_median_ms == {d.pk: scale.device_median_ms[d.pk] for d in fleet.full}

    calibration_cache_clear()
    assert app_version_scale(app_version=app_version, device_ids=fleet.ids) == scale


def test_a_device_below_a_full_window_is_read_every_pass(app_version, fleet):
    newcomer = new_device()
    ids = fleet.ids | {newcomer.pk}
    history(app_version, newcomer, [500] * (MIN_RESULTS - 1))
    assert newcomer.pk not in app_version_scale(app_version=app_version,
                                                device_ids=ids).device_median_ms
    # Its next validated result establishes it in the very next pass, not a TTL later.
    history(app_version, newcomer, [800])
    scale = app_version_scale(app_version=app_version, device_ids=ids)
    assert scale.device_median_ms[newcomer.pk] == 500
    # The establishing device's median follows each result too.
    history(app_version, fleet.young, [10_000] * 5)
    scale = app_version_scale(app_version=app_version, device_ids=ids)
    assert scale.device_median_ms[fleet.young.pk] == 407   # the 8th of 400..409 and five slow ones
    # A window that becomes full is cached from then on.
    history(app_version, newcomer, [600] * (DEVICE_WINDOW - MIN_RESULTS))
    app_version_scale(app_version=app_version, device_ids={newcomer.pk})
    with CaptureQueriesContext(connection) as cached:
        app_version_scale(app_version=app_version, device_ids={newcomer.pk})
    assert cached.captured_queries == []


def test_a_full_window_is_read_again_once_its_median_is_older_than_the_ttl(app_version,
                                                                            fleet, monkeypatch):
    fast = fleet.full[0]
    before = app_version_scale(app_version=app_version, device_ids={fast.pk})
    history(app_version, fast, [5_000] * DEVICE_WINDOW)       # it became much slower
    later(monkeypatch, REFERENCE_TTL_S - 1)
    assert app_version_scale(app_version=app_version, device_ids={fast.pk}
                             ).device_median_ms == before.device_median_ms
    later(monkeypatch, REFERENCE_TTL_S)
    with CaptureQueriesContext(connection) as expired:
        scale = app_version_scale(app_version=app_version, device_ids={fast.pk})
    assert window_reads(expired.captured_queries) == 1
    assert scale.device_median_ms == {fast.pk: 5_000}


def test_a_new_app_version_does_not_reuse_another_one_s_medians(app_version, fleet):
    fast = fleet.full[0]
    mine = app_version_scale(app_version=app_version, device_ids={fast.pk})
    other = app_version_create(app=app_version.app, code=b"def main(input):\n    return 2\n",
                               flops_per_unit=1e9)
    history(other, fast, [7_000] * DEVICE_WINDOW)
    assert app_version_scale(app_version=other, device_ids={fast.pk}
                             ).device_median_ms == {fast.pk: 7_000}
    assert app_version_scale(app_version=app_version, device_ids={fast.pk}
                             ).device_median_ms == mine.device_median_ms
    # The same pk with another created_at (a version made again after a rollback, where
    # SQLite reuses the pk) is another version: it reads its own windows.
    type(app_version).objects.filter(pk=app_version.pk).update(
        created_at=app_version.created_at + dt.timedelta(seconds=1))
    app_version.refresh_from_db()
    with CaptureQueriesContext(connection) as remade:
        app_version_scale(app_version=app_version, device_ids={fast.pk})
    assert window_reads(remade.captured_queries) == 1


def test_credit_is_what_the_uncached_calibration_gives(app_version, fleet):
    """A deterministic scenario: passes of work units over devices with full windows,
    establishing and new ones; each pass's credit equals the uncached computation's."""
    rng = random.Random(7)
    newcomer = new_device()
    devices = [*fleet.full, fleet.zeros, fleet.young, newcomer]
    batch = batch_create(app_version=app_version, name="passes",
                         inputs=[{"n": i} for i in range(12)],
                         quorum=QuorumParams(min_quorum=2, target_nresults=3))
    now = timezone.now()
    units = list(batch.workunits.order_by("id"))
    for unit in units:
        chosen = rng.sample(devices, rng.choice([2, 3]))
        Replica.objects.bulk_create([
            Replica(workunit=unit, device=d, volunteer_id=d.volunteer_id,
                    server_state=Replica.ServerState.OVER, outcome=Replica.Outcome.SUCCESS,
                    validate_state=Replica.ValidateState.VALID,
                    elapsed_ms=rng.randint(50, 2_000),
                    sent_at=now - dt.timedelta(milliseconds=rng.randint(500, 3_000)),
                    received_at=now) for d in chosen])
    passes = [list(Replica.objects.filter(workunit__in=units[i:i + 4])
                   .select_related("workunit__app_version")) for i in (0, 4, 8)]

    cached = []
    for replicas in passes:
        with CaptureQueriesContext(connection) as queries:
            cached.append(replicas_credit_micro(replicas=replicas))
        reads = window_reads(queries.captured_queries)
    assert reads <= 1     # later passes read only the windows that are not full
    uncached = []
    for replicas in passes:
        calibration_cache_clear()
        uncached.append(replicas_credit_micro(replicas=replicas))
    assert cached == uncached
    assert len({amount for amounts in cached for amount in amounts.values()}) > 3


def test_the_cache_stays_bounded(app_version, fleet, monkeypatch):
    monkeypatch.setattr(claims, "DEVICE_CACHE_MAX", 6)
    app_version_scale(app_version=app_version, device_ids={d.pk for d in fleet.full})
    assert len(claims._device_medians) == 3
    later(monkeypatch, REFERENCE_TTL_S + 1)
    extra = [new_device() for _ in range(5)]
    for device in extra:
        history(app_version, device, [300] * DEVICE_WINDOW)
    app_version_scale(app_version=app_version, device_ids={d.pk for d in extra[:3]})
    assert len(claims._device_medians) == 6
    app_version_scale(app_version=app_version, device_ids={extra[3].pk})
    # The three expired entries went to make room; the fresh ones stay.
    assert {key[2] for key in claims._device_medians} == {d.pk for d in extra[:4]}
    # Full of fresh entries: a further device is not kept, so it is read every pass.
    monkeypatch.setattr(claims, "DEVICE_CACHE_MAX", 4)
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            scale = app_version_scale(app_version=app_version, device_ids={extra[4].pk})
        assert window_reads(queries.captured_queries) == 1
        assert scale.device_median_ms == {extra[4].pk: 300}
    assert len(claims._device_medians) == 4
