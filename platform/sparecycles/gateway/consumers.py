"""The volunteer WebSocket (PROTOCOL.md v1). Thin: parse, call a service, answer."""

import asyncio
import json
import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from sparecycles.credit.selectors import volunteer_totals
from sparecycles.events import device_group
from sparecycles.ledger.selectors import volunteer_tokens
from sparecycles.scheduler import services as scheduler
from sparecycles.scheduler.dispatch import Ask
from sparecycles.scheduler.intake import Report
from sparecycles.volunteers.models import Device
from sparecycles.volunteers.services import device_connect

from . import batching, ratelimit
from .protocol import (
    EXTENSIONS,
    MAX_BATCH_RESULTS,
    PROTOCOL_VERSION,
    FrameError,
    Hello,
    Ping,
    Progress,
    Request,
    Result,
    Results,
    error_frame,
    parse_batch_item,
    parse_client_frame,
)

logger = logging.getLogger(__name__)

CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 4400
CLOSE_NO_HELLO = 4401
CLOSE_BAD_PROTOCOL = 4402
CLOSE_TOO_MANY = 4429
# Requests a socket may have waiting behind the one being served (on_request).
MAX_WAITING_REQUESTS = 4
# The answer to a frame the server failed on (receive, and a request served beside it).
SERVER_ERROR = error_frame("server_error", "The server could not handle that frame; "
                                           "try again later.")


class VolunteerConsumer(AsyncWebsocketConsumer):
    device: Device | None = None

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch, without its `aclose_old_connections()` before each message:
        that is a hop to the process's one thread-sensitive thread for every frame and
        every layer event, where it queued behind whatever ran there (a dispatch batch:
        the ack's tail). This consumer touches the database only through
        database_sync_to_async and the batching loops, which close stale connections
        around each call themselves."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.device = None
        self.violations = 0
        self.sent_task_ids: set[str] = set()
        self.limits = settings.SPARECYCLES
        self.address = (self.scope.get("client") or ["", 0])[0] or ""
        self.network = scheduler.network_of(self.address)
        self.frames = ratelimit.frame_bucket()
        self.request_turn = asyncio.Lock()  # this socket's requests are served one at a time
        self.requests: set[asyncio.Task] = set()  # being served or waiting their turn
        self.cancels_after_tasks: dict[str, None] = {}  # in order; see tasks_cancel
        self.admitted = False
        self.admission = await ratelimit.connection_admit(self.address)  # across processes
        if self.admission.refusal is not None:
            logger.info("refused a volunteer connection from %s: %s", self.address,
                        self.admission.refusal)
            await self.close(code=CLOSE_TOO_MANY)  # before accept: the handshake is denied
            return
        self.admitted = True
        await self.accept()

    async def close(self, code=None, reason=None) -> None:
        """Whoever closes (a policy close, a revoked token, the client), requests still
        waiting are dropped: a socket that is going claims no more tasks."""
        self._drop_requests()
        await super().close(code=code, reason=reason)

    def _drop_requests(self) -> None:
        for request in list(getattr(self, "requests", ())):
            request.cancel()  # tasks already claimed stay in flight: a reconnect gets them

    async def disconnect(self, code: int) -> None:
        self._drop_requests()
        batching.stats_pusher().forget(self)
        if getattr(self, "admitted", False):
            self.admitted = False
            await ratelimit.connection_release(self.address, self.admission)
        if self.device is not None:
            await self.channel_layer.group_discard(device_group(self.device.pk), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await self._receive(text_data, bytes_data)
        except Exception:  # nothing a client sends may crash the socket without an answer
            logger.exception("Unhandled error on the volunteer socket")
            await self.send_json(SERVER_ERROR)

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > self.limits["MAX_FRAME_BYTES"]:
            await self.close(code=CLOSE_TOO_BIG)
            return
        if not self.frames.take():
            # Not a violation: a fast, honest client just waits and sends again.
            await self.send_json(error_frame("rate_limited",
                                             "Too many frames: slow down and send it again."))
            return
        if text_data is None:
            await self._violation("bad_frame", "Send text frames holding JSON, not binary frames.")
            return
        try:
            message = parse_client_frame(text_data)
        except FrameError as exc:
            if self.device is None:
                await self.close(code=CLOSE_NO_HELLO)
                return
            if exc.task_id:  # a result whose output is refused: the client may drop it
                await self.send_json({"type": "ack", "task_id": exc.task_id,
                                      "accepted": False, "reason": exc.code})
            await self._violation(exc.code, exc.message)
            return
        if self.device is None and not isinstance(message, Hello):
            await self.close(code=CLOSE_NO_HELLO)
            return
        handler = self.HANDLERS[type(message)]
        await handler(self, message)

    async def _violation(self, code: str, message: str) -> None:
        self.violations += 1
        await self.send_json(error_frame(code, message))
        if self.violations >= self.limits["MAX_VIOLATIONS"]:
            await self.close(code=CLOSE_POLICY)

    # --- handlers -----------------------------------------------------------
    async def on_hello(self, message: Hello) -> None:
        if self.device is not None:
            await self._violation("bad_frame", "hello was already sent on this connection.")
            return
        if message.protocol != PROTOCOL_VERSION:
            await self.send_json(error_frame(
                "unsupported_protocol",
                f"This server speaks protocol {PROTOCOL_VERSION}; please update your client.",
            ))
            await self.close(code=CLOSE_BAD_PROTOCOL)
            return
        session = await database_sync_to_async(device_connect)(
            token=message.device_token,
            user=self.scope.get("user"),
            client_name=message.client.name,
            client_version=message.client.version,
            capabilities=message.capabilities.model_dump(),
            host=message.host.model_dump() if message.host is not None else None,
        )
        self.device = session.device
        await self.channel_layer.group_add(device_group(self.device.pk), self.channel_name)
        # Grants name their devices to every process's pusher (events.STATS_GROUP).
        batching.stats_pusher().register(self, device_id=self.device.pk,
                                         volunteer_id=self.device.volunteer_id)
        volunteer = self.device.volunteer
        credit = await database_sync_to_async(volunteer_totals)(volunteer_id=volunteer.pk)
        welcome: dict[str, Any] = {
            "type": "welcome",
            "protocol": PROTOCOL_VERSION,
            "device_id": self.device.public_id,
            # Credit unrounded, plus the exact micro-credits (as in `stats`).
            "volunteer": {"name": volunteer.name, "credit": credit.credit,
                          "credit_micro": credit.credit_micro,
                          "tokens": await database_sync_to_async(volunteer_tokens)(volunteer)},
            "max_inflight": self.limits["MAX_INFLIGHT"],
            "heartbeat_s": self.limits["HEARTBEAT_S"],
            # Optional extensions of v1 this server speaks (README: the volunteer protocol).
            "extensions": EXTENSIONS,
            "max_batch": MAX_BATCH_RESULTS,
        }
        if session.new_token:
            welcome["device_token"] = session.new_token
        await self.send_json(welcome)

    async def on_request(self, message: Request) -> None:
        """Served beside the socket's frame loop, not in it: a dispatch batch may wait for
        company (gateway.batching's patience, while the askers still hold tasks), and the
        socket's next frames (a result's ack, a pong) must not wait behind it. A socket's
        requests are served one at a time, in order (each ask names the tasks those
        before it sent); past MAX_WAITING_REQUESTS more, a request is answered at once
        with no tasks and the usual retry_after_s (honest clients keep one outstanding)."""
        if len(self.requests) > MAX_WAITING_REQUESTS:
            await self.send_json({"type": "tasks", "tasks": [],
                                  "retry_after_s": self.limits["RETRY_AFTER_S"]})
            return
        request = asyncio.create_task(self._serve_request(message.slots))
        self.requests.add(request)
        request.add_done_callback(self.requests.discard)

    async def _serve_request(self, slots: int) -> None:
        async with self.request_turn:
            try:
                dispatch = await batching.feeder().submit(Ask(
                    device_id=self.device.pk, slots=slots,
                    known_task_ids=frozenset(self.sent_task_ids), network=self.network))
                tasks = dispatch["tasks"]
                self.sent_task_ids.update(task["task_id"] for task in tasks)
                await self.send_json({"type": "tasks",
                                      "retry_after_s": dispatch["retry_after_s"],
                                      "tasks": tasks})
            except asyncio.CancelledError:
                raise
            except Exception:  # as receive(): the socket answers, and keeps serving
                logger.exception("Serving a request on the volunteer socket failed")
                await self._send_quietly(SERVER_ERROR)
            # Cancels that came meanwhile go after the tasks frame (tasks_cancel). No await
            # between the last look and the lock's release: a later one is sent at once.
            while self.cancels_after_tasks:
                task_ids, self.cancels_after_tasks = list(self.cancels_after_tasks), {}
                self.sent_task_ids.difference_update(task_ids)
                await self._send_quietly({"type": "cancel", "task_ids": task_ids})

    async def _send_quietly(self, frame: dict) -> None:
        try:
            await self.send_json(frame)
        except Exception:
            logger.debug("the socket closed before its %s frame", frame["type"], exc_info=True)

    async def on_result(self, message: Result) -> None:
        refusal = self._refusal(message)
        if refusal:
            await self.send_json({"type": "ack", "task_id": message.task_id, "accepted": False,
                                  "reason": refusal})
            return
        ack = await batching.intake().submit(self._report(message))
        if ack.accepted:
            self.sent_task_ids.discard(message.task_id)
        await self.send_json(ack.frame())

    def _refusal(self, message: Result) -> str:
        """Why `message` is refused before the database sees it ("" if it is not)."""
        if not ratelimit.device_results.take(self.device.pk):
            return "rate_limited"
        if message.status == "ok":
            encoded = json.dumps(message.output, separators=(",", ":"))
            if len(encoded) > self.limits["MAX_OUTPUT_BYTES"]:
                return "too_large"
        return ""

    def _report(self, message: Result) -> Report:
        return Report(device_id=self.device.pk, task_id=message.task_id,
                      ok=message.status == "ok", output=message.output, error=message.error,
                      elapsed_ms=message.elapsed_ms)

    async def on_results(self, message: Results) -> None:
        """Extension "batch": each item is handled as a `result` frame would be (the same
        checks, the same rate limit per result, the same ack), all answered in one `acks`
        frame in the items' order; then, if the frame asks for `slots`, a `tasks` frame,
        dispatched after the results are stored (their slots are free by then)."""
        acks: list[dict[str, Any] | None] = [None] * len(message.results)
        problems: list[str] = []
        reports: list[tuple[int, Report]] = []
        for index, item in enumerate(message.results):
            try:
                result = parse_batch_item(item)
            except FrameError as exc:
                acks[index] = {"task_id": exc.task_id or None, "accepted": False,
                               "reason": "invalid"}
                problems.append(f"results[{index}]: {exc.message}")
                continue
            refusal = self._refusal(result)
            if refusal:
                acks[index] = {"task_id": result.task_id, "accepted": False, "reason": refusal}
            else:
                reports.append((index, self._report(result)))
        if reports:
            intake = batching.intake()
            stored = await asyncio.gather(*(intake.submit(report) for _, report in reports))
            for (index, _), ack in zip(reports, stored, strict=True):
                if ack.accepted:
                    self.sent_task_ids.discard(ack.task_id)
                frame = ack.frame()
                del frame["type"]
                acks[index] = frame
        if acks:
            await self.send_json({"type": "acks", "acks": acks})
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            # Each bad item counts as the bad `result` frame it stands for: one violation per
            # frame would let a client send max_batch times more bad results before the close.
            self.violations += len(problems) - 1
            await self._violation("invalid", "; ".join(problems[:3]) + more)
            if self.violations >= self.limits["MAX_VIOLATIONS"]:
                return
        if message.slots is not None:
            await self.on_request(Request(type="request", slots=message.slots))

    async def on_progress(self, message: Progress) -> None:
        return None  # accepted silently; progress is advisory in protocol v1

    async def on_ping(self, message: Ping) -> None:
        await self.send_json({"type": "pong"})

    HANDLERS = {
        Hello: on_hello,
        Request: on_request,
        Result: on_result,
        Results: on_results,
        Progress: on_progress,
        Ping: on_ping,
    }

    # --- channel-layer events ------------------------------------------------
    async def stats_changed(self, event: dict) -> None:
        """Credit was granted to this device's volunteer: push PROTOCOL.md's `stats`, at
        most once per throttle interval, covering every grant meanwhile (a fast device
        earns many per second). The process's pusher reads all its sockets' stats at once.
        Grants reach the pusher directly (events.STATS_GROUP); this handler serves a
        `stats.changed` sent to the device's own group (a process of an older release
        during a rolling upgrade, a script)."""
        if self.device is not None:
            batching.stats_pusher().mark(self, self.device.volunteer_id)

    async def device_revoked(self, event: dict) -> None:
        """This device's token was revoked: close, so it works no more under it (a client
        that reconnects with the old token is a new device, as PROTOCOL.md's hello says)."""
        await self.close(code=4403)

    async def send_stats(self, frame: dict) -> None:
        await self.send_json(frame)

    async def tasks_cancel(self, event: dict) -> None:
        """Sent even for tasks handed out on an earlier connection: the client may still
        hold them. While a request is being served, a cancel of tasks this socket did not
        send before waits for that request's `tasks` frame (they may be in it: a client
        told "cancel T" before "tasks [T]" would run T), and goes right after it."""
        task_ids = list(event["task_ids"])
        if self.request_turn.locked():  # only tasks this socket sent before go at once
            later = [t for t in task_ids if t not in self.sent_task_ids]
            self.cancels_after_tasks.update(dict.fromkeys(later))
            task_ids = [t for t in task_ids if t in self.sent_task_ids]
            if not task_ids:
                return
        self.sent_task_ids.difference_update(task_ids)
        await self.send_json({"type": "cancel", "task_ids": task_ids})

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

