"""After-commit pushes when credit changes: the devices' stats and the live leaderboards."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from sparecycles.scheduler.notify import device_group

LEADERBOARD_GROUP = "leaderboards"


def notify_credit_granted(*, volunteer_ids: list[int], device_ids: list[int]) -> None:
    """One `stats` nudge per device that earned credit, one leaderboard nudge in all.

    Receivers coalesce: a device's socket and a leaderboard page each refresh at most
    once per throttle interval however many grants land meanwhile.
    """
    if not volunteer_ids:
        return
    messages = [(device_group(device_id), {"type": "stats.changed"}) for device_id in device_ids]
    messages.append((LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                         "volunteer_ids": volunteer_ids}))
    # One trip into async code for all: each async_to_sync costs about a millisecond.
    async_to_sync(_group_send_all)(get_channel_layer(), messages)


async def _group_send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)
