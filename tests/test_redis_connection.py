"""The channel layer's Redis connection: a cancelled command is always cancelled.

Against a real Redis (the scale-out path's REDIS_URL). The cancellation is swept
across every point of a write, because the lost-cancellation bug this guards
against (see sparecycles.redis_connection) only shows when the cancel lands
in the step where the write has just finished.
"""

import asyncio
import os
from urllib.parse import urlsplit

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from sparecycles.redis_connection import (
    CancellableConnection,
    CancellableSSLConnection,
    CancellableUnixConnection,
    channel_layer_host,
)

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL.startswith("redis://"),
                                 reason="needs REDIS_URL=redis://… (the scale-out path)")
STEPS = 40   # event-loop steps a PING write can take; the sweep covers all of them


async def connection(socket_timeout: float = 30) -> CancellableConnection:
    url = urlsplit(REDIS_URL)
    conn = CancellableConnection(host=url.hostname, port=url.port or 6379,
                                 socket_timeout=socket_timeout)
    await conn.connect()
    return conn


@needs_redis
async def test_a_cancelled_write_never_completes_as_if_nothing_happened():
    outcomes = set()
    for steps in range(STEPS):
        conn = await connection()
        try:
            task = asyncio.create_task(conn.send_packed_command(conn.pack_command("PING")))
            for _ in range(steps):
                await asyncio.sleep(0)
            cancelling = task.cancel()
            await asyncio.wait([task])
            if cancelling:
                assert task.cancelled(), f"the cancel after {steps} steps was lost"
            outcomes.add("cancelled" if task.cancelled() else "done")
        finally:
            await conn.disconnect()
    assert outcomes == {"cancelled", "done"}, "the sweep did not cover the whole write"


@needs_redis
async def test_commands_still_work_and_the_timeout_still_bounds_a_write():
    conn = await connection()
    try:
        await conn.send_command("SET", "sparecycles-test-conn", "1", "EX", "5")
        assert await conn.read_response() == b"OK"
        await conn.send_command("GET", "sparecycles-test-conn")
        assert await conn.read_response() == b"1"
        assert conn.socket_timeout == 30   # restored after each write
    finally:
        await conn.disconnect()

    stalled = await connection(socket_timeout=0.2)
    try:
        # A write that cannot finish: the peer is not draining (simulated by a drain
        # that never returns) must end with redis-py's own timeout error.
        async def never(*_args):
            await asyncio.Event().wait()
        stalled._writer.drain = never
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            await stalled.send_packed_command(stalled.pack_command("PING"))
        assert not stalled.is_connected
        assert stalled.socket_timeout == 0.2
    finally:
        await stalled.disconnect()


@pytest.mark.parametrize(("url", "cls", "expected"), [
    ("redis://127.0.0.1:6380/2", CancellableConnection,
     {"host": "127.0.0.1", "port": 6380, "db": 2}),
    ("rediss://:pw@cache.example:6390/0", CancellableSSLConnection,
     {"host": "cache.example", "port": 6390, "password": "pw"}),
    ("unix:///run/redis.sock?db=3", CancellableUnixConnection,
     {"path": "/run/redis.sock", "db": 3}),
])
def test_every_url_scheme_gets_its_own_cancellable_class(url, cls, expected):
    host = channel_layer_host(url, socket_timeout=30)
    assert host["connection_class"] is cls
    assert host["socket_timeout"] == 30
    assert {k: host[k] for k in expected} == expected
