"""Recompute the whole ledger and name the first broken entry; exit status 1 if broken.

    manage.py verify_ledger                 # the database
    manage.py verify_ledger --file j.jsonl  # a downloaded journal, without the database
"""

import json
import sys

from django.core.management.base import BaseCommand

from sparecycles.ledger.units import tokens_str
from sparecycles.ledger.verify import verify_ledger, verify_records


class Command(BaseCommand):
    help = "Verify the token ledger: hashes, links, balances, payouts, Merkle roots."

    def add_arguments(self, parser):
        parser.add_argument("--file",
                            help="verify a journal.jsonl download instead of the database")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, file=None, **options):
        if file:
            with open(file, "rb") as stream:
                report = verify_records(_records(stream))
        else:
            report = verify_ledger()
        if options["json"]:
            self.stdout.write(_dumps(report.as_dict()))
        elif report.ok:
            totals = report.totals
            self.stdout.write(self.style.SUCCESS(
                f"Ledger OK: {totals['entries']} entries, {totals['epochs']} epochs, "
                f"head #{totals['head_seq']} {totals['head_hash']}; "
                f"emitted {tokens_str(totals['emitted'])}, burned {tokens_str(totals['burned'])}, "
                f"supply {tokens_str(totals['supply'])} tokens; clawed back "
                f"{tokens_str(totals['clawed_back'])}, still owed {tokens_str(totals['owed'])}."))
        else:
            self.stderr.write(self.style.ERROR(f"Ledger BROKEN at {report.problem}"))
        if not report.ok:
            sys.exit(1)


def _dumps(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def _records(stream):
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            yield {"malformed_line": number}
