"""python manage.py housekeeping [--once] [--interval 15]: timeouts, reissue, unsticking."""

import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from sparecycles.scheduler.housekeeping import housekeeping_pass


class Command(BaseCommand):
    help = "Time out overdue replicas and reissue their work units; loops unless --once."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass, then exit.")
        parser.add_argument("--interval", type=float, default=15.0, help="Seconds between passes.")

    def handle(self, *args, once, interval, **options):
        while True:
            counts = housekeeping_pass()
            self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
            if once:
                return
            time.sleep(interval)
            close_old_connections()  # drop a connection the database closed meanwhile
