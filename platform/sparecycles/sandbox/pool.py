"""Warm sandbox processes, reused: starting Pyodide costs seconds, a comparison microseconds.

A process serves ONE app's validator code for its whole life (keyed by the app's id and
the code's SHA-256), so one owner's code never shares an interpreter with — and can
never influence the verdicts of — another's, and an owner who copies another app's code
gets processes and a breaker of their own: failures they provoke pause only their app.
At most SANDBOX["POOL_SIZE"] idle processes are kept per server process (the least
recently used is killed first), and at most SANDBOX["MAX_PROCESSES"] run at once, idle
or lent, across threads: a caller beyond that waits for one to come back. A process is
lent to one caller at a time.

The pool also remembers verdicts per (app, code), a bounded memo: a work unit whose
comparisons did not fit in one pass's time budget resumes where it stopped.
"""

import atexit
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from .errors import BudgetSpent, SandboxBusy, ValidatorError
from .isolation import isolation
from .validator_process import ValidatorProcess

MEMO_SIZE = 100_000  # verdicts remembered, over all validators


def code_key(code: str, app_id: int | None = None) -> str:
    """The pool's key: the app (None for a check before the app exists) and its code."""
    return f"{app_id}:{hashlib.sha256(code.encode()).hexdigest()}"


class Pool:
    def __init__(self):
        self._lock = threading.Condition(threading.Lock())
        self._idle: OrderedDict[str, list[ValidatorProcess]] = OrderedDict()
        self._broken: dict[str, tuple[float, str]] = {}
        self._running = 0  # processes alive, idle or lent
        self._memo: OrderedDict[tuple[str, str, str], bool] = OrderedDict()
        self.started = 0  # processes started, for the benchmark and tests

    def start(self, code: str) -> ValidatorProcess:
        config = settings.SANDBOX
        return ValidatorProcess(
            isolation=isolation(), code=code, pair_timeout_s=config["PAIR_TIMEOUT_S"],
            start_timeout_s=config["START_TIMEOUT_S"], memory_mb=config["MEMORY_MB"],
            cpu_s=config["CPU_S"])

    @contextmanager
    def lend(self, code: str, *, app_id: int | None = None,
             breaker: bool = True) -> Iterator[ValidatorProcess]:
        """A warm process for `app_id`'s `code`. A ValidatorError (the process is dead
        then) trips a breaker for this app's code only: it fails at once with the same
        reason for SANDBOX["RETRY_S"], so a broken validator costs one time-out, not one
        per work unit. SandboxBusy (no process free) is nobody's fault: no trip."""
        key = code_key(code, app_id)
        if breaker:
            self.breaker_check(code, app_id=app_id)
        process = self._take(key)
        try:
            if process is None:
                process = self._start_counted(code)
            yield process
        except (SandboxBusy, BudgetSpent):
            raise
        except ValidatorError as exc:
            if breaker:
                with self._lock:
                    self._broken[key] = (time.monotonic() + settings.SANDBOX["RETRY_S"],
                                         exc.reason)
            raise
        finally:
            if process is not None:
                self._give_back(key, process)

    def breaker_check(self, code: str, *, app_id: int | None = None) -> None:
        """ValidatorError with the reason if this app's code failed within RETRY_S."""
        with self._lock:
            until, reason = self._broken.get(code_key(code, app_id), (0.0, ""))
        if time.monotonic() < until:
            raise ValidatorError(reason)

    def _start_counted(self, code: str) -> ValidatorProcess:
        """Start a process within MAX_PROCESSES: evict idle ones first, then wait (up to
        START_TIMEOUT_S) for a lent one to come back."""
        config = settings.SANDBOX
        cap = max(config["MAX_PROCESSES"], 1)
        deadline = time.monotonic() + config["START_TIMEOUT_S"]
        with self._lock:
            while self._running >= cap:
                victim = self._evict_one()
                if victim is not None:
                    self._lock.release()
                    try:
                        victim.kill()
                    finally:
                        self._lock.acquire()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SandboxBusy(f"All {cap} validator sandboxes of this server were "
                                      f"busy; the results wait for the next pass.")
                self._lock.wait(left)
            self._running += 1
            self.started += 1
        try:
            return self.start(code)
        except BaseException:
            self._release()
            raise

    def _evict_one(self) -> ValidatorProcess | None:
        """Take the least recently used idle process out (caller holds the lock)."""
        while self._idle:
            oldest_key = next(iter(self._idle))
            processes = self._idle[oldest_key]
            if processes:
                victim = processes.pop(0)
                if not processes:
                    del self._idle[oldest_key]
                self._running -= 1
                self._lock.notify()
                return victim
            del self._idle[oldest_key]
        return None

    def _release(self) -> None:
        with self._lock:
            self._running -= 1
            self._lock.notify()

    def _take(self, key: str) -> ValidatorProcess | None:
        dead = []
        with self._lock:
            idle = self._idle.get(key) or []
            found = None
            while idle:
                process = idle.pop()
                if process.alive:
                    self._idle.move_to_end(key)
                    found = process
                    break
                dead.append(process)
                self._running -= 1
                self._lock.notify()
        for process in dead:
            process.kill()
        return found

    def _give_back(self, key: str, process: ValidatorProcess) -> None:
        if not process.alive:
            process.kill()
            self._release()
            return
        evicted = []
        with self._lock:
            self._idle.setdefault(key, []).append(process)
            self._idle.move_to_end(key)
            cap = max(settings.SANDBOX["POOL_SIZE"], 0)
            while sum(len(v) for v in self._idle.values()) > cap:
                evicted.append(self._evict_one())
            self._lock.notify()
        for victim in evicted:
            if victim is not None:
                victim.kill()

    def warm(self, code: str, *, app_id: int | None = None) -> None:
        """Make sure an idle process for `app_id`'s `code` is ready (start one if not), so
        the transitioner, which holds row locks, never waits for a cold start. A failure
        is left for the breaker to report when the code is used."""
        key = code_key(code, app_id)
        with self._lock:
            if any(p.alive for p in self._idle.get(key, ())):
                return
        try:
            with self.lend(code, app_id=app_id):
                pass
        except ValidatorError:
            pass

    def forget(self, code: str, *, app_id: int | None = None) -> None:
        """Clear the breaker for `app_id`'s `code` (the owner saved it again, checked)."""
        with self._lock:
            self._broken.pop(code_key(code, app_id), None)

    # --- verdicts remembered -----------------------------------------------------------

    def verdict(self, key: str, a: str, b: str) -> bool | None:
        with self._lock:
            return self._memo.get((key, a, b))

    def remember(self, key: str, a: str, b: str, verdict: bool) -> None:
        with self._lock:
            self._memo[(key, a, b)] = verdict
            self._memo.move_to_end((key, a, b))
            while len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)

    def verdicts_forget(self) -> None:
        """Drop every remembered verdict (benchmarks measure judging, not the memo)."""
        with self._lock:
            self._memo.clear()

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())

    def running_count(self) -> int:
        with self._lock:
            return self._running

    def close(self) -> None:
        with self._lock:
            processes = [p for ps in self._idle.values() for p in ps]
            self._idle.clear()
            self._broken.clear()
            self._memo.clear()
            self._running -= len(processes)
            self.started = 0
            self._lock.notify_all()
        for process in processes:
            process.kill()


pool = Pool()
atexit.register(pool.close)
