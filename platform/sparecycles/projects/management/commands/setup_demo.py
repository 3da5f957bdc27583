"""python manage.py setup_demo: an admin account and demo work, for `make run`."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from sparecycles.projects.catalogue import bundled_app_read, bundled_batch_create
from sparecycles.projects.models import Batch
from sparecycles.projects.services import QuorumParams


class Command(BaseCommand):
    help = ("Create the admin account and, on an empty site, demo batches a single browser "
            "can finish.")

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=64)

    def handle(self, *args, count, **options):
        username = os.environ.get("ADMIN_USER", "admin")
        password = os.environ.get("ADMIN_PASSWORD", "admin")
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_superuser(username, f"{username}@localhost", password)
            self.stdout.write(f"Created the admin account {username!r}.")
        if not Batch.objects.exists():
            for name in ("mandelbrot", "primes"):
                manifest = bundled_app_read(name).quorum
                # Quorum 1 so one browser can finish the demo; real batches use the manifest's.
                quorum = QuorumParams(**{**manifest.__dict__, "min_quorum": 1,
                                         "target_nresults": 1})
                batch = bundled_batch_create(name, count=count, quorum=quorum, created_by=user)
                self.stdout.write(f"Loaded {count} {name} work units (batch {batch.pk}).")
