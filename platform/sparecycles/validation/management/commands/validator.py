"""python manage.py validator [--once] [--idle 0.05]: validate reported results (BOINC's
validator daemon).

With Redis it sleeps until a socket process stores results (validation.wakeup), lets
more gather, and validates them together: nothing polls. A pass costs far more than a
result (locks, standings, reliability, grants and audit rows), so passes run on a
clock: at most one every PASS_EVERY_S, unless the last one was full (a backlog goes
pass after pass). A lightly loaded server thus validates in batches as big as a busy
one's; a result's credit comes at most about a second later. Without Redis it looks
every --idle seconds.

The web processes store results and, by default, validate them in a thread of
their own. `manage.py serve` runs this process instead (its workers start with
SPARECYCLES_VALIDATE_IN_WEB=false), so validation's CPU stays off the sockets'
processes. Several validators may run: each work unit is validated under its
row lock.
"""

import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from sparecycles.validation.sweeps import pending_validate
from sparecycles.validation.wakeup import validation_wait

GATHER_S = 0.5  # after a wake, let more results arrive (a lone result's partner, at quorum 2)
PASS_EVERY_S = 1.0  # a pass starts at most this long after the last one began, unless full
PASS_LIMIT = 500


class Command(BaseCommand):
    help = "Validate work units with newly reported results; loops unless --once."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument("--idle", type=float, default=0.05,
                            help="Without Redis: seconds to wait when nothing is pending "
                                 "(default 0.05).")

    def handle(self, *args, once, idle, **options):
        while True:
            began = time.monotonic()
            done = pending_validate(older_than_s=0, limit=PASS_LIMIT, chunk=250)
            if once:
                self.stdout.write(f"validated: {done}")
                return
            if done < PASS_LIMIT:  # caught up: sleep until results come, then let more
                # gather until the clock allows the next pass (else a light load pays a
                # pass per handful of results)
                close_old_connections()  # drop a connection the database closed meanwhile
                self.wait(idle, next_pass_at=began + PASS_EVERY_S)

    def wait(self, idle: float, *, next_pass_at: float) -> None:
        if not settings.REDIS_URL:
            time.sleep(idle)
            return
        try:
            woken = validation_wait()
        except Exception:  # Redis away (restarting): look again shortly, as without it
            time.sleep(max(idle, 1.0))
            return
        if woken:
            time.sleep(max(GATHER_S, next_pass_at - time.monotonic()))
