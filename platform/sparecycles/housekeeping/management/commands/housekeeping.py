"""python manage.py housekeeping [--once] [--interval 15]: deadlines, validation sweep,
epochs, stats export and dead background jobs; each job once across all processes."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from sparecycles.housekeeping.runner import housekeeping_loop, housekeeping_pass


class Command(BaseCommand):
    help = "Run the periodic jobs (each in one process only); loops unless --once."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true",
                            help="Run every job now (unless another process runs it), then exit.")
        parser.add_argument("--interval", type=float, default=None,
                            help="Longest sleep between passes, seconds "
                                 "(default SPARECYCLES_HOUSEKEEPING_INTERVAL_S).")

    def handle(self, *args, once, interval, **options):
        if once:
            self._print(housekeeping_pass(force=True))
            return
        ceiling = interval or settings.SPARECYCLES["HOUSEKEEPING_INTERVAL_S"]
        housekeeping_loop(threading.Event(), ceiling_s=ceiling, on_pass=self._print)

    def _print(self, counts: dict[str, int]) -> None:
        if counts:
            self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
            self.stdout.flush()
