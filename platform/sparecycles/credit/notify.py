"""After-commit pushes when credit changes: the device's stats and the live leaderboards."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from sparecycles.scheduler.notify import device_group

LEADERBOARD_GROUP = "leaderboards"


def notify_credit_granted(*, volunteer_id: int, device_id: int | None) -> None:
    layer = get_channel_layer()
    if device_id is not None:
        async_to_sync(layer.group_send)(device_group(device_id), {"type": "stats.changed"})
    async_to_sync(layer.group_send)(LEADERBOARD_GROUP,
                                    {"type": "leaderboard.changed", "volunteer_id": volunteer_id})
