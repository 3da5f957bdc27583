"""The validator process sleeps until results are stored (scale-out), instead of polling.

The socket processes call `validation_wanted` after each stored batch; the validator
blocks in `validation_wait` (a Redis BLPOP) until then, or until its safety sweep is due.
Without Redis (one process, embedded) there is no validator process to wake: the web
process validates in a thread of its own. Redis being away costs only latency: the wake
is lost, and the validator's sweep (and housekeeping's) find the work anyway.
"""

import functools
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

SWEEP_S = 5.0  # the validator looks anyway this often, should a wake be lost


def _key() -> str:
    # Under the cache's prefix, which is this deployment's own (as the connection limits).
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'sparecycles')}:validate:wake"


@functools.cache
def _client():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=SWEEP_S + 10,
                                socket_connect_timeout=5)


def validation_wanted() -> None:
    """Results were stored: wake a validator (at most one wake is kept)."""
    if not settings.REDIS_URL:
        return
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.lpush(_key(), 1).ltrim(_key(), 0, 0)
        pipe.execute()
    except Exception:  # the sweep finds the work a little later
        logger.warning("could not wake the validator", exc_info=True)


def validation_wait(timeout: float = SWEEP_S) -> bool:
    """Block until a wake (True) or `timeout` (False). Raises if Redis is away."""
    woken = _client().blpop([_key()], timeout=timeout) is not None
    if woken:
        _client().delete(_key())  # every wake so far is answered by the next pass
    return woken
