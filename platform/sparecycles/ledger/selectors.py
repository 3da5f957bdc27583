"""Reads of the ledger: balances, supply, epochs, proofs, histories, the journal."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Exists, Max, OuterRef, Sum
from django.utils import timezone

from sparecycles.credit.models import CreditGrant, CreditReversal
from sparecycles.volunteers.models import Volunteer

from .canonical import ZERO_HASH, canonical_json, from_us, to_us
from .chain import ACCOUNT_CODE
from .merkle import MerkleTree, leaf_bytes, leaf_hash
from .models import (
    Account,
    ChainHead,
    Epoch,
    EpochCredit,
    JournalEntry,
    JournalLine,
    PolicyVersion,
)
from .policy import PolicyRecord, Schedule, configured_genesis, configured_params
from .units import tokens_str

__all__ = ["volunteer_balance_micro", "tokens_str"]

CHUNK = 500


def volunteer_balance_micro(volunteer: Volunteer | int) -> int:
    """A volunteer's token balance in micro-tokens (0 before their first payout)."""
    volunteer_id = volunteer if isinstance(volunteer, int) else volunteer.pk
    balance = (Account.objects.filter(code=Account.volunteer_code(volunteer_id))
               .values_list("balance_micro", flat=True).first())
    return balance or 0


def volunteers_balance_micro(volunteer_ids: list[int]) -> dict[int, int]:
    """`volunteer_balance_micro` for many volunteers, in one query."""
    codes = {Account.volunteer_code(pk): pk for pk in volunteer_ids}
    found = dict(Account.objects.filter(code__in=codes).values_list("code", "balance_micro"))
    return {pk: found.get(code) or 0 for code, pk in codes.items()}


def sealed_grant_ids():
    """The credit grants an epoch already counted (a query, for use in a filter): they
    stay with the volunteer they were paid to, so the journal still verifies."""
    return EpochCredit.objects.values("grant_id")


def volunteer_tokens(volunteer: Volunteer | int) -> str:
    """The volunteer's token balance as a decimal string (PROTOCOL.md)."""
    return tokens_str(volunteer_balance_micro(volunteer))


def volunteer_public_name(volunteer: Volunteer | None) -> str:
    if volunteer is None:
        return "Former volunteer"
    return volunteer.public_name


# -- chain head and schedule -------------------------------------------------------------------

def chain_head() -> tuple[int, str]:
    row = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    return row or (0, ZERO_HASH)


def policy_records() -> list[PolicyRecord]:
    return [p.record() for p in PolicyVersion.objects.all()]


def schedule(*, now: dt.datetime | None = None) -> tuple[Schedule, bool]:
    """The schedule in force, and whether the ledger has started. Before the first
    write, the genesis policy that settings would start it with."""
    records = policy_records()
    if records:
        return Schedule(records), True
    now = now or timezone.now()
    params = configured_params()
    genesis = configured_genesis(now, params.epoch_seconds)
    return Schedule([PolicyRecord(1, 0, to_us(genesis), params)]), False


# -- supply ------------------------------------------------------------------------------------

def supply_summary(*, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    sched, started = schedule(now=now)
    balances = dict(Account.objects.filter(code__in=["emission", "burn", "treasury"])
                    .values_list("code", "balance_micro"))
    emitted = -balances.get("emission", 0)
    burned = balances.get("burn", 0)
    holders = (Account.objects.filter(kind__in=[Account.Kind.VOLUNTEER, Account.Kind.TREASURY])
               .aggregate(s=Sum("balance_micro"))["s"] or 0)
    in_progress = sched.epoch_at(to_us(now))
    last_closed = Epoch.objects.aggregate(m=Max("index"))["m"]
    current = sched.governing(max(in_progress, 0))
    upcoming = [r for r in sched.records if r.effective_from_epoch > max(in_progress, 0)
                and r in sched.segments]
    seq, head_hash = chain_head()
    window = sched.window(in_progress) if in_progress >= 0 else None
    return {
        "started": started,
        "emitted_micro": emitted, "burned_micro": burned, "supply_micro": holders,
        "treasury_micro": balances.get("treasury", 0),
        "max_supply_micro": current.params.max_supply_micro,
        "genesis": from_us(sched.genesis_us),
        "epoch_in_progress": in_progress if in_progress >= 0 else None,
        "epoch_in_progress_ends": window.ends_at if window else from_us(sched.genesis_us),
        "epochs_closed": 0 if last_closed is None else last_closed + 1,
        "current_policy": current, "upcoming_policies": upcoming,
        "next_emission_micro": sched.emission(max(in_progress, 0), emitted_before=emitted),
        "head_seq": seq, "head_hash": head_hash,
        "accounts": Account.objects.filter(kind=Account.Kind.VOLUNTEER).count(),
        "schedule": sched,
    }


# -- epochs ------------------------------------------------------------------------------------

def epoch_list(*, before: int | None = None, limit: int = 50) -> list[Epoch]:
    qs = Epoch.objects.filter(entry__isnull=False).select_related("entry")
    if before is not None:
        qs = qs.filter(index__lt=before)
    return list(qs.order_by("-index")[:limit])


def epoch_get(index: int) -> Epoch | None:
    return Epoch.objects.filter(index=index, entry__isnull=False).select_related("entry").first()


@dataclass(frozen=True)
class Payout:
    index: int            # leaf position in the epoch's Merkle tree
    account: str
    amount_micro: int
    credit_micro: int


def epoch_payouts(epoch: Epoch) -> tuple[list[Payout], MerkleTree]:
    """The epoch's payouts in leaf order, and its Merkle tree."""
    lines = (JournalLine.objects.filter(entry_id=epoch.entry_id, amount_micro__gt=0)
             .order_by("position").values_list("account__code", "amount_micro"))
    credits = dict(map(tuple, epoch.entry.data.get("credits", [])))
    payouts = [Payout(index=i, account=code, amount_micro=amount,
                      credit_micro=credits.get(code, 0))
               for i, (code, amount) in enumerate(lines)]
    tree = MerkleTree([leaf_hash(leaf_bytes(epoch=epoch.index, account=p.account,
                                            amount=p.amount_micro)) for p in payouts])
    return payouts, tree


def payout_proof(epoch: Epoch, payout: Payout, tree: MerkleTree) -> dict:
    """Everything a browser needs to re-check one payout, as JSON."""
    leaf = leaf_bytes(epoch=epoch.index, account=payout.account, amount=payout.amount_micro)
    return {
        "epoch": epoch.index, "account": payout.account,
        "amount_micro": payout.amount_micro, "amount": tokens_str(payout.amount_micro),
        "credit_micro": payout.credit_micro,
        "leaf": leaf.decode(), "leaf_index": payout.index, "tree_size": tree.size,
        "audit_path": tree.audit_path(payout.index), "merkle_root": tree.root,
        "entry": {"seq": epoch.entry.seq, "hash": epoch.entry.hash,
                  "canonical": canonical_json(
                      {k: v for k, v in entry_record(epoch.entry).items() if k != "hash"}
                  ).decode()},
    }


def proof_for(epoch: Epoch, account: str) -> dict | None:
    payouts, tree = epoch_payouts(epoch)
    for payout in payouts:
        if payout.account == account:
            return payout_proof(epoch, payout, tree)
    return None


# -- accounts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountView:
    code: str
    kind: str
    balance_micro: int
    volunteer: Volunteer | None
    exists: bool

    @property
    def title(self) -> str:
        if self.kind == Account.Kind.VOLUNTEER:
            return volunteer_public_name(self.volunteer)
        return self.kind.capitalize()


def account_view(code: str) -> AccountView | None:
    """An account by code; a volunteer without tokens yet has an empty one."""
    if not ACCOUNT_CODE.match(code or ""):
        return None
    account = Account.objects.filter(code=code).select_related("volunteer").first()
    if account is not None:
        return AccountView(code=code, kind=account.kind, balance_micro=account.balance_micro,
                           volunteer=account.volunteer, exists=True)
    if code.startswith("volunteer-"):
        volunteer = Volunteer.objects.filter(pk=int(code.removeprefix("volunteer-"))).first()
        if volunteer is None:
            return None
        return AccountView(code=code, kind=Account.Kind.VOLUNTEER, balance_micro=0,
                           volunteer=volunteer, exists=False)
    return AccountView(code=code, kind=code, balance_micro=0, volunteer=None, exists=False)


@dataclass(frozen=True)
class HistoryRow:
    seq: int
    kind: str
    at: dt.datetime
    memo: str
    amount_micro: int
    balance_after_micro: int
    epoch: int | None
    entry_hash: str
    clawback_epoch: int | None = None   # a clawback entry: the epoch whose payout it follows


def account_history(code: str, *, before: int | None = None, limit: int = 50
                    ) -> list[HistoryRow]:
    """Newest first; each row with the balance right after that entry."""
    lines = JournalLine.objects.filter(account__code=code)
    if before is not None:
        lines = lines.filter(entry__seq__lt=before)
    rows = list(lines.select_related("entry").order_by("-entry__seq")[:limit])
    if not rows:
        return []
    balance = (Account.objects.filter(code=code).values_list("balance_micro", flat=True).first()
               or 0)
    later = (JournalLine.objects.filter(account__code=code, entry__seq__gt=rows[0].entry.seq)
             .aggregate(s=Sum("amount_micro"))["s"] or 0)
    balance -= later
    history = []
    for line in rows:
        entry = line.entry
        history.append(HistoryRow(
            seq=entry.seq, kind=entry.kind, at=entry.at, memo=entry.memo,
            amount_micro=line.amount_micro, balance_after_micro=balance,
            epoch=entry.data.get("epoch") if entry.kind == JournalEntry.Kind.EPOCH else None,
            entry_hash=entry.hash,
            clawback_epoch=entry.data.get("epoch")
            if entry.kind == JournalEntry.Kind.CLAWBACK else None))
        balance -= line.amount_micro
    return history


# -- the journal -------------------------------------------------------------------------------

def entry_record(entry: JournalEntry, lines: list[tuple[str, int]] | None = None) -> dict:
    """An entry as published: the exact content its hash is taken over, plus the hash."""
    if lines is None:
        lines = list(entry.lines.order_by("position").values_list("account__code", "amount_micro"))
    return {"seq": entry.seq, "at": to_us(entry.at), "kind": entry.kind, "memo": entry.memo,
            "data": entry.data, "lines": [{"account": c, "amount": n} for c, n in lines],
            "prev": entry.prev_hash, "hash": entry.hash}


def entry_get(seq: int) -> JournalEntry | None:
    return JournalEntry.objects.filter(seq=seq).first()


def journal_chunks(*, after: int = 0, upto: int | None = None, chunk: int = CHUNK
                   ) -> Iterator[list[tuple[JournalEntry, dict]]]:
    """Entries in seq order, a chunk (one query for entries, one for lines) at a time."""
    last = after
    while True:
        qs = JournalEntry.objects.filter(seq__gt=last)
        if upto is not None:
            qs = qs.filter(seq__lte=upto)
        entries = list(qs.order_by("seq")[:chunk])
        if not entries:
            return
        lines: dict[int, list[tuple[str, int]]] = {e.pk: [] for e in entries}
        for entry_id, code, amount in (
                JournalLine.objects.filter(entry_id__in=list(lines))
                .order_by("entry_id", "position")
                .values_list("entry_id", "account__code", "amount_micro")):
            lines[entry_id].append((code, amount))
        yield [(e, entry_record(e, lines[e.pk])) for e in entries]
        last = entries[-1].seq


def journal_jsonl(*, chunk: int = CHUNK) -> Iterator[bytes]:
    """The whole journal, one canonical JSON record per line, up to the head at the start."""
    upto, _ = chain_head()
    for batch in journal_chunks(upto=upto, chunk=chunk):
        yield b"".join(canonical_json(record) + b"\n" for _, record in batch)



# -- clawbacks ---------------------------------------------------------------------------------

def epoch_clawback(epoch: Epoch) -> JournalEntry | None:
    """The clawback entry that follows this epoch's payout, if anything was clawed back."""
    if epoch.entry is None:
        return None
    return JournalEntry.objects.filter(kind=JournalEntry.Kind.CLAWBACK,
                                       seq=epoch.entry.seq + 1).first()


def clawback_rows(entry: JournalEntry) -> dict:
    """A clawback entry for people: debts it registered, tokens withheld, what is owed."""
    withheld = dict(entry.lines.filter(amount_micro__lt=0)
                    .values_list("account__code", "amount_micro"))
    data = entry.data
    return {
        "epoch": data.get("epoch"),
        "reversals": [{"account": item[0], "epoch": item[1],
                       "project": item[2] if len(item) == 6 else "",
                       "credit_micro": item[-3], "tokens_micro": item[-2], "charged": item[-1]}
                      for item in data.get("reversals", [])],
        "owed": [{"account": code, "withheld_micro": -withheld.get(code, 0),
                  "owed_micro": owed} for code, owed in data.get("owed", [])],
        "withheld_micro": -sum(withheld.values()),
    }


def account_owed_micro(code: str) -> int:
    """Tokens the account still owes for reversed credit (withheld from its next payouts)."""
    from .models import ReversalClaim

    claimed = (ReversalClaim.objects.filter(charged__code=code, kind=ReversalClaim.Kind.DEBT)
               .aggregate(s=Sum("tokens_micro"))["s"] or 0)
    withheld = (JournalLine.objects.filter(account__code=code,
                                           entry__kind=JournalEntry.Kind.CLAWBACK,
                                           amount_micro__lt=0)
                .aggregate(s=Sum("amount_micro"))["s"] or 0)
    return claimed + withheld


# -- the volunteer's estimate for the epoch in progress ----------------------------------------

@dataclass(frozen=True)
class EpochEstimate:
    """What the volunteer page says about tokens not paid yet: an estimate, not a promise."""

    index: int
    closes_at: dt.datetime
    estimated_micro: int     # this volunteer's pro-rata share of the epoch's emission so far
    emission_micro: int


ESTIMATE_TOTAL_CACHE_S = 60


def epoch_estimate(*, volunteer_id: int, now: dt.datetime | None = None) -> EpochEstimate | None:
    """The epoch in progress, when it closes, and the volunteer's share of its emission if it
    closed now: emission × (their credit not yet in a closed epoch) / (everyone's). Under a
    per-project split (policy `project_shares`) the real payout differs; the page says so."""
    now = now or timezone.now()
    sched, _ = schedule(now=now)
    index = sched.epoch_at(to_us(now))
    if index < 0:
        return None
    window = sched.window(index)
    emitted = -(Account.objects.filter(code="emission")
                .values_list("balance_micro", flat=True).first() or 0)
    emission = sched.emission(index, emitted_before=emitted)
    unpaid = (CreditGrant.objects
              .filter(~Exists(EpochCredit.objects.filter(grant_id=OuterRef("pk"))),
                      ~Exists(CreditReversal.objects.filter(grant_id=OuterRef("pk")))))
    # Everyone's unpaid credit is one sum over all unpaid grants; every volunteer page asks
    # (an unauthenticated endpoint, every minute per device): summed once a minute per epoch.
    total_key = f"ledger:unpaid-total:{index}"
    total = cache.get(total_key)
    if total is None:
        total = unpaid.aggregate(s=Sum("amount_micro"))["s"] or 0
        cache.set(total_key, total, ESTIMATE_TOTAL_CACHE_S)
    mine = unpaid.filter(volunteer_id=volunteer_id).aggregate(s=Sum("amount_micro"))["s"] or 0
    total = max(total, mine)  # a cached total may predate this volunteer's newest grants
    share = emission * mine // total if total > 0 and mine > 0 else 0
    return EpochEstimate(index=index, closes_at=window.ends_at, estimated_micro=share,
                         emission_micro=emission)
