"""Pushing scheduler events to connected devices through the channel layer.

Called from transaction.on_commit, never from inside a transaction.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


def notify_cancelled(cancelled) -> None:
    """Tell each device which of its tasks are no longer needed."""
    if not cancelled:
        return
    layer = get_channel_layer()
    by_device: dict[int, list[str]] = {}
    for item in cancelled:
        by_device.setdefault(item.device_id, []).append(item.task_id)
    for device_id, task_ids in by_device.items():
        async_to_sync(layer.group_send)(
            device_group(device_id), {"type": "tasks.cancel", "task_ids": task_ids}
        )
