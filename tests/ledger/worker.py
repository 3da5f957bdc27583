"""A ledger process for the concurrency and crash tests: runs services against the test database.

    python tests/ledger/worker.py <db-name> close <now-iso> <start-at>
    python tests/ledger/worker.py <db-name> close-index <index> <now-iso> <start-at>
    python tests/ledger/worker.py <db-name> transfers <now-iso> <start-at> <seed> <count> <code>...
    python tests/ledger/worker.py <db-name> crash <function> <now-iso> <marker-path>

Each waits for <start-at> (a Unix time, or a go file: see wait_until) and prints one
JSON line. `crash` wraps ledger.services.<function> so that, once it has run inside
the closing transaction, the process writes <marker-path> and hangs there until killed.
"""

import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "platform"), str(REPO)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparecycles.settings")

from django.conf import settings  # noqa: E402

settings.DATABASES["default"]["NAME"] = sys.argv[1]   # the test database, before any connection

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from sparecycles.ledger import services  # noqa: E402


def wait_until(start_at: str) -> None:
    """Connect, then wait: for a moment (a number), or for a go file (a path) - after
    announcing readiness with <path>.<pid>.ready, so a test can start everyone at once."""
    connection.ensure_connection()
    if start_at.replace(".", "", 1).isdigit():
        time.sleep(max(0.0, float(start_at) - time.time()))
        return
    go = Path(start_at)
    Path(f"{go}.{os.getpid()}.ready").touch()
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def main(mode: str, *args: str) -> dict:
    if mode == "close":
        now, start_at = dt.datetime.fromisoformat(args[0]), args[1]
        wait_until(start_at)
        return {"closed": [e.index for e in services.epochs_close_due(now=now)]}
    if mode == "close-index":
        index, now, start_at = int(args[0]), dt.datetime.fromisoformat(args[1]), args[2]
        wait_until(start_at)
        return {"closed_now": services.epoch_close(index=index, now=now).closed_now}
    if mode == "transfers":
        now, start_at, seed, count, codes = (dt.datetime.fromisoformat(args[0]), args[1],
                                             int(args[2]), int(args[3]), list(args[4:]))
        rng = random.Random(seed)
        wait_until(start_at)
        done = refused = 0
        for _ in range(count):
            source, destination = rng.sample(codes, 2)
            try:
                services.tokens_transfer(source=source, destination=destination,
                                         amount_micro=rng.randint(1, 400_000_000), now=now)
                done += 1
            except services.InsufficientFunds:
                refused += 1
        return {"done": done, "refused": refused}
    if mode == "crash":
        name, now, marker = args[0], dt.datetime.fromisoformat(args[1]), Path(args[2])
        original = getattr(services, name)

        def hang_after(*a, **kw):
            result = original(*a, **kw)
            marker.write_text(str(os.getpid()))
            time.sleep(3600)   # inside the open transaction: the test kills us here
            return result

        setattr(services, name, hang_after)
        services.epochs_close_due(now=now)
        return {"error": "was not killed"}
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[2], *sys.argv[3:])), flush=True)
