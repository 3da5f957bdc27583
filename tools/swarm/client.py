"""One simulated volunteer: a real WebSocket client speaking PROTOCOL.md v1.

It says hello (keeping the device token it is given, and reconnecting with
it), asks for as many tasks as `max_inflight` allows (waiting `retry_after_s`
after an empty answer), fetches each app's code over HTTP once, checks its
sha256, runs the entry function natively in a thread (so the event loop keeps
answering pings), and reports results. Results stay queued until acked and are
sent again after a reconnect. A behaviour (behaviours.py) decides how honest
all this is.

When `welcome` advertises the extension "batch" (README: the volunteer protocol), a
volunteer fetches work the way BOINC's client does, with a low and a high water mark: it
asks for tasks only once the tasks it holds drop to `max_inflight // 2`, and then for enough
to fill up to `max_inflight`; finished results wait for that request and go in the same
`results` frame (at most REPORT_WITHIN_S later, sooner when they fill a frame). `v1_frames`
keeps to plain v1 frames (`request`, one `result` each) even then.

No Django here: the swarm is a pure client and runs against any server.
"""

import asyncio
import functools
import hashlib
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from .behaviours import Behaviour

PROTOCOL_VERSION = 1
CLIENT_NAME = "swarm"
CLIENT_VERSION = "1.0"
# Close codes after which reconnecting cannot help (PROTOCOL.md / README).
FATAL_CLOSE_CODES = {1008: "policy violation", 1009: "frame too big", 4400: "too many bad frames",
                     4401: "no hello first", 4402: "unsupported protocol",
                     4429: "too many connections from this address"}
HTTP_TIMEOUT_S = 15.0
# Refusals that mean "not now" rather than "never": the result is kept and sent again.
RETRY_LATER = {"rate_limited"}
# Error frames saying the server failed (e.g. its database is restarting) rather than that we
# did something wrong: whatever it dropped (a request, results) is sent again after a pause.
SERVER_TROUBLE = {"server_error"}
THROTTLE_S = 1.0  # pause after the server says we send too fast
MAX_ERROR_CHARS = 1000
REPORT_WITHIN_S = 2.0  # batch extension: a finished result waits for a request at most this long

# Loopback only: urllib would otherwise honour *_proxy variables.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SwarmError(Exception):
    """Something the person running the swarm must fix; the message says what."""


class ServerUnavailable(Exception):
    """The server answered, but could not serve us just now: connect again after a pause."""


def endpoints(url: str) -> tuple[str, str]:
    """(http base, websocket URL) from "http://host:port" (or ws://, https://, wss://)."""
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.hostname:
        raise SwarmError(f"{url!r} is not a server address; give one like http://127.0.0.1:8000.")
    secure = parsed.scheme in ("https", "wss")
    netloc = parsed.netloc.rsplit("@", 1)[-1]
    base = f"{'https' if secure else 'http'}://{netloc}"
    return base, f"{'wss' if secure else 'ws'}://{netloc}/ws/volunteer/"


def http_get(url: str, *, timeout: float = HTTP_TIMEOUT_S) -> tuple[int, bytes]:
    """A blocking GET (call it in a thread); raises SwarmError when nothing answers."""
    try:
        with _http.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SwarmError(f"No answer from {url}: {reason}.") from None


# --- app code -------------------------------------------------------------------------

class CodeError(Exception):
    """The app's code could not be fetched, was not what the task promised, or does not compile."""


@dataclass(frozen=True)
class AppCode:
    label: str  # "mandelbrot v3", for tracebacks
    source: str  # hash-checked; compiles


class CodeCache:
    """Each app version's code, fetched once per swarm, hash-checked and compiled."""

    def __init__(self, http_base: str):
        self.http_base = http_base
        self._code: dict[tuple[str, int, str], AppCode] = {}
        self._locks: dict[tuple[str, int, str], asyncio.Lock] = {}
        self.fetches = 0
        self.templates: dict[tuple[str, int], Any] = {}  # a real output per app, for cheaters

    async def get(self, app: dict) -> AppCode:
        key = (str(app["name"]), int(app["version"]), str(app["sha256"]))
        if key in self._code:
            return self._code[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._code:
                self._code[key] = await self._fetch(app)
        return self._code[key]

    async def _fetch(self, app: dict) -> AppCode:
        url = urllib.parse.urljoin(self.http_base + "/", str(app["code_url"]))
        if urllib.parse.urlsplit(url).netloc != urllib.parse.urlsplit(self.http_base).netloc:
            raise CodeError(f"code_url {app['code_url']!r} points away from the server.")
        self.fetches += 1
        try:
            status, body = await asyncio.to_thread(http_get, url)
        except SwarmError as exc:
            raise CodeError(str(exc)) from None
        if status != 200:
            raise CodeError(f"GET {url} answered HTTP {status}.")
        digest = hashlib.sha256(body).hexdigest()
        if digest != app["sha256"]:
            raise CodeError(f"Code from {url} has sha256 {digest}, the task promised "
                            f"{app['sha256']}; refusing to run it.")
        label = f"{app['name']} v{app['version']}"
        try:
            source = body.decode("utf-8")
            _compiled(source, label)
        except (UnicodeDecodeError, SyntaxError, ValueError) as exc:
            raise CodeError(f"{label} does not compile: {exc}") from None
        return AppCode(label=label, source=source)


@functools.lru_cache(maxsize=64)
def _compiled(source: str, label: str) -> CodeType:
    return compile(source, f"<{label}>", "exec")


def run_entry(source: str, label: str, entry: str, input: Any) -> Any:
    """Run the app in a fresh namespace, as a browser worker would; returns JSON-shaped output.

    Takes the source, not a code object, so it can run in a worker process too.
    """
    namespace: dict[str, Any] = {"__name__": "swarm_app"}
    exec(_compiled(source, label), namespace)  # the source's sha256 was checked
    function = namespace.get(entry)
    if not callable(function):
        raise NameError(f"the app defines no function {entry!r}")
    # A JSON round trip: tuples become lists, as they would on the wire.
    return json.loads(json.dumps(function(input)))


# --- statistics ------------------------------------------------------------------------

@dataclass
class ClientStats:
    sessions: int = 0
    reconnects: int = 0
    connection_failures: int = 0
    requests: int = 0
    results_frames: int = 0  # batch extension: `results` frames sent
    batched_results: int = 0  # results sent in them
    empty_replies: int = 0
    tasks_received: int = 0
    tasks_repeated: int = 0  # in-flight tasks the server sent again after a reconnect
    results_sent: int = 0  # first sends only
    errors_reported: int = 0  # of those, status "error"
    retransmits: int = 0  # results sent again after a reconnect
    duplicates_sent: int = 0  # acked results resent on purpose
    accepted: int = 0
    duplicates: int = 0
    refused: Counter = field(default_factory=Counter)
    cancelled: int = 0  # tasks dropped on the server's cancel
    vanished: int = 0
    code_errors: int = 0
    error_frames: Counter = field(default_factory=Counter)
    pongs: int = 0
    stats_frames: int = 0
    unexpected_acks: int = 0  # e.g. the second ack of a result resent after a throttle
    rate_limited: int = 0  # frames or results the server asked us to send again later
    server_errors: int = 0  # "server_error" frames (the server failed; we sent again later)
    unacked_at_stop: int = 0
    held_at_stop: int = 0  # tasks still being computed or held back when the run ended
    dispatch_latency_s: list[float] = field(default_factory=list)
    ack_latency_s: list[float] = field(default_factory=list)


# --- the volunteer ---------------------------------------------------------------------

class SimulatedVolunteer:
    """One device. `run(stop)` until `stop` is set, the volunteer vanishes for good or fails."""

    def __init__(self, *, url: str, behaviour: Behaviour, code_cache: CodeCache | None = None,
                 executor: Executor | None = None, rng: random.Random | None = None,
                 token: str | None = None, label: str = "", duplicate_p: float = 0.0,
                 keep_acked: bool = False, reconnect_attempts: int = 5,
                 on_ack=None, v1_frames: bool = False):
        self.http_base, self.ws_url = endpoints(url)
        self.behaviour = behaviour
        self.code_cache = code_cache or CodeCache(self.http_base)
        self.executor = executor
        self.rng = rng or random.Random()
        self.token = token
        self.label = label or behaviour.name
        self.duplicate_p = duplicate_p
        self.keep_acked = keep_acked
        self.reconnect_attempts = reconnect_attempts
        self.on_ack = on_ack  # called with the loop time of every ack (the runner's progress clock)
        self.v1_frames = v1_frames  # never use the batch extension, even when offered
        self.batch = False  # this connection's server speaks the batch extension (and we use it)
        self.max_batch = 1

        self.device_id: str | None = None
        self.max_inflight = 1
        self.heartbeat_s = 30.0
        self.stats = ClientStats()
        self.problem = ""  # why the volunteer stopped early, if it did
        self.gone = False  # vanished for good, or failed
        self.away = False  # vanished, coming back later
        self.held: dict[str, asyncio.Task] = {}  # task_id -> the task's worker
        self.unacked: dict[str, dict] = {}  # task_id -> result frame awaiting its ack
        # Batch extension: results in `unacked` not sent yet, with when each was finished.
        self._outgoing: dict[str, float] = {}
        self.acked: list[dict] = []  # accepted result frames, when keep_acked
        # Every task whose result the server acknowledged as stored (duplicates too): a
        # server that keeps its promise has all of them, whatever crashed meanwhile.
        self.acked_task_ids: set[str] = set()
        self._deliberate: set[str] = set()  # acked results resent on purpose
        self._sent_at: dict[str, float] = {}
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._request_sent_at: float | None = None
        self._next_request_at = 0.0
        self._next_ping_at = 0.0
        self._vanish_now = False
        self._useful = False
        self._throttled_until = 0.0
        self._resend_at: dict[str, float] = {}  # task_id -> when to send its result again
        self._gate: asyncio.Semaphore | None = None
        self.last_empty_at = -1.0  # loop time of the last empty tasks reply

    # -- state the runner reads ----------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Holding tasks, waiting for acks or for an answer to a request."""
        return bool(self.held or self.unacked or self._request_sent_at is not None)

    @property
    def connected(self) -> bool:
        """Holding an open socket that has had its welcome."""
        return self._ws is not None

    # -- connection loop -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, drain_s: float = 2.0,
                  gate: asyncio.Semaphore | None = None) -> None:
        """Connect, work and reconnect until `stop`; `gate` limits simultaneous first handshakes."""
        self._gate = gate
        failures = 0
        stopping = asyncio.create_task(self._wake_on(stop))  # `stop` ends a nap (_nap)
        try:
            while not stop.is_set() and not self.gone:
                self._useful = False
                try:
                    outcome = await self._session(stop, drain_s=drain_s)
                    failure = "the server closed the socket" if outcome == "closed" else ""
                except SwarmError as exc:  # the server said no in a way retrying cannot fix
                    self.problem = str(exc)
                    self.gone = True
                    break
                except InvalidStatus as exc:
                    failure = (f"the server refused the WebSocket handshake (HTTP "
                               f"{exc.response.status_code}); if it limits connections per "
                               f"address, run it with SPARECYCLES_MAX_CONNECTIONS_PER_IP=0 and "
                               f"SPARECYCLES_CONNECTIONS_PER_IP_PER_MIN=0 for swarms")
                except (OSError, InvalidHandshake, InvalidURI, ConnectionClosed,
                        TimeoutError, ServerUnavailable) as exc:
                    failure = f"{type(exc).__name__}: {exc}"
                if stop.is_set():
                    break
                if failure:
                    self.stats.connection_failures += 1
                    # A session that got work done resets the count: only a server that keeps
                    # refusing us makes the volunteer give up.
                    failures = 1 if self._useful else failures + 1
                    if failures > self.reconnect_attempts:
                        self.problem = f"gave up after {failures} failed connections: {failure}"
                        self.gone = True
                        break
                    await _sleep_or_stop(stop, min(0.25 * 2 ** failures, 5.0))
                    continue
                failures = 0
                if outcome == "vanished":
                    self._forget_everything()
                    back_after = self.behaviour.comes_back_after_s()
                    if back_after is None:
                        self.gone = True
                        break
                    self.away = True
                    await _sleep_or_stop(stop, back_after)
                    self.away = False
        finally:
            stopping.cancel()
            self.stats.unacked_at_stop = len(self.unacked)
            self.stats.held_at_stop = len(self.held)
            for worker in list(self.held.values()):
                worker.cancel()
            if self.held:
                await asyncio.gather(*self.held.values(), return_exceptions=True)

    async def _open(self) -> ClientConnection:
        """A new socket that has said hello and got its welcome."""
        # No protocol-level pings from us, as from a browser: the server pings (daphne does
        # every 20 s), and 10,000 idle volunteers would otherwise cost it 500 pongs a second.
        ws = await connect(self.ws_url, open_timeout=10, close_timeout=2, proxy=None,
                           compression=None, max_size=2**21, ping_interval=None,
                           user_agent_header=f"sparecycles-swarm/{CLIENT_VERSION}")
        try:
            await self._hello(ws)
        except BaseException:
            await ws.close()
            raise
        return ws

    async def _session(self, stop: asyncio.Event, *, drain_s: float) -> str:
        if self._gate is not None and self.stats.sessions == 0:
            async with self._gate:
                ws = await self._open()
        else:
            ws = await self._open()
        async with ws:  # leaving closes the socket, whatever the outcome
            loop = asyncio.get_running_loop()
            self._ws = ws
            self._request_sent_at = None
            self._resend_at.clear()  # everything unacked goes out again now
            self._next_request_at = 0.0
            self._next_ping_at = loop.time() + self.heartbeat_s
            reader = asyncio.create_task(self._read(ws))
            reader.add_done_callback(lambda _: self._wake.set())  # ends a nap (_nap)
            try:
                for task_id, frame in list(self.unacked.items()):
                    if task_id in self._outgoing and self.batch:
                        continue  # never sent: goes out in the next results frame
                    self._outgoing.pop(task_id, None)
                    self.stats.retransmits += 1
                    await self._send_result(task_id, frame)
                while True:
                    if reader.done():
                        reader.result()  # raises ConnectionClosed (or a protocol error)
                        return "closed"
                    if stop.is_set():
                        await self._drain(reader, drain_s)
                        return "stopped"
                    if self._vanish_now:
                        self._vanish_now = False
                        self.stats.vanished += 1
                        return "vanished"  # leaving the block closes the socket, nothing answered
                    await self._resend_due(loop.time())
                    if self.batch:
                        await self._maybe_report(ws, loop.time())
                    else:
                        await self._maybe_request(ws, loop.time())
                    if loop.time() >= max(self._next_ping_at, self._throttled_until):
                        self._next_ping_at = loop.time() + self.heartbeat_s
                        await self._send(ws, {"type": "ping"})
                    await self._nap(reader, stop, loop)
            except ConnectionClosed as exc:
                self._raise_if_fatal(exc)
                raise
            finally:
                self._ws = None
                self._request_sent_at = None
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def _hello(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({
            "type": "hello", "protocol": PROTOCOL_VERSION, "device_token": self.token,
            "client": {"name": CLIENT_NAME, "version": CLIENT_VERSION},
            "capabilities": {"runtimes": ["pyodide"], "cores": 1, "memory_mb": 1024,
                             "mobile": False},
        }))
        try:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
        except ConnectionClosed as exc:
            self._raise_if_fatal(exc)
            raise
        if (isinstance(welcome, dict) and welcome.get("type") == "error"
                and welcome.get("code") in RETRY_LATER | SERVER_TROUBLE):
            raise ServerUnavailable(f"hello answered {welcome.get('code')}: "
                                    f"{welcome.get('message')}")
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            message = welcome.get("message") if isinstance(welcome, dict) else None
            raise SwarmError(f"The server answered hello with {welcome!r}"
                             + (f": {message}" if message else "."))
        if welcome.get("device_token"):
            self.token = welcome["device_token"]
        self.device_id = welcome.get("device_id")
        self.max_inflight = max(1, int(welcome.get("max_inflight") or 1))
        self.heartbeat_s = max(1.0, float(welcome.get("heartbeat_s") or 30))
        extensions = welcome.get("extensions")
        self.batch = (not self.v1_frames and isinstance(extensions, list)
                      and "batch" in extensions)
        self.max_batch = max(1, min(int(welcome.get("max_batch") or 1), 64))
        self.stats.sessions += 1
        if self.stats.sessions > 1:
            self.stats.reconnects += 1

    def _raise_if_fatal(self, exc: ConnectionClosed) -> None:
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code in FATAL_CLOSE_CODES:
            raise SwarmError(f"The server closed the socket with {code} "
                             f"({FATAL_CLOSE_CODES[code]}).") from None

    async def _nap(self, reader: asyncio.Task, stop: asyncio.Event,
                   loop: asyncio.AbstractEventLoop) -> None:
        """Sleep until something happens or a request or ping falls due."""
        now = loop.time()
        # Workers look around at least once a second; idle volunteers sleep until their ping.
        longest = 1.0 if self.behaviour.requests_work else self.heartbeat_s
        wake_at = min([self._next_ping_at, *self._resend_at.values()])
        # Only for a request that will go (waking for one above the batch extension's
        # low-water mark spun the loop: a paced swarm used most of a core doing nothing).
        request_at = self._request_due_at()
        if request_at is not None:
            wake_at = min(wake_at, request_at)
        if self._outgoing:
            wake_at = min(wake_at, min(self._outgoing.values()) + REPORT_WITHIN_S)
        # One timer and the wake event (the reader ending and `stop` set it too),
        # not two tasks and asyncio.wait a nap: a hundred busy volunteers nap thousands of
        # times a second, and the swarm's own loop lag is in every latency it measures.
        self._wake.clear()
        if reader.done() or stop.is_set():
            return
        timer = loop.call_later(max(0.0, min(wake_at - now, longest)), self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _drain(self, reader: asyncio.Task, drain_s: float) -> None:
        """On stop, give outstanding results a moment to be acked."""
        loop = asyncio.get_running_loop()
        until = loop.time() + drain_s
        if self._outgoing and self._ws is not None:
            await self._send_results(self._ws, loop.time(), slots=None)
        while self.unacked and not reader.done() and loop.time() < until:
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait([reader, waiter], timeout=until - loop.time(),
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    def _forget_everything(self) -> None:
        """A vanished volunteer is a closed tab: its tasks and unsent results are gone."""
        for worker in self.held.values():
            worker.cancel()
        self.held.clear()
        self.unacked.clear()
        self._outgoing.clear()
        self._deliberate.clear()
        self._sent_at.clear()
        self._resend_at.clear()

    # -- sending ---------------------------------------------------------------------------
    async def _send(self, ws: ClientConnection, frame: dict) -> None:
        async with self._send_lock:
            await ws.send(json.dumps(frame, separators=(",", ":")))

    async def _resend_due(self, now: float) -> None:
        for task_id, at in list(self._resend_at.items()):
            if at > now:
                continue
            del self._resend_at[task_id]
            if task_id in self.unacked:
                await self._send_result(task_id, self.unacked[task_id])

    def _request_due_at(self) -> float | None:
        """When the next request for tasks goes (loop time), or None while none is wanted:
        over v1 as soon as a slot is free, over the batch extension once the held tasks
        drop to the low-water mark (and not while the server throttles us)."""
        if not self.behaviour.requests_work or self._request_sent_at is not None:
            return None
        if not self.batch:
            return self._next_request_at if len(self.held) < self.max_inflight else None
        if len(self.held) > self._low_water():
            return None
        return max(self._next_request_at, self._throttled_until)

    async def _maybe_request(self, ws: ClientConnection, now: float) -> None:
        due = self._request_due_at()
        if due is None or now < due:
            return
        self._request_sent_at = now
        self.stats.requests += 1
        await self._send(ws, {"type": "request", "slots": self.max_inflight - len(self.held)})

    def _low_water(self) -> int:
        return self.max_inflight // 2  # below max_inflight: a request at it has a free slot

    async def _maybe_report(self, ws: ClientConnection, now: float) -> None:
        """Batch extension: ask for tasks once the held ones drop to the low-water mark (for
        enough to fill up to max_inflight), with every finished result riding along; send
        results alone only when they have waited REPORT_WITHIN_S or fill a frame."""
        if now < self._throttled_until:
            return
        free = self.max_inflight - len(self.held)
        due = self._request_due_at()
        ask = due is not None and now >= due
        report = bool(self._outgoing) and (
            len(self._outgoing) >= self.max_batch
            or now >= min(self._outgoing.values()) + REPORT_WITHIN_S)
        if ask or report:
            await self._send_results(ws, now, slots=free if ask else None)

    async def _send_results(self, ws: ClientConnection, now: float, *, slots: int | None) -> None:
        task_ids = [t for t in self._outgoing if t in self.unacked][:self.max_batch]
        frame: dict[str, Any] = {"type": "results", "results": []}
        for task_id in task_ids:
            del self._outgoing[task_id]
            item = dict(self.unacked[task_id])
            item.pop("type", None)
            frame["results"].append(item)
            self._sent_at[task_id] = now
        if slots is not None:
            frame["slots"] = slots
            self._request_sent_at = now
            self.stats.requests += 1
        for task_id in list(self._outgoing):
            if task_id not in self.unacked:
                del self._outgoing[task_id]
        if not task_ids:
            frame = {"type": "request", "slots": slots}  # nothing rides along: plain v1
        else:
            self.stats.results_frames += 1
            self.stats.batched_results += len(task_ids)
        try:
            await self._send(ws, frame)
        except ConnectionClosed:
            pass  # still in unacked: retransmitted after the reconnect

    async def _send_result(self, task_id: str, frame: dict) -> None:
        ws = self._ws
        if ws is None:
            return  # sent after the next reconnect
        now = asyncio.get_running_loop().time()
        if now < self._throttled_until:
            self._resend_at[task_id] = self._throttled_until
            return
        self._resend_at.pop(task_id, None)
        self._sent_at[task_id] = now
        try:
            await self._send(ws, frame)
        except ConnectionClosed:
            pass  # still in unacked: retransmitted after the reconnect

    async def _submit(self, task_id: str, frame: dict) -> None:
        self.unacked[task_id] = frame
        self.stats.results_sent += 1
        if frame["status"] == "error":
            self.stats.errors_reported += 1
        if self.batch:
            self._outgoing[task_id] = asyncio.get_running_loop().time()
            self._wake.set()  # the session loop decides when it goes (_maybe_report)
            return
        await self._send_result(task_id, frame)

    # -- receiving -------------------------------------------------------------------------
    async def _read(self, ws: ClientConnection) -> None:
        await self._read_frames(ws)
        if ws.close_code in FATAL_CLOSE_CODES:  # a clean close ends the loop without raising
            raise SwarmError(f"The server closed the socket with {ws.close_code} "
                             f"({FATAL_CLOSE_CODES[ws.close_code]}).")

    async def _read_frames(self, ws: ClientConnection) -> None:
        async for text in ws:
            try:
                frame = json.loads(text)
            except ValueError:
                self.stats.error_frames["unreadable_frame"] += 1
                continue
            kind = frame.get("type") if isinstance(frame, dict) else None
            handler = self._HANDLERS.get(kind)
            if handler is None:
                self.stats.error_frames[f"unexpected:{kind}"] += 1
                continue
            await handler(self, frame)
            self._wake.set()

    async def _on_tasks(self, frame: dict) -> None:
        now = asyncio.get_running_loop().time()
        if self._request_sent_at is not None:
            self.stats.dispatch_latency_s.append(now - self._request_sent_at)
            self._request_sent_at = None
        tasks = [t for t in frame.get("tasks") or [] if isinstance(t, dict) and "task_id" in t]
        new = [t for t in tasks if t["task_id"] not in self.held
               and t["task_id"] not in self.unacked]
        self.stats.tasks_repeated += len(tasks) - len(new)
        retry_after = float(frame.get("retry_after_s") or 0)
        if not tasks:
            self.stats.empty_replies += 1
            self.last_empty_at = now
            retry_after = max(retry_after, 0.5)  # never spin, whatever the server says
        self._next_request_at = now + retry_after
        self.stats.tasks_received += len(new)
        self._useful = True
        if new and self.behaviour.vanish_on(new):
            self._vanish_now = True
            return
        for task in new:
            self.held[task["task_id"]] = asyncio.create_task(self._work(task))

    async def _on_ack(self, frame: dict) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        task_id = str(frame.get("task_id"))
        sent = self._sent_at.pop(task_id, None)
        result = self.unacked.pop(task_id, None)
        if result is None:
            self.stats.unexpected_acks += 1
            return
        if sent is not None:
            self.stats.ack_latency_s.append(now - sent)
        deliberate = task_id in self._deliberate
        self._deliberate.discard(task_id)
        if frame.get("accepted"):
            self.acked_task_ids.add(task_id)
            if frame.get("duplicate"):
                self.stats.duplicates += 1
            else:
                self.stats.accepted += 1
                if self.keep_acked:
                    self.acked.append(result)
            if self.on_ack is not None:
                self.on_ack(now)
            if not deliberate and self.duplicate_p and self.rng.random() < self.duplicate_p:
                self._deliberate.add(task_id)
                self.unacked[task_id] = result
                self.stats.duplicates_sent += 1
                await self._send_result(task_id, result)
        elif str(frame.get("reason")) in RETRY_LATER:
            self.stats.rate_limited += 1
            self.unacked[task_id] = result  # not stored: send it again in a while
            if deliberate:
                self._deliberate.add(task_id)
            self._throttle(now)
        else:
            self.stats.refused[str(frame.get("reason") or "unspecified")] += 1
            if self.on_ack is not None:
                self.on_ack(now)

    async def _on_acks(self, frame: dict) -> None:
        for item in frame.get("acks") or []:
            if isinstance(item, dict):
                await self._on_ack(item)
            else:
                self.stats.unexpected_acks += 1

    async def _on_cancel(self, frame: dict) -> None:
        for task_id in frame.get("task_ids") or []:
            worker = self.held.pop(task_id, None)
            if worker is not None:
                worker.cancel()
                self.stats.cancelled += 1

    async def _on_error(self, frame: dict) -> None:
        code = str(frame.get("code"))
        if code in SERVER_TROUBLE:
            self.stats.server_errors += 1
        if code in RETRY_LATER | SERVER_TROUBLE:
            # The server dropped one of our frames without saying which: after a pause, ask
            # for tasks again and resend every result not acked yet (duplicates are harmless).
            if code in RETRY_LATER:
                self.stats.rate_limited += 1
            self._request_sent_at = None
            self._throttle(asyncio.get_running_loop().time())
            return
        self.stats.error_frames[code] += 1

    def _throttle(self, now: float) -> None:
        self._throttled_until = max(self._throttled_until, now + THROTTLE_S)
        self._next_request_at = max(self._next_request_at, self._throttled_until)
        for task_id in self.unacked:
            if task_id not in self._outgoing:
                self._resend_at[task_id] = self._throttled_until

    async def _on_pong(self, frame: dict) -> None:
        self.stats.pongs += 1

    async def _on_stats(self, frame: dict) -> None:
        self.stats.stats_frames += 1

    async def _on_welcome(self, frame: dict) -> None:
        self.stats.error_frames["unexpected:welcome"] += 1

    _HANDLERS = {
        "tasks": _on_tasks, "ack": _on_ack, "acks": _on_acks, "cancel": _on_cancel,
        "error": _on_error, "pong": _on_pong, "stats": _on_stats, "welcome": _on_welcome,
    }

    # -- computing -------------------------------------------------------------------------
    async def _work(self, task: dict) -> None:
        task_id = task["task_id"]
        try:
            frame = await self._execute(task)
            hold = self.behaviour.hold_s(task)
            if hold > 0:
                await asyncio.sleep(hold)
            if self.held.get(task_id) is not asyncio.current_task():
                return  # cancelled by the server meanwhile
            self.held.pop(task_id, None)
            await self._submit(task_id, frame)
        finally:
            if self.held.get(task_id) is asyncio.current_task():
                self.held.pop(task_id, None)
            self._wake.set()

    async def _execute(self, task: dict) -> dict:
        """The result frame for `task`, as this volunteer's behaviour would report it."""
        started = time.perf_counter()
        app = task.get("app") or {}
        key = (str(app.get("name")), int(app.get("version") or 0))

        def frame(**fields: Any) -> dict:
            elapsed_ms = int((time.perf_counter() - started) * 1000)
            return {"type": "result", "task_id": task["task_id"], **fields,
                    "elapsed_ms": elapsed_ms}

        def error(message: str) -> dict:
            return frame(status="error", error=message[:MAX_ERROR_CHARS])

        plan = self.behaviour.plan(task, have_template=key in self.code_cache.templates)
        if plan == "error":
            return error(self.behaviour.error_message(task) or "SimulatedError")
        if plan == "fabricate":
            return frame(status="ok",
                         output=self.behaviour.fabricate(task, self.code_cache.templates[key]))
        if app.get("runtime") != "pyodide":
            return error(f"UnsupportedRuntime: the swarm runs only pyodide apps, "
                         f"not {app.get('runtime')!r}")
        try:
            code = await self.code_cache.get(app)
        except (CodeError, KeyError, TypeError, ValueError) as exc:
            self.stats.code_errors += 1
            return error(f"CodeError: {exc}")
        loop = asyncio.get_running_loop()
        try:
            output = await loop.run_in_executor(
                self.executor, run_entry, code.source, code.label,
                str(app.get("entry") or "main"), task.get("input"))
        except Exception as exc:  # the app's own failure is reported, like a browser would
            return error(f"{type(exc).__name__}: {exc}")
        self.code_cache.templates.setdefault(key, output)
        return frame(status="ok", output=self.behaviour.alter(task, output))

    # -- one-off use -------------------------------------------------------------------------
    async def resend(self, frames: list[dict], *, timeout: float = 15.0) -> list[dict]:
        """Connect with this volunteer's token, send `frames` and return the server's acks."""
        async with await self._open() as ws:
            for frame in frames:
                await ws.send(json.dumps(frame))
            acks: list[dict] = []
            async with asyncio.timeout(timeout):
                while len(acks) < len(frames):
                    reply = json.loads(await ws.recv())
                    if reply.get("type") == "ack":
                        acks.append(reply)
            return acks


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
