"""Every push to a live socket, in one place: the groups, the event types, and sending
after commit (zulip's `send_event_on_commit`).

Domain services call the named senders below inside or outside a transaction; the
event leaves only when the transaction commits (at once outside one), so a socket
never hears of a change that was rolled back. The receivers are the consumers
(gateway/consumers.py for devices, leaderboards/consumers.py for board pages, and the
ChangedFeedConsumer below for project pages (web) and owners' batch pages (owners)): a
message of type "a.b" is handled by their method `a_b`. The WebSocket frames those
consumers then send are PROTOCOL.md's.

Credit and token changes are the exception to one group per device: they go as one
message per transaction to STATS_GROUP, which one listener per web process joins (the
stats pusher, gateway/batching.py), naming the devices; it marks those of its own sockets.
A validation pass granting 70 devices is one channel-layer send, not 70 (each several
Redis round trips with channels_redis), and each process hears it once.

This module sits below every app: it imports no domain app, so any layer may call it.
"""

import asyncio
import logging
import math
import threading
import time
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

LEADERBOARD_GROUP = "leaderboards"
STATS_GROUP = "stats"  # one member per web process: its stats pusher, not a socket


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


def devices_revoked(device_ids: Iterable[int]) -> None:
    """These devices' tokens were revoked (their account was deleted): their open sockets
    close (4403), so nothing more is earned under the old identity."""
    send_event_on_commit((device_group(device_id), {"type": "device.revoked"})
                         for device_id in sorted(set(device_ids)))


def stats_changed(device_ids: Iterable[int]) -> None:
    """These devices' credit or tokens changed: their sockets send fresh `stats`.
    One message for all of them (STATS_GROUP); each process's pusher coalesces, so a
    burst costs each socket one refresh per throttle interval."""
    send_event_on_commit(_stats_messages(device_ids))


def _stats_messages(device_ids: Iterable[int]) -> list[tuple[str, dict]]:
    ids = sorted(set(device_ids))
    return [(STATS_GROUP, {"type": "stats.changed", "device_ids": ids})] if ids else []


def leaderboard_changed(volunteer_ids: list[int]) -> None:
    """These volunteers' standings changed: live board pages refresh (coalesced)."""
    if volunteer_ids:
        send_event_on_commit([(LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                                   "volunteer_ids": list(volunteer_ids)})])


def credit_granted(*, volunteer_ids: list[int], device_ids: list[int]) -> None:
    """One `stats` nudge naming every device that earned credit and one leaderboard
    nudge: two messages in all, sent together."""
    if not volunteer_ids:
        return
    send_event_on_commit(
        _stats_messages(device_ids)
        + [(LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                "volunteer_ids": list(volunteer_ids)})])


# --- progress: project pages and owners' batch pages -------------------------------------

def project_group(project_id: int) -> str:
    """The group a public project page's live socket joins."""
    return f"project.{project_id}"


def batch_group(batch_id: int) -> str:
    """The group an owner's batch page's live socket joins."""
    return f"batch.{batch_id}"


class Coalescer:
    """At most one message per group per `interval` seconds from this process: the first
    goes at once, later ones within the interval fold into one trailing message that a
    timer thread sends when the interval is over. A busy grid validates hundreds of work
    units a second; their pages hear of it once a second, and the validating thread only
    adds to a dict.

    The trailing message goes from the timer thread back onto the event loop the leading
    one went through (daphne's, when the validating thread ran under sync_to_async), so
    an in-process channel layer hears it on its own loop; with no such loop running it
    goes through a loop of its own, as from any script.
    """

    def __init__(self, interval: float = 1.0, send=None) -> None:
        self.interval = interval
        self.send = send or self._send_now
        self.send_trailing = send or self._send_trailing
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = threading.Lock()
        self.last: dict[str, float] = {}
        self.due: dict[str, dict] = {}
        self.timer: threading.Timer | None = None

    def add(self, messages: list[tuple[str, dict]]) -> None:
        now = time.monotonic()
        at_once = []
        with self.lock:
            for group, message in messages:
                if group in self.due or now - self.last.get(group, -math.inf) < self.interval:
                    self.due[group] = message
                else:
                    self.last[group] = now
                    at_once.append((group, message))
            self._schedule(now)
        if at_once:
            self.send(at_once)

    def _schedule(self, now: float) -> None:
        """Under the lock: a timer for the earliest due group, unless one is set."""
        if self.timer is not None or not self.due:
            return
        wait = min(self.last.get(group, -math.inf) + self.interval for group in self.due) - now
        self.timer = threading.Timer(max(wait, 0.0), self.flush)
        self.timer.daemon = True
        self.timer.start()

    def flush(self) -> None:
        now = time.monotonic()
        with self.lock:
            self.timer = None
            ready = [(group, message) for group, message in self.due.items()
                     if now - self.last.get(group, -math.inf) >= self.interval]
            for group, _ in ready:
                del self.due[group]
                self.last[group] = now
            if len(self.last) > 10_000:  # forget groups long quiet
                self.last = {g: t for g, t in self.last.items() if now - t < self.interval}
            self._schedule(now)
        if ready:
            try:
                self.send_trailing(ready)
            except Exception:  # a timer thread has nobody to tell: log, keep going
                logger.exception("sending %d coalesced events failed", len(ready))

    def _send_now(self, messages: list[tuple[str, dict]]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # sync code, as usual: async_to_sync finds daphne's loop
            async_to_sync(self._send_on_loop)(messages)
        else:  # sync code called straight from a coroutine: no waiting on its own loop
            loop.create_task(self._send_on_loop(messages))

    async def _send_on_loop(self, messages: list[tuple[str, dict]]) -> None:
        self.loop = asyncio.get_running_loop()
        await _group_send_all(get_channel_layer(), messages)

    def _send_trailing(self, messages: list[tuple[str, dict]]) -> None:
        loop = self.loop
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(
                _group_send_all(get_channel_layer(), messages), loop)
            future.add_done_callback(_log_failure)
        else:
            self._send_now(messages)


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("sending coalesced events failed", exc_info=future.exception())


PROGRESS = Coalescer()
PROGRESS_CHANGED = {"type": "progress.changed"}


def progress_changed(*, batch_ids: Iterable[int] = (), project_ids: Iterable[int] = ()) -> None:
    """These batches' and projects' counts changed: their live pages refetch, each group
    at most once a second (PROGRESS coalesces), after the current transaction commits."""
    messages = ([(batch_group(pk), PROGRESS_CHANGED) for pk in sorted(set(batch_ids))]
                + [(project_group(pk), PROGRESS_CHANGED) for pk in sorted(set(project_ids))])
    if messages:
        transaction.on_commit(lambda: _progress_add(messages))


def _progress_add(messages: list[tuple[str, dict]]) -> None:
    """Best effort: a page that misses a nudge catches up with the next one, and the
    work that committed must not fail for it."""
    try:
        PROGRESS.add(messages)
    except Exception:
        logger.exception("announcing progress to %d groups failed", len(messages))


class ChangedFeedConsumer(AsyncWebsocketConsumer):
    """A read-only socket that says {"type": "changed"} when its group's data changed, at
    most once per `throttle_s` (several processes may each send once a second); the page
    then refetches what it shows over HTTP, with its own permissions. Subclasses say
    which group a connection joins (`group_for`), or None to refuse it (closed 4404)."""

    throttle_s = 1.0
    CHANGED = '{"type": "changed"}'

    async def group_for(self) -> str | None:
        raise NotImplementedError

    async def connect(self) -> None:
        self.group: str | None = None
        self.last_sent = -math.inf
        self.pending: asyncio.Task | None = None
        group = await self.group_for()
        if group is None:
            await self.close(code=4404)
            return
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.pending is not None:
            self.pending.cancel()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return None  # a read-only feed: whatever the client says is ignored

    async def progress_changed(self, event: dict) -> None:
        if self.pending is not None:
            return  # a trailing message is already due; it covers this change too
        wait = self.last_sent + self.throttle_s - asyncio.get_running_loop().time()
        if wait <= 0:
            await self._send_changed()
        else:
            self.pending = asyncio.create_task(self._send_later(wait))

    async def _send_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self.pending = None
        await self._send_changed()

    async def _send_changed(self) -> None:
        self.last_sent = asyncio.get_running_loop().time()
        await self.send(text_data=self.CHANGED)
