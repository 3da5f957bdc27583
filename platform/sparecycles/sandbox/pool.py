"""Warm sandbox processes, reused: starting Pyodide costs seconds, a comparison microseconds.

A process serves ONE validator's code for its whole life (keyed by the code's SHA-256),
so one owner's code never shares an interpreter with — and can never influence the
verdicts of — another's. At most SANDBOX["POOL_SIZE"] idle processes are kept per
server process; the least recently used is killed first. A process is lent to one
caller at a time; callers in other threads start their own if none is idle.
"""

import atexit
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from .errors import ValidatorError
from .isolation import isolation
from .validator_process import ValidatorProcess


def code_key(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class Pool:
    def __init__(self):
        self._lock = threading.Lock()
        self._idle: OrderedDict[str, list[ValidatorProcess]] = OrderedDict()
        self._broken: dict[str, tuple[float, str]] = {}
        self.started = 0  # processes started, for the benchmark and tests

    def start(self, code: str) -> ValidatorProcess:
        config = settings.SANDBOX
        process = ValidatorProcess(
            isolation=isolation(), code=code, pair_timeout_s=config["PAIR_TIMEOUT_S"],
            start_timeout_s=config["START_TIMEOUT_S"], memory_mb=config["MEMORY_MB"],
            cpu_s=config["CPU_S"])
        with self._lock:
            self.started += 1
        return process

    @contextmanager
    def lend(self, code: str, *, breaker: bool = True) -> Iterator[ValidatorProcess]:
        """A warm process for `code`. A ValidatorError (the process is dead then) trips a
        breaker: the same code fails at once with the same reason for SANDBOX["RETRY_S"],
        so a broken validator costs one time-out, not one per work unit."""
        key = code_key(code)
        if breaker:
            with self._lock:
                until, reason = self._broken.get(key, (0.0, ""))
            if time.monotonic() < until:
                raise ValidatorError(reason)
        process = self._take(key)
        try:
            if process is None:
                process = self.start(code)
            yield process
        except ValidatorError as exc:
            if breaker:
                with self._lock:
                    self._broken[key] = (time.monotonic() + settings.SANDBOX["RETRY_S"],
                                         exc.reason)
            raise
        finally:
            if process is not None:
                self._give_back(key, process)

    def _take(self, key: str) -> ValidatorProcess | None:
        with self._lock:
            idle = self._idle.get(key) or []
            while idle:
                process = idle.pop()
                if process.alive:
                    self._idle.move_to_end(key)
                    return process
                process.kill()
        return None

    def _give_back(self, key: str, process: ValidatorProcess) -> None:
        if not process.alive:
            process.kill()
            return
        evicted = []
        with self._lock:
            self._idle.setdefault(key, []).append(process)
            self._idle.move_to_end(key)
            cap = max(settings.SANDBOX["POOL_SIZE"], 0)
            while sum(len(v) for v in self._idle.values()) > cap:
                oldest_key = next(iter(self._idle))
                evicted.append(self._idle[oldest_key].pop(0))
                if not self._idle[oldest_key]:
                    del self._idle[oldest_key]
        for process in evicted:
            process.kill()

    def warm(self, code: str) -> None:
        """Make sure an idle process for `code` is ready (start one if not), so the
        transitioner, which holds row locks, never waits for a cold start. A failure is
        left for the breaker to report when the code is used."""
        key = code_key(code)
        with self._lock:
            if any(p.alive for p in self._idle.get(key, ())):
                return
        try:
            with self.lend(code):
                pass
        except ValidatorError:
            pass

    def forget(self, code: str) -> None:
        """Clear the breaker for `code` (the owner saved it again, checked)."""
        with self._lock:
            self._broken.pop(code_key(code), None)

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        with self._lock:
            processes = [p for ps in self._idle.values() for p in ps]
            self._idle.clear()
            self._broken.clear()
            self.started = 0
        for process in processes:
            process.kill()


pool = Pool()
atexit.register(pool.close)
