"""Run in a subprocess by test_leases.py: wait for a shared start moment, then try to run
the same housekeeping job as another process. A run appends one line to a file."""

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparecycles.settings")
django.setup()

from sparecycles.housekeeping.jobs import Job  # noqa: E402
from sparecycles.housekeeping.runner import job_run  # noqa: E402

marker, start_at = sys.argv[1], float(sys.argv[2])


def record() -> dict[str, int]:
    with open(marker, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    time.sleep(1.0)   # still running when the other process tries
    return {"ran": 1}


time.sleep(max(0.0, start_at - time.time()))
result = job_run(Job("race", record, lambda: 3600.0))
print("ran" if result else "skipped", flush=True)
