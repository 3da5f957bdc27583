"""Waiting for what happens after an ack: the page (or a client) is told a result is
stored, and validation completes its work unit a moment later, off the socket's path."""

import time

from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica


def wait_for_completed(batch, count: int, timeout_s: float = 120) -> None:
    """Wait until `count` of the batch's work units are validated (COMPLETED)."""
    deadline = time.monotonic() + timeout_s
    while WorkUnit.objects.filter(batch=batch, state=WorkUnit.State.COMPLETED).count() < count:
        if time.monotonic() > deadline:
            states = list(WorkUnit.objects.filter(batch=batch).values_list("state", flat=True))
            errors = list(Replica.objects.filter(workunit__batch=batch)
                          .exclude(error_message="").values_list("error_message", flat=True))
            raise AssertionError(f"not completed in time: {states}; errors: {errors[:3]}")
        time.sleep(0.1)
