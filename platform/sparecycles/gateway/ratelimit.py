"""Rate limits for the volunteer socket. Connections per address are counted across all
processes when REDIS_URL is set (SharedConnectionLimiter), per process otherwise (the
embedded mode is one process); nginx's limit_conn/limit_req in deploy/ guard the site too.

- connections: at most MAX_CONNECTIONS_PER_IP open at once and CONNECTIONS_PER_IP_PER_MIN
  opened per minute from one address;
- frames: a token bucket per connection (FRAMES_PER_S, burst FRAME_BURST);
- results: a token bucket per device, shared by its connections (RESULTS_PER_S).
A limit of 0 switches that check off.
"""

import asyncio
import logging
import os
import time
import uuid
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from django.conf import settings

logger = logging.getLogger(__name__)


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


# --- one limit across processes (scale-out) ------------------------------------------------
# With REDIS_URL set, the per-address connection limits are counted in Redis, so N daphne
# processes behind one socket (`manage.py serve`) or behind nginx enforce one limit, not N.
# Open connections are leases in a sorted set per address (member: a ticket, score: the
# lease's end), renewed by each process while the socket is open, so a process killed with
# its sockets open stops counting within CONNECTION_LEASE_S. New connections per minute are
# counted in per-minute buckets (the current one plus the previous one weighted by what is
# left of it). One Lua script decides and records atomically.

_ADMIT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local most = tonumber(ARGV[4])
if most > 0 and redis.call('ZCARD', KEYS[1]) >= most then return 1 end
local per_min = tonumber(ARGV[5])
if per_min > 0 then
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[3]) or '0')
  if current + previous * tonumber(ARGV[6]) >= per_min then return 2 end
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], 130)
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[7])) * 2 + 1)
return 0
"""


@dataclass
class Admission:
    refusal: str | None
    ticket: str | None = None  # the shared limiter's lease, to give back on close


class SharedConnectionLimiter:
    """ConnectionLimiter's rules on Redis (async: it runs in the socket's event loop)."""

    def __init__(self, url: str, prefix: str, lease_s: float) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=5)
        self.prefix = prefix
        self.lease_s = lease_s
        self.script = self.client.register_script(_ADMIT)
        self.mine: dict[str, str] = {}  # ticket -> key, leases this process renews
        self.renewer: asyncio.Task | None = None

    def _open_key(self, address: str) -> str:
        return f"{self.prefix}:gw:open:{address}"

    async def admit(self, address: str) -> Admission:
        limits = settings.SPARECYCLES
        now = time.time()
        minute, into = divmod(now, 60)
        ticket = f"{os.getpid()}:{uuid.uuid4().hex}"
        key = self._open_key(address)
        try:
            verdict = await self.script(
                keys=[key, f"{self.prefix}:gw:new:{address}:{int(minute)}",
                      f"{self.prefix}:gw:new:{address}:{int(minute) - 1}"],
                args=[now, now + self.lease_s, ticket, limits["MAX_CONNECTIONS_PER_IP"],
                      limits["CONNECTIONS_PER_IP_PER_MIN"], 1 - into / 60, self.lease_s])
        except Exception:  # Redis away: let people in rather than lock everyone out
            logger.warning("connection limit check failed; admitting", exc_info=True)
            return Admission(refusal=None)
        if verdict == 1:
            return Admission(refusal="too many open connections from your address "
                                     f"(limit {limits['MAX_CONNECTIONS_PER_IP']})")
        if verdict == 2:
            return Admission(refusal="too many new connections from your address "
                                     f"(limit {limits['CONNECTIONS_PER_IP_PER_MIN']}/min)")
        self.mine[ticket] = key
        if self.renewer is None or self.renewer.done():
            self.renewer = asyncio.get_running_loop().create_task(self._renew())
        return Admission(refusal=None, ticket=ticket)

    async def release(self, ticket: str | None) -> None:
        key = self.mine.pop(ticket, None) if ticket else None
        if key is None:
            return
        try:
            await self.client.zrem(key, ticket)
        except Exception:  # the lease runs out by itself
            logger.warning("connection release failed", exc_info=True)

    async def _renew(self) -> None:
        while self.mine:
            await asyncio.sleep(self.lease_s / 3)
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    until = time.time() + self.lease_s
                    for ticket, key in list(self.mine.items()):
                        pipe.zadd(key, {ticket: until}, xx=True)
                    await pipe.execute()
            except Exception:
                logger.warning("connection lease renewal failed", exc_info=True)


_shared: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedConnectionLimiter]" = (
    weakref.WeakKeyDictionary())


def _shared_limiter() -> SharedConnectionLimiter:
    loop = asyncio.get_running_loop()  # redis.asyncio connections belong to one loop
    limiter = _shared.get(loop)
    if limiter is None:
        limiter = _shared[loop] = SharedConnectionLimiter(
            settings.REDIS_URL, settings.CACHES["default"]["KEY_PREFIX"],
            settings.SPARECYCLES["CONNECTION_LEASE_S"])
    return limiter


async def connection_admit(address: str) -> Admission:
    """May a socket from `address` open? Shared across processes when REDIS_URL is set."""
    limits = settings.SPARECYCLES
    if not (limits["MAX_CONNECTIONS_PER_IP"] or limits["CONNECTIONS_PER_IP_PER_MIN"]):
        return Admission(refusal=None)
    if settings.REDIS_URL:
        return await _shared_limiter().admit(address)
    return Admission(refusal=connections.admit(address), ticket="local")


async def connection_release(address: str, admission: Admission) -> None:
    if admission.refusal is not None or admission.ticket is None:
        return
    if admission.ticket == "local":
        connections.release(address)
    else:
        await _shared_limiter().release(admission.ticket)
