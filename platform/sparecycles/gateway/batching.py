"""Requests and results from every socket of a process go to the database together.

One `Intake` per event loop (daphne runs one per process). Sockets hand their
reports to it and wait for their acks. While one batch is in the database,
the next one gathers, so a quiet server stores each result at once and a busy
one stores hundreds per transaction (no timer: batching comes from load).
After the commit the acks go out, and the stored work units queue for
validation. Storing and validating each run in a thread of their own, beside
the thread that serves requests, so neither delays the other. (`manage.py
serve` validates in a process of its own instead: VALIDATE_IN_WEB.)
`Feeder` does the same for `request` frames (scheduler.dispatch).
"""

import asyncio
import logging
import math
import threading
import weakref
from contextlib import nullcontext

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from sparecycles.credit.selectors import volunteers_stats
from sparecycles.events import STATS_GROUP
from sparecycles.ledger.selectors import tokens_str, volunteers_balance_micro
from sparecycles.scheduler.dispatch import Ask, tasks_dispatch_many
from sparecycles.scheduler.intake import Ack, Report, results_store
from sparecycles.scheduler.services import _rng, task_payload
from sparecycles.validation.services import workunits_validate
from sparecycles.validation.wakeup import validation_wanted

logger = logging.getLogger(__name__)

MAX_BATCH = 500  # reports per transaction
MAX_VALIDATE = 100  # work units per validation transaction (short: it holds their locks)
MAX_ASKS = 100  # requests per dispatch transaction
# A lightly loaded server would run one transaction per frame, each paying the fixed cost
# of a batch (the candidate window, standings, quotas; validation's locks and grants): a
# result cost about 4x its price at saturation. So before each transaction a loop with
# fewer than ENOUGH items waits for others, at most GATHER_S, and goes as soon as ENOUGH
# are there. At saturation the next batch has gathered while the last one ran and goes at
# once; an idle loop sleeps on its event.
STORE_GATHER_S, STORE_ENOUGH = 0.02, 16  # in the ack's path: short
# In a request's path: short for a device that holds no task (a new one, or one told "no
# tasks" asking again), longer while every asker still holds tasks (the batch extension's
# low-water mark, or v1's one request per freed slot): each of those runs for seconds, and
# the socket answers its other frames meanwhile (consumers.on_request).
DISPATCH_GATHER_S, DISPATCH_ENOUGH = 0.05, 16
DISPATCH_PATIENT_S = 0.5
VALIDATE_GATHER_S, VALIDATE_ENOUGH = 1.0, 64  # in no one's path: credit comes a little later
# The stats listener renews its STATS_GROUP membership this often (the layers expire it
# after a day) and, after an error (Redis restarting), tries again this much later.
STATS_REJOIN_S, STATS_RETRY_S = 600.0, 1.0


class Intake:
    def __init__(self) -> None:
        self.reports: list[tuple[Report, asyncio.Future]] = []
        self.to_validate: set[int] = set()
        self.report_ready = asyncio.Event()
        self.validate_ready = asyncio.Event()
        self.reports_grew = asyncio.Event()
        self.validate_grew = asyncio.Event()
        self.tasks = [asyncio.create_task(self._store_loop(), name="results-store"),
                      asyncio.create_task(self._validate_loop(), name="results-validate")]

    async def submit(self, report: Report) -> Ack:
        """Store `report`; returns its ack once it is committed."""
        future = asyncio.get_running_loop().create_future()
        self.reports.append((report, future))
        self.report_ready.set()
        if len(self.reports) >= STORE_ENOUGH:  # else the gathering loop sleeps on
            self.reports_grew.set()
        return await future

    async def _store_loop(self) -> None:
        # A thread of its own: a report waiting on a row lock must not hold up dispatch.
        store = database_sync_to_async(_store, thread_sensitive=False)
        while True:
            await self.report_ready.wait()
            self.report_ready.clear()
            while self.reports:
                await _gather(lambda: len(self.reports), self.reports_grew, STORE_ENOUGH,
                              STORE_GATHER_S)
                batch, self.reports = self.reports[:MAX_BATCH], self.reports[MAX_BATCH:]
                try:
                    stored = await store([report for report, _ in batch])
                except Exception as exc:  # the sockets answer server_error; nothing was kept
                    logger.exception("storing %d results failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), ack in zip(batch, stored.acks, strict=True):
                    if not future.done():
                        future.set_result(ack)
                if stored.workunit_ids and settings.SPARECYCLES["VALIDATE_IN_WEB"]:
                    self.to_validate.update(stored.workunit_ids)
                    self.validate_ready.set()
                    if len(self.to_validate) >= VALIDATE_ENOUGH:
                        self.validate_grew.set()

    async def _validate_loop(self) -> None:
        validate = database_sync_to_async(_validate, thread_sensitive=False)
        while True:
            await self.validate_ready.wait()
            self.validate_ready.clear()
            while self.to_validate:
                await _gather(lambda: len(self.to_validate), self.validate_grew,
                              VALIDATE_ENOUGH, VALIDATE_GATHER_S)
                chunk = sorted(self.to_validate)[:MAX_VALIDATE]
                self.to_validate.difference_update(chunk)
                try:
                    await validate(chunk)
                except Exception:  # left pending: housekeeping's sweep validates them
                    logger.exception("validating %d work units failed", len(chunk))


# SQLite has one writer at a time. Its busy handler makes a waiting writer sleep 1, 2, 5,
# ... up to 100 ms between looks at the lock, so a store behind a validation pass woke up
# to 100 ms after the lock was free: the ack's tail. The store, dispatch and validation
# threads of the embedded server take turns on this lock instead, and the next one goes
# the moment the last one commits. (PostgreSQL locks rows: no such turn.)
_sqlite_writer = threading.Lock()


def _one_writer():
    return _sqlite_writer if connection.vendor == "sqlite" else nullcontext()


def _store(reports: list[Report]):
    with _one_writer():
        stored = results_store(reports)
    if stored.workunit_ids and not settings.SPARECYCLES["VALIDATE_IN_WEB"]:
        validation_wanted()  # the validator process sleeps until told
    return stored


async def _gather(count, grew: asyncio.Event, enough: int, seconds: float, *,
                  patient_s: float | None = None, patient=None) -> None:
    """Let a batch gather until `enough` items wait (`count()`), for at most `seconds`, or
    `patient_s` while `patient()` holds. `grew` is set by whoever adds an item that may
    end the wait (the one that makes `enough`, or one that ends the patience); it wakes
    the wait to look again. Items that change nothing do not wake it: a lightly loaded
    loop sleeps through its gathering once, not once per item."""
    if max(seconds, patient_s or 0) <= 0 or count() >= enough:
        return
    loop = asyncio.get_running_loop()
    started = loop.time()
    while count() < enough:
        wait = patient_s if patient_s is not None and patient() else seconds
        left = started + wait - loop.time()
        if left <= 0:
            return
        grew.clear()
        try:
            async with asyncio.timeout(left):  # one timer, no task per wait
                await grew.wait()
        except TimeoutError:
            return


def _validate(workunit_ids: list[int]) -> None:
    with _one_writer():
        workunits_validate(workunit_ids=workunit_ids)


class Feeder:
    """Requests for tasks, served together (one ask per device per batch)."""

    def __init__(self) -> None:
        self.asks: list[tuple[Ask, asyncio.Future]] = []
        self.ready = asyncio.Event()
        self.grew = asyncio.Event()
        self.task = asyncio.create_task(self._loop(), name="tasks-dispatch")

    async def submit(self, ask: Ask) -> dict:
        """Returns {"tasks": [payload, ...], "retry_after_s": n}."""
        future = asyncio.get_running_loop().create_future()
        self.asks.append((ask, future))
        self.ready.set()
        if len(self.asks) >= DISPATCH_ENOUGH or not ask.known_task_ids:
            self.grew.set()  # enough to go, or an asker with nothing to do: no patience
        return await future

    async def _loop(self) -> None:
        # A thread of its own (not the process's one thread-sensitive thread, which the
        # sockets' own calls share): a dispatch batch holds up no one else's call.
        serve = database_sync_to_async(_serve, thread_sensitive=False)
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.asks:
                await _gather(lambda: len(self.asks), self.grew, DISPATCH_ENOUGH,
                              DISPATCH_GATHER_S, patient_s=DISPATCH_PATIENT_S,
                              patient=lambda: all(ask.known_task_ids for ask, _ in self.asks))
                batch, rest, seen = [], [], set()
                # An ask whose socket closed meanwhile (its future cancelled) claims nothing.
                self.asks = [item for item in self.asks if not item[1].done()]
                for item in self.asks:
                    if len(batch) < MAX_ASKS and item[0].device_id not in seen:
                        seen.add(item[0].device_id)
                        batch.append(item)
                    else:
                        rest.append(item)
                self.asks = rest
                if not batch:
                    continue
                try:  # nothing may end this loop: every later ask of the process would hang
                    answers = await serve([ask for ask, _ in batch])
                    for (_, future), answer in zip(batch, answers, strict=True):
                        if not future.done():
                            future.set_result(answer)
                except Exception as exc:  # the sockets answer server_error
                    logger.exception("dispatching to %d devices failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)


def _serve(asks: list[Ask]) -> list[dict]:
    with _one_writer():
        dispatched = tasks_dispatch_many(asks, rng=_rng)
    return [{"tasks": [task_payload(r) for r in d.replicas], "retry_after_s": d.retry_after_s}
            for d in dispatched]


class StatsPusher:
    """`stats` pushes of every socket of a process, computed together.

    A socket whose volunteer earned credit is marked; the pusher wakes on the first
    mark, reads every marked volunteer's stats in one trip to the database, sends each
    socket its frame, then rests STATS_THROTTLE_S before the next round (only while marks
    keep coming: an idle server sleeps). So each socket gets at most one `stats` per
    interval covering every grant meanwhile, as before, and a process makes about two
    queries per interval however many devices earn credit.

    Marks come from the channel layer: a grant sends one message naming its devices to
    events.STATS_GROUP, which this pusher's own channel joins when the first socket
    registers (its hello); the pusher marks the sockets of those devices it holds. Other
    processes' devices are not its concern: their pushers hear the same message."""

    def __init__(self) -> None:
        self.marked: dict[object, int] = {}  # socket -> its volunteer
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._loop(), name="stats-push")
        self.sockets: dict[int, dict[object, int]] = {}  # device -> its sockets -> volunteer
        self.device_of: dict[object, int] = {}
        self.listening: asyncio.Task | None = None

    def register(self, socket, *, device_id: int, volunteer_id: int) -> None:
        """`socket` is `device_id`'s (of `volunteer_id`): grants to the device mark it."""
        self.forget(socket)
        self.device_of[socket] = device_id
        self.sockets.setdefault(device_id, {})[socket] = volunteer_id
        if self.listening is None:
            self.listening = asyncio.create_task(self._listen(), name="stats-listen")

    def mark(self, socket, volunteer_id: int) -> None:
        """`socket` (with an async `send_stats(frame)`) gets fresh stats next round."""
        self.marked[socket] = volunteer_id
        self.ready.set()

    def forget(self, socket) -> None:
        self.marked.pop(socket, None)
        device_id = self.device_of.pop(socket, None)
        if device_id is not None:
            held = self.sockets.get(device_id, {})
            held.pop(socket, None)
            if not held:
                self.sockets.pop(device_id, None)

    def heard(self, message: dict) -> None:
        """A STATS_GROUP message: mark the sockets of the devices it names."""
        if message.get("type") != "stats.changed":
            logger.warning("the stats listener ignored a message of type %r",
                           message.get("type"))
            return
        for device_id in message.get("device_ids") or ():
            for socket, volunteer_id in self.sockets.get(device_id, {}).items():
                self.mark(socket, volunteer_id)

    async def _listen(self) -> None:
        """Hear STATS_GROUP on a channel of this pusher's own. The membership is renewed
        every STATS_REJOIN_S (channel layers drop it after their `group_expiry`, a day
        by default) and after any error (a restarted Redis forgot it), a second later.
        Between messages it waits on the layer (nothing polls: an idle server sleeps)."""
        loop = asyncio.get_running_loop()
        layer = get_channel_layer()
        channel: str | None = None
        receiving: asyncio.Future | None = None  # never cancelled: that could lose a message
        joined = -math.inf
        try:
            while True:
                try:
                    if channel is None:
                        channel = await layer.new_channel()
                    if loop.time() - joined >= STATS_REJOIN_S:
                        await layer.group_add(STATS_GROUP, channel)
                        joined = loop.time()
                    if receiving is None:
                        receiving = asyncio.ensure_future(layer.receive(channel))
                    done, _ = await asyncio.wait(
                        {receiving}, timeout=joined + STATS_REJOIN_S - loop.time())
                    if not done:
                        continue  # time to renew the membership; the receive goes on
                    message, receiving = receiving.result(), None
                    self.heard(message)
                except Exception:
                    if receiving is not None and receiving.done():
                        receiving = None  # it failed: the next one starts afresh
                    joined = -math.inf
                    logger.exception("the stats listener failed; it joins %s again in %s s",
                                     STATS_GROUP, STATS_RETRY_S)
                    await asyncio.sleep(STATS_RETRY_S)
        finally:
            if receiving is not None:
                receiving.cancel()

    async def _loop(self) -> None:
        read = database_sync_to_async(stats_frames, thread_sensitive=False)
        while True:
            await self.ready.wait()
            self.ready.clear()
            marked, self.marked = self.marked, {}
            try:
                frames = await read(sorted(set(marked.values())))
            except Exception:  # the next grant pushes again; stats are advisory
                logger.exception("reading stats for %d sockets failed", len(marked))
                frames = {}
            for socket, volunteer_id in marked.items():
                if volunteer_id in frames:
                    try:
                        await socket.send_stats(frames[volunteer_id])
                    except Exception:  # a socket closing meanwhile must not stop the rest
                        logger.debug("a stats push failed", exc_info=True)
            await asyncio.sleep(settings.SPARECYCLES["STATS_THROTTLE_S"])


def stats_frames(volunteer_ids: list[int]) -> dict[int, dict]:
    """PROTOCOL.md's `stats` frame for each volunteer (two queries in all)."""
    stats = volunteers_stats(volunteer_ids)
    tokens = volunteers_balance_micro(volunteer_ids)
    return {pk: {"type": "stats", **stats[pk], "tokens": tokens_str(tokens[pk])}
            for pk in volunteer_ids}


_intakes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Intake]" = (
    weakref.WeakKeyDictionary())
_feeders: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Feeder]" = (
    weakref.WeakKeyDictionary())
_pushers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StatsPusher]" = (
    weakref.WeakKeyDictionary())


def intake() -> Intake:
    """This event loop's intake, started on first use."""
    loop = asyncio.get_running_loop()
    found = _intakes.get(loop)
    if found is None:
        found = _intakes[loop] = Intake()
    return found


def feeder() -> Feeder:
    """This event loop's feeder, started on first use."""
    loop = asyncio.get_running_loop()
    found = _feeders.get(loop)
    if found is None:
        found = _feeders[loop] = Feeder()
    return found


def stats_pusher() -> StatsPusher:
    """This event loop's stats pusher, started on first use."""
    loop = asyncio.get_running_loop()
    found = _pushers.get(loop)
    if found is None:
        found = _pushers[loop] = StatsPusher()
    return found
