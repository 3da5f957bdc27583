"""Running a transaction again when the database broke a deadlock by aborting it.

PostgreSQL aborts one of two transactions that wait on each other; the other
one goes on. Every write path here takes its row locks in one documented
order, but a few rare crossings remain (a brand-new device's first dispatch
and validation creating its reliability row at once, say), so the hot paths
run through this: the aborted transaction has changed nothing and is simply
run again.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError

logger = logging.getLogger(__name__)
T = TypeVar("T")
_rng = random.Random()


def deadlock_retry(function: Callable[[], T], *, attempts: int = 3, what: str = "") -> T:
    """Call `function` (which opens and commits its own transaction); again on a deadlock."""
    for attempt in range(attempts):
        try:
            return function()
        except OperationalError as exc:
            if "deadlock" not in str(exc).lower() or attempt == attempts - 1:
                raise
            logger.info("%s hit a deadlock; retrying", what or "a transaction")
            time.sleep(0.01 * (attempt + 1) * (1 + _rng.random()))
    raise AssertionError("not reached")
