"""verify_ledger: recompute everything and name the first broken entry.

The chain rules (chain.ChainVerifier) run over the stored entries exactly as
they are published; then what only the database knows is checked against
them: the chain head, each epoch's row and linked credit, each policy row, and
every cached balance.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import F, Q, Sum
from django.utils import timezone

from .canonical import to_us
from .chain import ChainVerifier, Problem
from .clawback import clawback_item, item_key
from .models import (
    Account,
    ChainHead,
    Epoch,
    EpochCredit,
    JournalEntry,
    PolicyVersion,
    ReversalClaim,
)
from .policy import project_code
from .selectors import chain_head, journal_chunks, policy_records

ATTEMPTS = 5


@dataclass
class VerifyReport:
    ok: bool
    problem: Problem | None
    totals: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        problem = None
        if self.problem:
            problem = {"entry": self.problem.seq, "account": self.problem.account,
                       "message": self.problem.message, "summary": str(self.problem)}
        return {"ok": self.ok, "problem": problem, **self.totals}


def verify_records(records) -> VerifyReport:
    """Verify a journal from its records alone (e.g. a downloaded journal.jsonl)."""
    verifier = ChainVerifier()
    for record in records:
        problem = verifier.feed(record)
        if problem:
            return VerifyReport(ok=False, problem=problem, totals=verifier.totals())
    problem = verifier.finish()
    return VerifyReport(ok=problem is None, problem=problem, totals=verifier.totals())


def verify_ledger() -> VerifyReport:
    """Verify the stored ledger. Retried if a writer commits meanwhile, so every check
    sees one consistent state (every write moves the chain head)."""
    for _ in range(ATTEMPTS):
        before = chain_head()
        report = _verify_once()
        if chain_head() == before:
            return report
    return report


def _verify_once() -> VerifyReport:
    verifier = ChainVerifier()
    epochs = {e.entry_id: e for e in Epoch.objects.all()}
    policies = {p.entry_id: p for p in PolicyVersion.objects.all()}
    seen_epochs = seen_policies = 0

    def fail(problem: Problem) -> VerifyReport:
        return VerifyReport(ok=False, problem=problem, totals=verifier.totals())

    for batch in journal_chunks():
        for entry, record in batch:
            problem = verifier.feed(record)
            if problem:
                return fail(problem)
            if entry.kind == JournalEntry.Kind.EPOCH:
                seen_epochs += 1
                message = _check_epoch_row(epochs.get(entry.pk), record)
            elif entry.kind == JournalEntry.Kind.POLICY:
                seen_policies += 1
                message = _check_policy_row(policies.get(entry.pk), record)
            elif entry.kind == JournalEntry.Kind.CLAWBACK:
                message = _check_claim_rows(entry, record)
            else:
                message = None
            if message:
                return fail(Problem(seq=entry.seq, message=message))

    problem = verifier.finish()
    if problem:
        return fail(problem)
    message = _check_claims()
    if message:
        return fail(Problem(seq=None, message=message))
    totals = verifier.totals()
    head = ChainHead.objects.filter(pk=1).first()
    head_state = (head.seq, head.hash) if head else (0, totals["head_hash"])
    if head_state != (totals["head_seq"], totals["head_hash"]):
        return fail(Problem(seq=totals["head_seq"] + 1 if head_state[0] > totals["head_seq"]
                            else totals["head_seq"],
                            message=f"the chain head says #{head_state[0]} {head_state[1]}, but "
                                    "the journal ends elsewhere (entries removed or added)"))
    if len(epochs) != seen_epochs:
        return fail(Problem(seq=None, message=f"{len(epochs) - seen_epochs} epoch row(s) have "
                                              "no payout entry in the journal"))
    if len(policies) != seen_policies:
        return fail(Problem(seq=None, message="a policy row has no entry in the journal"))
    if policy_records() != verifier.policies:
        return fail(Problem(seq=None, message="the policy rows differ from the journal"))
    for code, balance in Account.objects.values_list("code", "balance_micro").order_by("code"):
        if verifier.balances.get(code, 0) != balance:
            return fail(Problem(seq=None, account=code,
                                message=f"stores a balance of {balance} µ but its lines sum to "
                                        f"{verifier.balances.get(code, 0)} µ"))
    return VerifyReport(ok=True, problem=None, totals=totals)


def _check_epoch_row(epoch: Epoch | None, record: dict) -> str | None:
    data = record["data"]
    if epoch is None:
        return f"epoch {data['epoch']}'s row is missing"
    stored = (epoch.index, to_us(epoch.starts_at), to_us(epoch.ends_at), epoch.policy_version,
              epoch.credit_micro, epoch.emission_micro, epoch.recipients, epoch.merkle_root)
    sealed = (data["epoch"], data["start"], data["end"], data["policy"], data["credit_total"],
              data["emission"], data["recipients"], data["merkle_root"])
    if stored != sealed:
        return f"epoch {data['epoch']}'s row differs from its sealed entry"
    linked = {
        f"volunteer-{row['volunteer_id']}": row["credit"]
        for row in EpochCredit.objects.filter(epoch=epoch).values("volunteer_id")
        .annotate(credit=Sum("amount_micro")).order_by() if row["credit"] > 0
    }
    if linked != {code: credit for code, credit in data["credits"]}:
        return f"epoch {data['epoch']}'s linked credit grants do not add up to its credits"
    return None


def _check_claim_rows(entry: JournalEntry, record: dict) -> str | None:
    """The claims a clawback entry published are exactly the rows that point at it."""
    rows = (ReversalClaim.objects.filter(entry=entry)
            .values("account__code", "credit_epoch__index", "charged__code",
                    "reversal__grant__project_id")
            .annotate(credit=Sum("credit_micro"), tokens=Sum("tokens_micro")).order_by())
    per_project = set(Epoch.objects.filter(
        index__in={r["credit_epoch__index"] for r in rows}, entry__data__has_key="projects")
        .values_list("index", flat=True))
    summed: dict[tuple, list[int]] = {}
    for r in rows:
        index = r["credit_epoch__index"]
        project = (project_code(r["reversal__grant__project_id"]) if index in per_project
                   else "")
        total = summed.setdefault((r["account__code"], index, project, r["charged__code"]),
                                  [0, 0])
        total[0] += r["credit"]
        total[1] += r["tokens"]
    stored = sorted((clawback_item(code, index, project, credit, tokens, charged)
                     for (code, index, project, charged), (credit, tokens) in summed.items()),
                    key=item_key)
    if stored != record["data"]["reversals"]:
        return (f"the reversal claims of clawback entry #{entry.seq} differ from what it "
                "published")
    return None


def _check_claims() -> str | None:
    """Every claim matches its reversal, and every debt was published in a clawback entry."""
    claims = ReversalClaim.objects.all()
    if claims.exclude(credit_micro=F("reversal__amount_micro")).exists():
        return "a reversal claim's credit differs from the reversal it claims"
    debts = claims.filter(kind=ReversalClaim.Kind.DEBT)
    if debts.filter(Q(entry__isnull=True) | ~Q(entry__kind=JournalEntry.Kind.CLAWBACK)).exists():
        return "a debt from reversed credit is not published in a clawback entry"
    if debts.exclude(credit_epoch=F("reversal__grant__ledger_epoch_credit__epoch")).exists() \
            or debts.exclude(account__volunteer_id=F(
                "reversal__grant__ledger_epoch_credit__volunteer_id")).exists():
        return "a debt names another epoch or account than its reversed grant was paid in"
    for paid, charged in debts.exclude(charged=F("account")).values_list(
            "account__volunteer_id", "charged__volunteer_id").distinct():
        if not _merged_into(paid, charged):
            return (f"a debt of volunteer-{paid} is charged to volunteer-{charged}, which "
                    "it was not claimed into")
    basis = claims.filter(kind=ReversalClaim.Kind.BASIS)
    if basis.exclude(reversal__grant__ledger_epoch_credit__amount_micro=0).exists() \
            or basis.exclude(entry__isnull=True).exists():
        return "reversed credit said to have left its epoch's basis was counted in it"
    return None


def _merged_into(volunteer_id: int | None, target_id: int | None) -> bool:
    from sparecycles.volunteers.models import Volunteer

    seen = set()
    while volunteer_id is not None and volunteer_id not in seen:
        seen.add(volunteer_id)
        volunteer_id = (Volunteer.objects.filter(pk=volunteer_id)
                        .values_list("merged_into_id", flat=True).first())
        if volunteer_id == target_id:
            return True
    return False


def _check_policy_row(policy: PolicyVersion | None, record: dict) -> str | None:
    if policy is None or policy.version != record["data"]["version"]:
        return f"policy v{record['data']['version']}'s row is missing"
    return None


CACHE_SECONDS = 60


def verify_ledger_cached() -> tuple[VerifyReport, dt.datetime]:
    """verify_ledger for the public page and API: at most once a minute per chain head."""
    seq, digest = chain_head()
    key = f"ledger:verify:{seq}:{digest}"
    cached = cache.get(key)
    if cached is None:
        cached = (verify_ledger(), timezone.now())
        cache.set(key, cached, CACHE_SECONDS)
    return cached
