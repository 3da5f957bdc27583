"""Every push to a live socket, in one place: the groups, the event types, and sending
after commit (zulip's `send_event_on_commit`).

Domain services call the named senders below inside or outside a transaction; the
event leaves only when the transaction commits (at once outside one), so a socket
never hears of a change that was rolled back. The receivers are the consumers
(gateway/consumers.py for devices, leaderboards/consumers.py for board pages): a
message of type "a.b" is handled by their method `a_b`. The WebSocket frames those
consumers then send are PROTOCOL.md's.

This module sits below every app: it imports no domain app, so any layer may call it.
"""

from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

LEADERBOARD_GROUP = "leaderboards"


def device_group(device_id: int) -> str:
    """The group a device's open sockets join."""
    return f"device.{device_id}"


def send_event_on_commit(messages: Iterable[tuple[str, dict]]) -> None:
    """Send each (group, message) once the current transaction commits."""
    messages = list(messages)
    if messages:
        transaction.on_commit(lambda: send_events(messages))


def send_events(messages: list[tuple[str, dict]]) -> None:
    """Now: one trip into async code for all (each async_to_sync costs about a millisecond)."""
    async_to_sync(_group_send_all)(get_channel_layer(), messages)


async def _group_send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)


def tasks_cancelled(cancelled: Iterable) -> None:
    """Tell each device which of its tasks are no longer needed (items with
    `device_id` and `task_id`)."""
    by_device: dict[int, list[str]] = {}
    for item in cancelled:
        by_device.setdefault(item.device_id, []).append(item.task_id)
    send_event_on_commit((device_group(device_id), {"type": "tasks.cancel", "task_ids": task_ids})
                         for device_id, task_ids in by_device.items())


def stats_changed(device_ids: Iterable[int]) -> None:
    """These devices' credit or tokens changed: their sockets send fresh `stats`.
    Receivers coalesce, so a burst costs each socket one refresh per throttle interval."""
    send_event_on_commit((device_group(device_id), {"type": "stats.changed"})
                         for device_id in device_ids)


def leaderboard_changed(volunteer_ids: list[int]) -> None:
    """These volunteers' standings changed: live board pages refresh (coalesced)."""
    if volunteer_ids:
        send_event_on_commit([(LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                                   "volunteer_ids": list(volunteer_ids)})])


def credit_granted(*, volunteer_ids: list[int], device_ids: list[int]) -> None:
    """One `stats` nudge per device that earned credit, one leaderboard nudge in all,
    sent together."""
    if not volunteer_ids:
        return
    send_event_on_commit(
        [(device_group(device_id), {"type": "stats.changed"}) for device_id in device_ids]
        + [(LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                "volunteer_ids": list(volunteer_ids)})])
