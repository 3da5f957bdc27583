"""Show the reward policy, or announce a new version for a future epoch.

    manage.py ledger_policy
    manage.py ledger_policy --announce --initial-emission 7200 --from-epoch 400 --note "..."
"""

import dataclasses

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sparecycles.ledger.canonical import to_us
from sparecycles.ledger.policy import PolicyError
from sparecycles.ledger.selectors import schedule
from sparecycles.ledger.services import policy_announce
from sparecycles.ledger.units import parse_tokens, tokens_str


class Command(BaseCommand):
    help = "Show the token reward policy, or announce a change (only for a future epoch)."

    def add_arguments(self, parser):
        parser.add_argument("--announce", action="store_true")
        parser.add_argument("--from-epoch", type=int, help="default: the next epoch")
        parser.add_argument("--epoch-seconds", type=int)
        parser.add_argument("--initial-emission", help="tokens per epoch before any halving")
        parser.add_argument("--halving-epochs", type=int)
        parser.add_argument("--max-supply", help="tokens")
        parser.add_argument("--note", default="")

    def handle(self, *args, **options):
        sched, started = schedule()
        if not options["announce"]:
            for record in sched.records:
                p = record.params
                self.stdout.write(
                    f"v{record.version} from epoch {record.effective_from_epoch} "
                    f"(starts {record.starts_at_us}): epoch {p.epoch_seconds} s, "
                    f"{tokens_str(p.initial_emission_micro)} tokens/epoch halving every "
                    f"{p.halving_epochs} epochs, max supply {tokens_str(p.max_supply_micro)}")
            now = sched.epoch_at(to_us(timezone.now()))
            self.stdout.write(f"Epoch in progress: {now}" + ("" if started else " (not started)"))
            return
        current = sched.governing(max(sched.epoch_at(to_us(timezone.now())), 0)).params
        try:
            changes = {}
            if options["epoch_seconds"] is not None:
                changes["epoch_seconds"] = options["epoch_seconds"]
            if options["initial_emission"] is not None:
                changes["initial_emission_micro"] = parse_tokens(options["initial_emission"])
            if options["halving_epochs"] is not None:
                changes["halving_epochs"] = options["halving_epochs"]
            if options["max_supply"] is not None:
                changes["max_supply_micro"] = parse_tokens(options["max_supply"])
            if not changes:
                raise CommandError("Nothing to change: give at least one policy parameter.")
            version = policy_announce(params=dataclasses.replace(current, **changes),
                                      effective_from_epoch=options["from_epoch"],
                                      note=options["note"])
        except (PolicyError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Announced policy v{version.version}, effective from epoch "
            f"{version.effective_from_epoch} ({version.starts_at.isoformat()})."))
