"""gateway/batching.py: reports and requests from every socket of a process go to the database
together, each socket gets its own answer, and a failure reaches every socket of its batch."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from django.conf import settings as django_settings
from django.utils.module_loading import import_string

from sparecycles.events import STATS_GROUP
from sparecycles.gateway import batching
from sparecycles.gateway.batching import feeder, intake
from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.dispatch import Ask
from sparecycles.scheduler.intake import Report
from sparecycles.scheduler.services import tasks_dispatch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spy(monkeypatch):
    """Record the size of each batch the real functions get (they still run)."""
    seen: dict[str, list] = {"store": [], "validate": [], "dispatch": []}
    store, validate, dispatch = (batching.results_store, batching.workunits_validate,
                                 batching.tasks_dispatch_many)

    def store_spy(reports):
        seen["store"].append(len(reports))
        return store(reports)

    def validate_spy(*, workunit_ids):
        seen["validate"].append(sorted(workunit_ids))
        return validate(workunit_ids=workunit_ids)

    def dispatch_spy(asks, **kwargs):
        seen["dispatch"].append([ask.device_id for ask in asks])
        return dispatch(asks, **kwargs)

    monkeypatch.setattr(batching, "results_store", store_spy)
    monkeypatch.setattr(batching, "workunits_validate", validate_spy)
    monkeypatch.setattr(batching, "tasks_dispatch_many", dispatch_spy)
    return seen


@pytest.fixture
def out(make_batch, make_device):
    """Six devices, each holding one task of a quorum-1 batch."""
    make_batch(count=6, min_quorum=1, target_nresults=1)
    devices = [make_device().device for _ in range(6)]
    tasks = [tasks_dispatch(device=device, slots=1).replicas[0] for device in devices]
    return list(zip(devices, tasks, strict=True))


async def until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await database_sync_to_async(predicate)():
            await asyncio.sleep(0.02)


async def test_reports_of_many_sockets_are_stored_together_and_each_gets_its_ack(out, spy):
    reports = [Report(device_id=device.pk, task_id=task.task_id, ok=True,
                      output={"n": n}) for n, (device, task) in enumerate(out)]
    acks = await asyncio.gather(*(intake().submit(report) for report in reports))
    assert [ack.task_id for ack in acks] == [report.task_id for report in reports]
    assert all(ack.accepted and not ack.duplicate for ack in acks)
    assert sum(spy["store"]) == 6 and len(spy["store"]) < 6  # batched, not one by one
    await until(lambda: WorkUnit.objects.filter(state=WorkUnit.State.COMPLETED).count() == 6)
    assert sorted(i for chunk in spy["validate"] for i in chunk) == sorted(
        task.workunit_id for _, task in out)


async def test_a_report_sent_twice_is_a_duplicate(out, spy):
    device, task = out[0]
    report = Report(device_id=device.pk, task_id=task.task_id, ok=True, output={"n": 1})
    first = await intake().submit(report)
    again = await intake().submit(report)
    assert first.accepted and not first.duplicate
    assert again.accepted and again.duplicate


async def test_a_failed_store_reaches_every_socket_of_its_batch_and_the_next_batch_works(
        out, monkeypatch):
    store = batching.results_store
    calls = []

    def broken_once(reports):
        calls.append(len(reports))
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return store(reports)

    monkeypatch.setattr(batching, "results_store", broken_once)
    reports = [Report(device_id=device.pk, task_id=task.task_id, ok=True, output={})
               for device, task in out[:3]]
    answers = await asyncio.gather(*(intake().submit(r) for r in reports),
                                   return_exceptions=True)
    assert all(isinstance(a, RuntimeError) for a in answers)
    ack = await intake().submit(reports[0])  # nothing was kept: it stores now
    assert ack.accepted and not ack.duplicate


async def test_one_ask_per_device_per_dispatch_batch(make_batch, make_device, spy):
    await database_sync_to_async(make_batch)(count=6, min_quorum=1, target_nresults=1)
    a = (await database_sync_to_async(make_device)()).device
    b = (await database_sync_to_async(make_device)()).device
    answers = await asyncio.gather(feeder().submit(Ask(device_id=a.pk, slots=1)),
                                   feeder().submit(Ask(device_id=a.pk, slots=1)),
                                   feeder().submit(Ask(device_id=b.pk, slots=1)))
    assert all(len(answer["tasks"]) == 1 for answer in answers)
    # (a's second ask, not knowing its first task yet, may be sent that one again)
    assert answers[2]["tasks"][0]["task_id"] not in {answers[0]["tasks"][0]["task_id"],
                                                     answers[1]["tasks"][0]["task_id"]}
    assert all(len(set(batch)) == len(batch) for batch in spy["dispatch"])
    assert sorted(d for batch in spy["dispatch"] for d in batch) == sorted([a.pk, a.pk, b.pk])


async def test_one_intake_and_one_feeder_per_event_loop():
    assert intake() is intake() and feeder() is feeder()


class Socket:
    def __init__(self) -> None:
        self.frames: list[dict] = []

    async def send_stats(self, frame: dict) -> None:
        self.frames.append(frame)


async def test_stats_of_many_sockets_are_read_together_once_per_interval(
        make_device, monkeypatch, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "STATS_THROTTLE_S": 0.3}
    rounds: list[list[int]] = []
    real = batching.stats_frames

    def frames_spy(volunteer_ids):
        rounds.append(list(volunteer_ids))
        return real(volunteer_ids)

    monkeypatch.setattr(batching, "stats_frames", frames_spy)
    devices = await database_sync_to_async(lambda: [make_device().device for _ in range(3)])()
    sockets = [Socket() for _ in devices]
    pusher = batching.stats_pusher()
    for socket_, device in zip(sockets, devices, strict=True):
        pusher.mark(socket_, device.volunteer_id)
    async with asyncio.timeout(10):
        while not all(s.frames for s in sockets):
            await asyncio.sleep(0.01)
    assert rounds == [sorted(d.volunteer_id for d in devices)]  # one read for all three
    frame = sockets[0].frames[0]
    assert set(frame) == {"type", "credit", "credit_micro", "rac", "tokens", "rank"}
    assert frame["type"] == "stats" and frame["tokens"] == "0"
    # Marks during the rest interval wait for the next round, several grants one push.
    for _ in range(5):
        pusher.mark(sockets[0], devices[0].volunteer_id)
    pusher.forget(sockets[1])
    async with asyncio.timeout(10):
        while len(sockets[0].frames) < 2:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    assert len(sockets[0].frames) == 2 and rounds[1] == [devices[0].volunteer_id]
    assert [len(s.frames) for s in sockets[1:]] == [1, 1]


async def frames_arrive(*sockets: Socket, count: int = 1) -> None:
    async with asyncio.timeout(10):
        while not all(len(s.frames) >= count for s in sockets):
            await asyncio.sleep(0.01)


async def listening(pusher: batching.StatsPusher, layer) -> None:
    """Until the pusher's channel has joined STATS_GROUP (the in-memory layer's groups, or
    the Redis sorted set channels_redis keeps for the group)."""
    async with asyncio.timeout(10):
        while not await _members(layer):
            await asyncio.sleep(0.01)


async def _members(layer) -> list:
    if hasattr(layer, "groups"):  # in-memory
        return list(layer.groups.get(STATS_GROUP, {}))
    connection = layer.connection(layer.consistent_hash(STATS_GROUP))
    return await connection.zrange(layer._group_key(STATS_GROUP), 0, -1)


async def test_a_stats_message_marks_the_sockets_of_the_devices_it_names(make_device,
                                                                        settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "STATS_THROTTLE_S": 0.1}
    devices = await database_sync_to_async(lambda: [make_device().device for _ in range(3)])()
    granted, other, gone = devices
    sockets = {device.pk: Socket() for device in devices}
    twice = Socket()  # a second socket of the granted device (e.g. a reconnect's overlap)
    pusher, layer = batching.stats_pusher(), get_channel_layer()
    for device in devices:
        pusher.register(sockets[device.pk], device_id=device.pk,
                        volunteer_id=device.volunteer_id)
    pusher.register(twice, device_id=granted.pk, volunteer_id=granted.volunteer_id)
    pusher.forget(sockets[gone.pk])  # disconnected
    await listening(pusher, layer)
    await layer.group_send(STATS_GROUP, {"type": "stats.changed",
                                         "device_ids": [granted.pk, gone.pk, 10**9]})
    await frames_arrive(sockets[granted.pk], twice)
    assert sockets[granted.pk].frames[0]["type"] == "stats"
    await asyncio.sleep(0.5)
    assert sockets[other.pk].frames == [] and sockets[gone.pk].frames == []
    assert pusher.sockets == {granted.pk: {sockets[granted.pk]: granted.volunteer_id,
                                           twice: granted.volunteer_id},
                              other.pk: {sockets[other.pk]: other.volunteer_id}}
    for socket_ in (sockets[granted.pk], twice, sockets[other.pk]):
        pusher.forget(socket_)
    assert pusher.sockets == {} and pusher.device_of == {}


def flaky_layer(failures: int):
    """The configured channel layer, whose first `failures` receives fail as a restarting
    Redis makes them fail, having forgotten the group memberships first."""
    config = django_settings.CHANNEL_LAYERS[DEFAULT_CHANNEL_LAYER]

    class FlakyLayer(import_string(config["BACKEND"])):
        joins: list[str] = []

        async def group_add(self, group, channel):
            self.joins.append(group)
            await super().group_add(group, channel)

        async def receive(self, channel):
            nonlocal failures
            if failures:
                failures -= 1
                await asyncio.sleep(0.05)
                await self.group_discard(STATS_GROUP, channel)
                raise ConnectionError("Connection closed by server.")
            return await super().receive(channel)

    layer = channel_layers.backends[DEFAULT_CHANNEL_LAYER] = FlakyLayer(
        **config.get("CONFIG", {}))
    return layer


async def test_the_listener_joins_again_after_the_layer_failed(make_device, monkeypatch,
                                                                settings, caplog):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "STATS_THROTTLE_S": 0.1}
    monkeypatch.setattr(batching, "STATS_RETRY_S", 0.1)
    layer = flaky_layer(failures=1)
    device = (await database_sync_to_async(make_device)()).device
    socket_ = Socket()
    pusher = batching.stats_pusher()
    pusher.register(socket_, device_id=device.pk, volunteer_id=device.volunteer_id)
    async with asyncio.timeout(10):
        while len(layer.joins) < 2:  # joined, failed, joined again
            await asyncio.sleep(0.01)
    await listening(pusher, layer)
    assert "the stats listener failed" in caplog.text
    await layer.group_send(STATS_GROUP, {"type": "stats.changed", "device_ids": [device.pk]})
    await frames_arrive(socket_)
    assert not pusher.listening.done()


async def test_the_listener_renews_its_membership_and_waits_without_polling(
        make_device, monkeypatch, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "STATS_THROTTLE_S": 0.1}
    monkeypatch.setattr(batching, "STATS_REJOIN_S", 0.2)
    layer = flaky_layer(failures=0)
    receives = []
    receive = layer.receive

    async def counted(channel):
        receives.append(channel)
        return await receive(channel)

    layer.receive = counted
    device = (await database_sync_to_async(make_device)()).device
    socket_ = Socket()
    pusher = batching.stats_pusher()
    pusher.register(socket_, device_id=device.pk, volunteer_id=device.volunteer_id)
    await asyncio.sleep(0.9)
    assert len(layer.joins) >= 3  # renewed about every 0.2 s
    assert len(receives) == 1  # one receive waits all along: renewing does not interrupt it
    await layer.group_send(STATS_GROUP, {"type": "stats.changed", "device_ids": [device.pk]})
    await frames_arrive(socket_)
    assert len(receives) == 2  # the next one waits


async def test_on_sqlite_the_store_waits_its_turn_and_goes_the_moment_the_writer_is_done(out):
    """The embedded server's writers take turns on one lock (not SQLite's sleeping busy
    handler); on PostgreSQL, which locks rows, there is no turn."""
    from django.db import connection

    if connection.vendor != "sqlite":
        assert not hasattr(batching._one_writer(), "acquire")
        return
    device, task = out[0]
    report = Report(device_id=device.pk, task_id=task.task_id, ok=True, output={"n": 1})
    batching._sqlite_writer.acquire()  # a dispatch or validation pass is writing
    try:
        pending = asyncio.ensure_future(intake().submit(report))
        await asyncio.sleep(0.3)
        assert not pending.done()  # its turn has not come
    finally:
        batching._sqlite_writer.release()
    ack = await asyncio.wait_for(pending, 10)
    assert ack.accepted


async def test_a_batch_waits_for_enough_items_at_most_its_gathering_time():
    """Below ENOUGH a loop waits for more, goes the moment there are ENOUGH, and never
    waits longer than its gathering time (a lone item still goes)."""
    loop = asyncio.get_running_loop()
    items: list[int] = []
    grew = asyncio.Event()

    def add_later(delay: float, count: int) -> None:
        def add() -> None:
            items.extend(range(count))
            grew.set()
        loop.call_later(delay, add)

    items[:] = [1]
    started = loop.time()
    await batching._gather(lambda: len(items), grew, 4, 0.3)  # nothing more comes
    assert 0.3 - 0.02 <= loop.time() - started < 2.0

    items[:] = [1, 2, 3, 4]
    started = loop.time()
    await batching._gather(lambda: len(items), grew, 4, 5.0)  # enough already: at once
    assert loop.time() - started < 0.05

    items[:] = [1]
    add_later(0.05, 1)  # not yet enough: keeps waiting
    add_later(0.15, 2)  # now 4: goes
    started = loop.time()
    await batching._gather(lambda: len(items), grew, 4, 5.0)
    assert 0.14 <= loop.time() - started < 1.0 and len(items) == 4


async def test_a_batch_of_patient_askers_waits_longer_and_an_urgent_one_cuts_it_short():
    """Askers that still hold tasks can wait `patient_s` for company; one that holds none
    brings the wait back to the short gathering time, even arriving mid-wait."""
    loop = asyncio.get_running_loop()
    holding = [True]  # one asker, holding tasks
    grew = asyncio.Event()

    started = loop.time()
    await batching._gather(lambda: len(holding), grew, 4, 0.05, patient_s=0.4,
                           patient=lambda: all(holding))
    assert 0.4 - 0.02 <= loop.time() - started < 2.0

    def urgent() -> None:
        holding.append(False)
        grew.set()

    loop.call_later(0.1, urgent)  # an asker with nothing to do arrives
    started = loop.time()
    await batching._gather(lambda: len(holding), grew, 4, 0.05, patient_s=5.0,
                           patient=lambda: all(holding))
    assert 0.1 - 0.02 <= loop.time() - started < 1.0
