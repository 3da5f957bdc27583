"""After-commit pushes when credit changes: the device's stats and the live leaderboards."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from sparecycles.scheduler.notify import device_group

LEADERBOARD_GROUP = "leaderboards"


def notify_credit_granted(*, volunteer_id: int, device_id: int | None) -> None:
    messages = [(LEADERBOARD_GROUP, {"type": "leaderboard.changed", "volunteer_id": volunteer_id})]
    if device_id is not None:
        messages.insert(0, (device_group(device_id), {"type": "stats.changed"}))
    # One trip into async code for both: each async_to_sync costs about a millisecond.
    async_to_sync(_group_send_all)(get_channel_layer(), messages)


async def _group_send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)
