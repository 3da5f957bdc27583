"""The live-leaderboard socket: tells open boards that credit changed, at most once a second.

Thin on purpose: it carries no data, only "changed"; the page then refetches the JSON
of the board it shows (so every viewer sees their own page, order and highlight).
events.credit_granted sends one `leaderboard.changed` per grant; a busy grid makes hundreds a
second, so each socket forwards the first at once and folds the rest into one
trailing message per interval.
"""

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer

from sparecycles.events import LEADERBOARD_GROUP

CHANGED = json.dumps({"type": "changed"})


class LeaderboardConsumer(AsyncWebsocketConsumer):
    throttle_s = 1.0

    async def connect(self) -> None:
        self.last_sent = float("-inf")
        self.pending: asyncio.Task | None = None
        await self.channel_layer.group_add(LEADERBOARD_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.pending is not None:
            self.pending.cancel()
        await self.channel_layer.group_discard(LEADERBOARD_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return None  # a read-only feed: whatever the client says is ignored

    async def leaderboard_changed(self, event: dict) -> None:
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
        await self.send(text_data=CHANGED)
