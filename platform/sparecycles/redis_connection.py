"""The Redis connection the channel layer uses: one whose commands can always be cancelled.

A settings-level helper (settings.py builds CHANNEL_LAYERS with it), so it imports no app.

redis-py bounds each write with `asyncio.wait_for`. On Python 3.11 that swallows a
cancellation arriving just as the write completes (CPython gh-86296, fixed in
3.12; redis-py issue 2028). Channels cancels a consumer's `channel_layer.receive`
when its socket closes; with the cancellation lost, channels_redis's receive loop
went on polling Redis for ever and the consumer never finished: about one closed
socket in a few hundred left such a zombie behind (and a test's event loop hung
at teardown). `asyncio.timeout` keeps both the bound and the cancellation.
"""

import asyncio
import sys

from redis.asyncio.connection import (
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import TimeoutError as RedisTimeoutError


class CancellableWrites:
    """Mixed into a redis-py asyncio connection class, before it."""

    async def send_packed_command(self, command, check_health: bool = True) -> None:
        timeout = self.socket_timeout
        if sys.version_info >= (3, 12) or not timeout:
            await super().send_packed_command(command, check_health)
            return
        self.socket_timeout = None  # so the parent writes without wait_for
        try:
            async with asyncio.timeout(timeout):
                await super().send_packed_command(command, check_health)
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout


class CancellableConnection(CancellableWrites, Connection):
    pass


class CancellableSSLConnection(CancellableWrites, SSLConnection):
    pass


class CancellableUnixConnection(CancellableWrites, UnixDomainSocketConnection):
    pass


CANCELLABLE = {Connection: CancellableConnection, SSLConnection: CancellableSSLConnection,
               UnixDomainSocketConnection: CancellableUnixConnection}


def channel_layer_host(url: str, **options) -> dict:
    """A channels_redis host entry for a Redis URL (redis://, rediss://, unix://) that
    connects with the cancellable class matching the URL's scheme.

    Given an "address", redis-py's from_url would let the scheme pick its own stock
    class; parsing the URL here keeps ours.
    """
    kwargs = dict(parse_url(url))
    stock = kwargs.pop("connection_class", Connection)
    kwargs["connection_class"] = CANCELLABLE[stock]
    return {**kwargs, **options}
