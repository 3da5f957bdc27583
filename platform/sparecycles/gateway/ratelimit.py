"""Rate limits for the volunteer socket, per process (nginx's limit_conn/limit_req in
deploy/ guard the whole site across processes).

- connections: at most MAX_CONNECTIONS_PER_IP open at once and CONNECTIONS_PER_IP_PER_MIN
  opened per minute from one address;
- frames: a token bucket per connection (FRAMES_PER_S, burst FRAME_BURST);
- results: a token bucket per device, shared by its connections (RESULTS_PER_S).
A limit of 0 switches that check off.
"""

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from django.conf import settings


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class ConnectionLimiter:
    """Concurrent and per-minute connection counts per client address."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}
        self.recent: dict[str, deque] = {}

    def admit(self, address: str, now: float | None = None) -> str | None:
        """None if the connection may open, else a reason."""
        limits = settings.SPARECYCLES
        now = time.monotonic() if now is None else now
        most = limits["MAX_CONNECTIONS_PER_IP"]
        if most and self.open.get(address, 0) >= most:
            return f"too many open connections from your address (limit {most})"
        per_min = limits["CONNECTIONS_PER_IP_PER_MIN"]
        if per_min:
            opened = self.recent.setdefault(address, deque())
            while opened and now - opened[0] > 60:
                opened.popleft()
            if len(opened) >= per_min:
                return f"too many new connections from your address (limit {per_min}/min)"
            opened.append(now)
        self.open[address] = self.open.get(address, 0) + 1
        return None

    def release(self, address: str) -> None:
        left = self.open.get(address, 0) - 1
        if left > 0:
            self.open[address] = left
        else:
            self.open.pop(address, None)
            opened = self.recent.get(address)
            if opened is not None and not opened:
                self.recent.pop(address, None)


class DeviceBuckets:
    """Result buckets per device, least recently used first out when there are too many."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self.buckets: OrderedDict[int, TokenBucket] = OrderedDict()

    def take(self, device_id: int) -> bool:
        bucket = self.buckets.pop(device_id, None)
        if bucket is None:
            rate = settings.SPARECYCLES["RESULTS_PER_S"]
            bucket = TokenBucket(rate=rate, burst=max(1.0, rate * 5))
        self.buckets[device_id] = bucket
        if len(self.buckets) > self.size:
            self.buckets.popitem(last=False)
        return bucket.take()


connections = ConnectionLimiter()
device_results = DeviceBuckets()


def frame_bucket() -> TokenBucket:
    limits = settings.SPARECYCLES
    return TokenBucket(rate=limits["FRAMES_PER_S"], burst=limits["FRAME_BURST"])
