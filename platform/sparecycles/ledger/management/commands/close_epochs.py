"""Close every reward epoch that has ended; with --loop, keep doing it (a daemon).

Safe to run in several processes at once, and beside the housekeeping loop:
epoch_close pays each epoch exactly once.
"""

import logging
import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from sparecycles.ledger.services import epochs_close_due
from sparecycles.ledger.units import tokens_str

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Close every reward epoch that has ended (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep closing epochs as they end")
        parser.add_argument("--interval", type=float, default=30.0,
                            help="seconds between passes with --loop (default 30)")

    def handle(self, *args, loop=False, interval=30.0, **options):
        if interval <= 0:
            self.stderr.write("--interval must be positive")
            raise SystemExit(2)
        stop = threading.Event()
        if loop:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
        while True:
            try:
                for epoch in epochs_close_due():
                    self.stdout.write(
                        f"Closed epoch {epoch.index}: {tokens_str(epoch.emission_micro)} tokens "
                        f"to {epoch.recipients} account(s), Merkle root {epoch.merkle_root}")
            except Exception:
                if not loop:
                    raise
                logger.exception("closing epochs failed; retrying next pass")
            if not loop or stop.wait(interval):
                break
            close_old_connections()   # a long-running loop must not keep a dead connection
