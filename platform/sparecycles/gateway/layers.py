"""The embedded mode's channel layer: Channels' in-memory layer, made O(1) per message.

Channels' InMemoryChannelLayer looks for expired messages and group memberships
in every channel and every group on each `receive` and `group_send`. Each
connected device has a channel and a group of its own, so with N devices
connected every message cost O(N), and N devices connecting cost O(N²): at
10,000 the server spent a whole core on it and could not take more
connections. Here that sweep runs at most once a second; an expired message
may live up to a second longer (they expire after a minute).
"""

import time

from channels.layers import InMemoryChannelLayer

SWEEP_EVERY_S = 1.0


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    _swept = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept < SWEEP_EVERY_S:
            return
        self._swept = now
        super()._clean_expired()
