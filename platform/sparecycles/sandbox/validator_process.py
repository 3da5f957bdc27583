"""One sandboxed process running one validator's code, and the protocol to it.

The parent side of runner.mjs: start it through `isolation`, load the code, then send
outputs and pairs, one request a pair, and read exactly one reply line per request
(its id and verdict count checked). Every read has a deadline (the start, the load,
and each pair get their own), so a looping, blocking or silent
sandbox is killed, never waited for. Anything unexpected — a crash, a line that is not
the protocol, output past the size cap — kills the process and raises ValidatorError.
"""

import json
import logging
import os
import secrets
import selectors
import signal
import subprocess
import time
from typing import Any

from .errors import ValidatorError
from .isolation import Isolation

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024  # a verdict line is tiny; more is junk


def _seconds(value: float) -> str:
    return f"{value:g} s"


class ValidatorProcess:
    """A warm sandbox for one validator (`code`). Not thread-safe: the pool lends it to
    one caller at a time."""

    def __init__(self, *, isolation: Isolation, code: str, pair_timeout_s: float,
                 start_timeout_s: float, memory_mb: int, cpu_s: int):
        self.code = code
        self.pair_timeout_s = pair_timeout_s
        self.memory_mb = memory_mb
        self.nonce = secrets.token_hex(16)
        self._buffer = b""
        self._request_id = 0
        self.started = time.monotonic()
        try:
            # A session of its own: killing the group reaches everything inside.
            self.proc = subprocess.Popen(
                isolation.command(memory_mb=memory_mb, cpu_s=cpu_s),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env={}, cwd="/", start_new_session=True, close_fds=True)
        except OSError as exc:
            # The detail (paths, the host's command line) goes to the server's log, not to
            # the owner, who sees this reason on the app's form and batch page.
            logger.error("the validator sandbox could not start: %s", exc)
            raise ValidatorError("The validator sandbox could not start on the server; "
                                 "the operator has been told (server log).") from None
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stdout.fileno(), False)
        try:
            self._send({"nonce": self.nonce}, timeout_s=start_timeout_s)
            self._expect("booted", timeout_s=start_timeout_s,
                         what=f"the validator sandbox did not start within "
                              f"{_seconds(start_timeout_s)}")
            self._send({"code": code}, timeout_s=pair_timeout_s)
            reply = self._reply(timeout_s=pair_timeout_s,
                                what=f"loading the custom validator took longer than "
                                     f"{_seconds(pair_timeout_s)}")
            if "error" in reply:
                raise ValidatorError(f"The custom validator can't be loaded: "
                                     f"{str(reply['error'])[:300]}.")
            self._limit(reply, doing="while loading")
            if reply.get("ready") is not True:
                raise ValidatorError("The custom validator's sandbox answered nonsense.")
        except BaseException:
            self.kill()
            raise
        self.ready_s = time.monotonic() - self.started

    # --- the protocol ----------------------------------------------------------------

    def judge(self, outputs: list[Any], pairs: list[tuple[int, int]], *,
              budget_s: float | None = None) -> list[dict]:
        """One reply per pair, in order: {"verdict": bool} or {"raised": "..."} (equivalent
        raised on that pair: not equivalent). A process-level failure (time-out, memory,
        crash, a broken protocol, a non-bool) raises ValidatorError and kills it.

        Pairs go one request each (the outputs cross once, with the first), so every
        comparison has its own deadline. With `budget_s`, no new pair starts once that
        many seconds are spent: the replies cover a prefix of `pairs` then."""
        if not pairs:
            return []
        started = time.monotonic()
        try:
            replies = []
            for number, (i, j) in enumerate(pairs):
                if budget_s is not None and replies and time.monotonic() - started >= budget_s:
                    break
                request: dict[str, Any] = {"id": self._next_id(), "pairs": [[i, j]]}
                if number == 0:
                    request["outputs"] = outputs
                    send_s = self.pair_timeout_s + len(json.dumps(outputs)) / 2**20
                else:
                    send_s = self.pair_timeout_s
                self._send(request, timeout_s=send_s)
                reply = self._reply(
                    timeout_s=send_s,
                    what=f"the custom validator timed out after "
                         f"{_seconds(self.pair_timeout_s)} on one comparison")
                verdicts = reply.get("verdicts")
                if reply.get("id") != request["id"] or not isinstance(verdicts, list) \
                        or len(verdicts) != 1 or not isinstance(verdicts[0], dict):
                    raise ValidatorError("The custom validator broke the sandbox's protocol.")
                replies.append(self._verdict(verdicts[0]))
            return replies
        except BaseException:
            self.kill()
            raise

    def _next_id(self) -> int:
        self._request_id += 1
        return self._request_id

    def _verdict(self, reply: dict) -> dict:
        self._limit(reply, doing="comparing two results")
        if "bad" in reply:
            raise ValidatorError(f"The custom validator {str(reply['bad'])[:200]}: "
                                 "equivalent(a, b) must return True or False.")
        if "verdict" in reply and isinstance(reply["verdict"], bool):
            return {"verdict": reply["verdict"]}
        if "raised" in reply:
            return {"raised": str(reply["raised"])[:300]}
        raise ValidatorError("The custom validator broke the sandbox's protocol.")

    def _limit(self, reply: dict, *, doing: str) -> None:
        if reply.get("limit") == "memory":
            raise ValidatorError(f"The custom validator ran out of memory ({self.memory_mb} "
                                 f"MB) {doing}.")
        if reply.get("limit") == "recursion":
            raise ValidatorError(f"The custom validator recursed too deeply {doing}.")

    def _expect(self, key: str, *, timeout_s: float, what: str) -> None:
        if self._reply(timeout_s=timeout_s, what=what).get(key) is not True:
            raise ValidatorError("The custom validator's sandbox answered nonsense.")

    def _send(self, message: dict, *, timeout_s: float) -> None:
        data = json.dumps(message, separators=(",", ":"), allow_nan=True).encode() + b"\n"
        deadline = time.monotonic() + timeout_s
        view = memoryview(data)
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdin, selectors.EVENT_WRITE)
            while view:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise ValidatorError(f"The custom validator stopped reading its input "
                                         f"for {_seconds(timeout_s)}.")
                try:
                    view = view[os.write(self.proc.stdin.fileno(), view):]
                except BrokenPipeError:
                    raise ValidatorError(self._died()) from None

    def _reply(self, *, timeout_s: float, what: str) -> dict:
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                if len(self._buffer) > MAX_LINE_BYTES:
                    raise ValidatorError("The custom validator wrote junk into the sandbox's "
                                         "protocol channel.")
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise ValidatorError(what[:1].upper() + what[1:] + ".")
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise ValidatorError(self._died())
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.pop("nonce", None) != self.nonce:
            raise ValidatorError("The custom validator wrote junk into the sandbox's "
                                 "protocol channel.")
        return reply

    def _died(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL):
            return "The custom validator's sandbox was killed at its CPU or memory limit."
        if code in (-signal.SIGABRT, 128 + signal.SIGABRT):  # V8 aborts when out of memory
            return (f"The custom validator's sandbox crashed, most likely out of memory "
                    f"({self.memory_mb} MB).")
        return f"The custom validator's sandbox exited unexpectedly (status {code})."

    # --- life ------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
