"""python manage.py export_stats [--dir DIR]: BOINC-format statistics files, for stats sites."""

from pathlib import Path

from django.core.management.base import BaseCommand

from sparecycles.credit.stats_export import stats_dir, stats_export


class Command(BaseCommand):
    help = "Write user.gz, team.gz, host.gz (BOINC XML), their .json.gz and tables.xml."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=None, help="Default: var/stats.")

    def handle(self, *args, dir, **options):
        dir = dir or stats_dir()
        counts = stats_export(dir)
        self.stdout.write(f"Wrote {dir}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
