"""python manage.py load_workunits mandelbrot --count 64 [--seed 0] [--quorum 2 --target 2]"""

from dataclasses import replace

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from sparecycles.projects.catalogue import (
    bundled_app_names,
    bundled_app_read,
    bundled_batch_create,
    bundled_spot_checks_create,
)


class Command(BaseCommand):
    help = "Install a bundled app from workunits/ and create N work units from its inputs.py."

    def add_arguments(self, parser):
        parser.add_argument("app", nargs="?", help="Bundled app name; omit to list them.")
        parser.add_argument("--count", type=int, default=16, help="Work units to create.")
        parser.add_argument("--seed", type=int, default=0, help="Seed passed to generate().")
        parser.add_argument("--quorum", type=int, help="min_quorum (default: the manifest's).")
        parser.add_argument("--target", type=int, help="target_nresults (default: the manifest's).")
        parser.add_argument("--spot-checks", type=int, default=0, metavar="N",
                            help="Also create N known-answer tasks (answers computed here).")

    def handle(self, *args, app=None, count, seed, quorum, target, spot_checks, **options):
        if not app:
            for name in bundled_app_names():
                bundled = bundled_app_read(name)
                self.stdout.write(f"{name:14} {bundled.title} — {bundled.description}")
            return
        try:
            params = bundled_app_read(app).quorum
            if quorum is not None:
                params = replace(params, min_quorum=quorum,
                                 target_nresults=max(quorum, target or params.target_nresults))
            if target is not None:
                params = replace(params, target_nresults=target)
            batch = bundled_batch_create(app, count=count, seed=seed, quorum=params)
            if spot_checks:
                spot = bundled_spot_checks_create(app, count=spot_checks)
                self.stdout.write(f"Created {spot_checks} known-answer tasks (batch {spot.pk}).")
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Created batch {batch.pk} “{batch.name}” with {batch.workunits.count()} work units "
            f"of {batch.app_version} (quorum {params.min_quorum}, "
            f"{params.target_nresults} replicas each)."
        ))
