"""Show the reward policy, or announce a new version for a future epoch.

    manage.py ledger_policy
    manage.py ledger_policy --announce --initial-emission 7200 --from-epoch 400 --note "..."
    manage.py ledger_policy --announce --project-share mandelbrot=60% --project-share primes=25%
    manage.py ledger_policy --announce --site-wide-split    # back to one split by credit

Project shares are each project's part of every epoch's emission (a percentage, or
parts per million without %); what no project is given goes to the treasury. A new
`--project-share` list replaces the whole previous one.
"""

import dataclasses

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sparecycles.ledger.canonical import to_us
from sparecycles.ledger.policy import SHARE_WHOLE, PolicyError, project_code
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
        parser.add_argument("--project-share", action="append", default=[],
                            metavar="SLUG=SHARE",
                            help="a project's share of each epoch: 25%% or 250000 (ppm)")
        parser.add_argument("--site-wide-split", action="store_true",
                            help="drop project shares: one split by credit across the site")
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
                self.stdout.write("  " + _shares_text(p.project_shares))
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
            if options["project_share"] and options["site_wide_split"]:
                raise CommandError("Give project shares or --site-wide-split, not both.")
            if options["project_share"]:
                changes["project_shares"] = _parse_shares(options["project_share"])
            if options["site_wide_split"]:
                changes["project_shares"] = None
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


def _shares_text(shares) -> str:
    if shares is None:
        return "one site-wide split by credit (no project shares)"
    from sparecycles.projects.models import Project

    slugs = {project_code(p.pk): p.slug for p in Project.objects.all()}
    parts = [f"{slugs.get(code, code)} {share / SHARE_WHOLE:.2%}" for code, share in shares]
    rest = SHARE_WHOLE - sum(share for _, share in shares)
    return "project shares: " + ", ".join(parts + [f"treasury {rest / SHARE_WHOLE:.2%}"])


def _parse_shares(items: list[str]) -> tuple:
    """SLUG=25% or SLUG=250000 (parts per million), by project slug, as journal codes."""
    from decimal import Decimal, InvalidOperation

    from sparecycles.projects.models import Project

    shares: dict[str, int] = {}
    for item in items:
        slug, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"{item!r}: write SLUG=SHARE, e.g. mandelbrot=25%")
        project = Project.objects.filter(slug=slug.strip()).first()
        if project is None:
            raise CommandError(f"There is no project {slug.strip()!r}.")
        try:
            value = value.strip()
            amount = (Decimal(value[:-1]) * SHARE_WHOLE / 100 if value.endswith("%")
                      else Decimal(value))
        except InvalidOperation:
            raise CommandError(f"{item!r}: the share is a percentage (25%) or parts per "
                               "million (250000)") from None
        if amount != amount.to_integral_value() or not 0 < amount <= SHARE_WHOLE:
            raise CommandError(f"{item!r}: a share is a whole number of parts per million "
                               f"from 1 to {SHARE_WHOLE} (0.0001% to 100%)")
        shares[project_code(project.pk)] = int(amount)
    return tuple(sorted(shares.items()))
