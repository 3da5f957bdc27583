"""sparecycles.events: every socket push leaves after commit, to the group it names.

Each test runs on one event loop (channels_redis binds a channel's buffer to it); the
services run in a thread (database_sync_to_async), whose async_to_sync calls come back
to this loop, as in a consumer.
"""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from sparecycles import events

pytestmark = pytest.mark.django_db(transaction=True)


async def joined(group: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def received(channel: str) -> dict:
    return await asyncio.wait_for(get_channel_layer().receive(channel), 10)


async def nothing_for(channel: str) -> bool:
    """True if nothing arrives on the channel for a moment."""
    try:
        await asyncio.wait_for(asyncio.shield(_receive_later(channel)), 0.3)
    except TimeoutError:
        return True
    return False


_pending: dict[str, asyncio.Future] = {}


def _receive_later(channel: str) -> asyncio.Future:
    """One outstanding receive per channel, kept across checks (a cancelled receive
    could lose a message)."""
    if channel not in _pending:
        _pending[channel] = asyncio.ensure_future(get_channel_layer().receive(channel))
    return _pending[channel]


async def next_message(channel: str) -> dict:
    if channel in _pending:
        return await asyncio.wait_for(_pending.pop(channel), 10)
    return await received(channel)


class Item:
    def __init__(self, device_id, task_id):
        self.device_id, self.task_id = device_id, task_id


def test_group_names():
    assert events.device_group(7) == "device.7"
    assert events.LEADERBOARD_GROUP == "leaderboards"
    assert events.STATS_GROUP == "stats"


async def test_an_event_waits_for_the_commit():
    channel = await joined(events.STATS_GROUP)

    def change():
        with transaction.atomic():
            events.stats_changed([1])
            assert async_to_sync(nothing_for)(channel)

    await database_sync_to_async(change)()
    assert await next_message(channel) == {"type": "stats.changed", "device_ids": [1]}


async def test_a_rolled_back_change_is_never_announced():
    channel = await joined(events.device_group(2))

    def change():
        with pytest.raises(RuntimeError), transaction.atomic():
            events.tasks_cancelled([Item(2, "t-1")])
            raise RuntimeError("rolled back")

    await database_sync_to_async(change)()
    assert await nothing_for(channel)
    _pending.pop(channel).cancel()


async def test_outside_a_transaction_it_is_sent_at_once_grouped_per_device():
    first, second = await joined(events.device_group(3)), await joined(events.device_group(4))
    await database_sync_to_async(events.tasks_cancelled)([Item(3, "a"), Item(4, "b"),
                                                          Item(3, "c")])
    assert await received(first) == {"type": "tasks.cancel", "task_ids": ["a", "c"]}
    assert await received(second) == {"type": "tasks.cancel", "task_ids": ["b"]}


async def test_credit_granted_names_every_device_in_one_message_beside_the_boards_one():
    stats, board = await joined(events.STATS_GROUP), await joined(events.LEADERBOARD_GROUP)
    device = await joined(events.device_group(5))
    await database_sync_to_async(events.credit_granted)(volunteer_ids=[9, 10],
                                                        device_ids=[7, 5, 5])
    assert await received(stats) == {"type": "stats.changed", "device_ids": [5, 7]}
    assert await received(board) == {"type": "leaderboard.changed", "volunteer_ids": [9, 10]}
    for channel in (stats, board, device):  # one each, and nothing per device any more
        assert await nothing_for(channel)
        _pending.pop(channel).cancel()


async def test_a_grant_pass_for_many_devices_is_two_channel_layer_sends(sent_to_groups):
    await database_sync_to_async(events.credit_granted)(volunteer_ids=list(range(1, 41)),
                                                        device_ids=list(range(70, 0, -1)))
    assert sent_to_groups == [
        (events.STATS_GROUP, {"type": "stats.changed", "device_ids": list(range(1, 71))}),
        (events.LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                    "volunteer_ids": list(range(1, 41))})]
    sent_to_groups.clear()
    await database_sync_to_async(events.stats_changed)(iter([3, 2, 3]))  # an epoch closing
    assert sent_to_groups == [(events.STATS_GROUP, {"type": "stats.changed",
                                                    "device_ids": [2, 3]})]
    sent_to_groups.clear()
    await database_sync_to_async(events.stats_changed)([])  # no device paid: no message
    await database_sync_to_async(events.credit_granted)(volunteer_ids=[4], device_ids=[])
    assert sent_to_groups == [(events.LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                                          "volunteer_ids": [4]})]


async def test_no_volunteers_no_event():
    board = await joined(events.LEADERBOARD_GROUP)
    await database_sync_to_async(events.credit_granted)(volunteer_ids=[], device_ids=[])
    await database_sync_to_async(events.leaderboard_changed)([])
    assert await nothing_for(board)
    _pending.pop(board).cancel()


# --- progress: coalesced, once a second per group ------------------------------------------

class Recorder:
    def __init__(self):
        import threading

        self.sent: list[list[tuple[str, dict]]] = []
        self.arrived = threading.Event()

    def __call__(self, messages):
        self.sent.append(list(messages))
        self.arrived.set()


def test_a_burst_to_one_group_is_one_message_now_and_one_trailing():
    recorder = Recorder()
    coalescer = events.Coalescer(interval=0.3, send=recorder)
    for _ in range(50):
        coalescer.add([("batch.1", {"type": "progress.changed"})])
    assert recorder.sent == [[("batch.1", {"type": "progress.changed"})]]  # the first, at once
    recorder.arrived.clear()
    assert recorder.arrived.wait(5)  # the other 49 fold into one, after the interval
    assert recorder.sent[1] == [("batch.1", {"type": "progress.changed"})]
    assert len(recorder.sent) == 2
    assert coalescer.due == {} and coalescer.timer is None


def test_groups_are_throttled_apart():
    recorder = Recorder()
    coalescer = events.Coalescer(interval=60, send=recorder)
    coalescer.add([("batch.1", {}), ("project.1", {})])
    coalescer.add([("batch.2", {}), ("batch.1", {})])
    assert recorder.sent == [[("batch.1", {}), ("project.1", {})], [("batch.2", {})]]
    assert list(coalescer.due) == ["batch.1"]  # waits for its minute
    coalescer.timer.cancel()


def test_progress_changed_leaves_only_after_commit(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(events, "PROGRESS", events.Coalescer(interval=60, send=recorder))
    with transaction.atomic():
        events.progress_changed(batch_ids=[3, 3], project_ids=[7])
        assert recorder.sent == []
    assert recorder.sent == [[("batch.3", events.PROGRESS_CHANGED),
                              ("project.7", events.PROGRESS_CHANGED)]]
    try:
        with transaction.atomic():
            events.progress_changed(batch_ids=[4])
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert len(recorder.sent) == 1  # nothing for a change that never happened
