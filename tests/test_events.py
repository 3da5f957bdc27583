"""sparecycles.events: every socket push leaves after commit, to the group it names."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from sparecycles import events

pytestmark = pytest.mark.django_db(transaction=True)


def joined(group: str) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def received(channel: str) -> dict:
    return async_to_sync(get_channel_layer().receive)(channel)


def nothing_for(channel: str) -> bool:
    """True if the channel has nothing queued (the in-memory and Redis layers both)."""
    import asyncio

    async def poll():
        try:
            return await asyncio.wait_for(get_channel_layer().receive(channel), 0.3)
        except TimeoutError:
            return None

    return async_to_sync(poll)() is None


class Item:
    def __init__(self, device_id, task_id):
        self.device_id, self.task_id = device_id, task_id


def test_group_names():
    assert events.device_group(7) == "device.7"
    assert events.LEADERBOARD_GROUP == "leaderboards"


def test_an_event_waits_for_the_commit():
    channel = joined(events.device_group(1))
    with transaction.atomic():
        events.stats_changed([1])
        assert nothing_for(channel)
    assert received(channel) == {"type": "stats.changed"}


def test_a_rolled_back_change_is_never_announced():
    channel = joined(events.device_group(2))
    with pytest.raises(RuntimeError), transaction.atomic():
        events.tasks_cancelled([Item(2, "t-1")])
        raise RuntimeError("rolled back")
    assert nothing_for(channel)


def test_outside_a_transaction_it_is_sent_at_once_grouped_per_device():
    first, second = joined(events.device_group(3)), joined(events.device_group(4))
    events.tasks_cancelled([Item(3, "a"), Item(4, "b"), Item(3, "c")])
    assert received(first) == {"type": "tasks.cancel", "task_ids": ["a", "c"]}
    assert received(second) == {"type": "tasks.cancel", "task_ids": ["b"]}


def test_credit_granted_nudges_each_device_and_the_boards_once():
    device, board = joined(events.device_group(5)), joined(events.LEADERBOARD_GROUP)
    events.credit_granted(volunteer_ids=[9, 10], device_ids=[5])
    assert received(device) == {"type": "stats.changed"}
    assert received(board) == {"type": "leaderboard.changed", "volunteer_ids": [9, 10]}
    assert nothing_for(board)


def test_no_volunteers_no_event():
    board = joined(events.LEADERBOARD_GROUP)
    events.credit_granted(volunteer_ids=[], device_ids=[])
    events.leaderboard_changed([])
    assert nothing_for(board)
