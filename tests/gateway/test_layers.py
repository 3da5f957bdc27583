"""The embedded channel layer: the same behaviour, without a sweep per message."""

import asyncio

from sparecycles.gateway import layers
from sparecycles.gateway.layers import SweepingInMemoryChannelLayer


async def test_messages_and_groups_work_as_in_channels():
    layer = SweepingInMemoryChannelLayer()
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("device.1", first)
    await layer.group_add("device.1", second)
    await layer.group_send("device.1", {"type": "stats.changed"})
    assert await layer.receive(first) == {"type": "stats.changed"}
    assert await layer.receive(second) == {"type": "stats.changed"}


async def test_expired_messages_are_still_dropped(monkeypatch):
    monkeypatch.setattr(layers, "SWEEP_EVERY_S", 0.0)
    layer = SweepingInMemoryChannelLayer(expiry=0)  # every message is expired at once
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "old"})
    await asyncio.sleep(0.01)
    layer._clean_expired()
    assert channel not in layer.channels


async def test_the_sweep_runs_at_most_once_a_second(monkeypatch):
    layer = SweepingInMemoryChannelLayer()
    sweeps = []
    monkeypatch.setattr(layers.InMemoryChannelLayer, "_clean_expired",
                        lambda self: sweeps.append(1))
    for _ in range(1000):
        layer._clean_expired()
    assert sweeps == [1]
