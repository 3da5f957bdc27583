"""The one place tokens move. Every write locks the chain head first.

Locking the singleton ChainHead row (SELECT ... FOR UPDATE) serialises ledger
writers on PostgreSQL; on SQLite the IMMEDIATE transaction mode already does.
So entries are appended one at a time, each hashed onto the one before: the
chain cannot fork, and balances read under the lock are current.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Case, Exists, F, Max, OuterRef, Sum, Value, When
from django.utils import timezone

from sparecycles import events
from sparecycles.credit.models import CreditGrant, CreditReversal
from sparecycles.volunteers.models import Device, Volunteer

from .canonical import canonical_json, from_us, sha256_hex, to_us
from .chain import ACCOUNT_CODE, payout_leaves
from .clawback import DESTINATION, clawback_books, clawback_item, clawback_tokens, withheld
from .merkle import merkle_root
from .models import (
    Account,
    ChainHead,
    Epoch,
    EpochCredit,
    JournalEntry,
    JournalLine,
    PolicyVersion,
    ReversalClaim,
)
from .policy import (
    PolicyError,
    PolicyParams,
    PolicyRecord,
    Schedule,
    configured_genesis,
    configured_params,
    project_code,
    split_by_project,
    split_pro_rata,
)
from .signals import epoch_closed
from .units import MAX_SAFE_MICRO, tokens_str

SYSTEM_ACCOUNTS = {"emission": Account.Kind.EMISSION, "treasury": Account.Kind.TREASURY,
                   "burn": Account.Kind.BURN}
CHUNK = 500


class LedgerError(Exception):
    """A refused ledger operation; the message says what happened and what to do."""


class InsufficientFunds(LedgerError):
    pass


class UnknownAccount(LedgerError):
    pass


class EpochNotDue(LedgerError):
    pass


class EpochOutOfOrder(LedgerError):
    pass


@dataclass(frozen=True)
class EpochClose:
    epoch: Epoch
    closed_now: bool        # False: it had been closed before (a retry); nothing was paid now
    grants_linked: int = 0


# -- the lock and the chain ------------------------------------------------------------------

def _lock_head() -> ChainHead:
    """Lock the chain head, creating it on first use (a racing creator just waits and retries)."""
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        try:
            with transaction.atomic():
                ChainHead.objects.create(pk=1)
        except IntegrityError:
            pass
        head = ChainHead.objects.select_for_update().get(pk=1)
    return head


def _start(now: dt.datetime) -> ChainHead:
    """Lock the head; the first write of all announces the genesis policy from settings."""
    head = _lock_head()
    if head.seq == 0:
        params = configured_params()
        _genesis(head, params=params, genesis=configured_genesis(now, params.epoch_seconds),
                 now=now)
    return head


def _system_account(code: str) -> Account:
    account, _ = Account.objects.get_or_create(code=code, defaults={"kind": SYSTEM_ACCOUNTS[code]})
    return account


def _schedule() -> Schedule:
    return Schedule([p.record() for p in PolicyVersion.objects.all()])


def _append_entry(head: ChainHead, *, kind: str, at: dt.datetime, memo: str = "",
                  data: dict | None = None, lines: dict[Account, int] | None = None
                  ) -> JournalEntry:
    """Hash one balanced entry onto the chain and apply it to the balances.

    `lines` maps accounts read under the head lock to signed amounts; zero
    amounts are dropped. The caller holds the lock (`head`).
    """
    items = sorted(((a, n) for a, n in (lines or {}).items() if n), key=lambda item: item[0].code)
    if sum(n for _, n in items):
        raise LedgerError("an entry's lines must sum to zero")
    data = data or {}
    record = {
        "seq": head.seq + 1, "at": to_us(at), "kind": kind, "memo": memo, "data": data,
        "lines": [{"account": a.code, "amount": n} for a, n in items], "prev": head.hash,
    }
    digest = sha256_hex(canonical_json(record))
    entry = JournalEntry.objects.create(seq=record["seq"], kind=kind, at=at, memo=memo, data=data,
                                        prev_hash=head.hash, hash=digest)
    JournalLine.objects.bulk_create(
        [JournalLine(entry=entry, position=i, account=a, amount_micro=n)
         for i, (a, n) in enumerate(items)], batch_size=CHUNK)
    for account, amount in items:
        account.balance_micro += amount
        if account.kind != Account.Kind.EMISSION and account.balance_micro < 0:
            raise InsufficientFunds(f"{account.code} would go negative")
    Account.objects.bulk_update([a for a, _ in items], ["balance_micro"], batch_size=CHUNK)
    head.seq, head.hash = record["seq"], digest
    head.save(update_fields=["seq", "hash"])
    return entry


def _policy_append(head: ChainHead, record: PolicyRecord, *, note: str, now: dt.datetime
                   ) -> PolicyVersion:
    entry = _append_entry(head, kind=JournalEntry.Kind.POLICY, at=now, memo=note,
                          data=record.as_data())
    p = record.params
    return PolicyVersion.objects.create(
        version=record.version, effective_from_epoch=record.effective_from_epoch,
        starts_at=from_us(record.starts_at_us), epoch_seconds=p.epoch_seconds,
        initial_emission_micro=p.initial_emission_micro, halving_epochs=p.halving_epochs,
        max_supply_micro=p.max_supply_micro, note=note, announced_at=now, entry=entry,
        project_shares=(None if p.project_shares is None
                        else [[code, share] for code, share in p.project_shares]),
    )


def _genesis(head: ChainHead, *, params: PolicyParams, genesis: dt.datetime,
             now: dt.datetime) -> PolicyVersion:
    for code in SYSTEM_ACCOUNTS:
        _system_account(code)
    record = PolicyRecord(version=1, effective_from_epoch=0, starts_at_us=to_us(genesis),
                          params=params.check())
    return _policy_append(head, record, note="Genesis policy", now=now)


# -- public services ---------------------------------------------------------------------------

@transaction.atomic
def ledger_init(*, params: PolicyParams | None = None, genesis: dt.datetime | None = None,
                now: dt.datetime | None = None) -> PolicyVersion:
    """Start the ledger with its genesis policy (settings by default); idempotent.

    Usually implicit: the first epoch close or transfer starts the ledger from
    settings. Asking for other parameters once it has started is refused.
    """
    now = now or timezone.now()
    head = _lock_head()
    if head.seq:
        first = PolicyVersion.objects.get(version=1)
        if (params and first.record().params != params) or (
                genesis and first.starts_at != genesis):
            raise PolicyError("The ledger has started already with another genesis policy; "
                              "announce a new policy version instead.")
        return first
    params = params or configured_params()
    return _genesis(head, params=params,
                    genesis=genesis or configured_genesis(now, params.epoch_seconds), now=now)


@transaction.atomic
def policy_announce(*, params: PolicyParams, effective_from_epoch: int | None = None,
                    note: str = "", now: dt.datetime | None = None) -> PolicyVersion:
    """Publish a new policy version on the ledger; it governs only epochs not begun yet."""
    now = now or timezone.now()
    params.check()
    if len(note) > 200:
        raise PolicyError("The note is limited to 200 characters.")
    head = _start(now)
    schedule = _schedule()
    last_closed = Epoch.objects.aggregate(m=Max("index"))["m"]
    earliest = max(schedule.epoch_at(to_us(now)), -1 if last_closed is None else last_closed) + 1
    if effective_from_epoch is None:
        effective_from_epoch = earliest
    if effective_from_epoch < earliest:
        raise PolicyError(f"A policy change takes effect only from a future epoch: epoch "
                          f"{earliest} or later, not {effective_from_epoch}.")
    latest = PolicyVersion.objects.aggregate(m=Max("version"))["m"] or 0
    record = PolicyRecord(version=latest + 1, effective_from_epoch=effective_from_epoch,
                          starts_at_us=schedule.window(effective_from_epoch).start_us,
                          params=params)
    return _policy_append(head, record, note=note, now=now)


@transaction.atomic
def epoch_close(*, index: int | None = None, now: dt.datetime | None = None
                ) -> EpochClose | None:
    """Close one reward epoch exactly once: link its credit, pay its emission, seal it.

    Without `index`: the next epoch, or None if it has not ended yet. With
    `index`: that epoch; an epoch closed before is returned with
    closed_now=False (a retry is harmless). One transaction: a crash anywhere
    rolls it all back, and the retry closes the epoch once. Concurrent closers
    queue on the chain-head lock and the second finds the epoch closed; the
    unique Epoch.index would refuse a second payout anyway.
    """
    now = now or timezone.now()
    head = _start(now)
    last = Epoch.objects.aggregate(m=Max("index"))["m"]
    next_index = 0 if last is None else last + 1
    explicit = index is not None
    if index is None:
        index = next_index
    if index < next_index:
        return EpochClose(epoch=Epoch.objects.get(index=index), closed_now=False)
    if index > next_index:
        raise EpochOutOfOrder(f"Epoch {next_index} must be closed before epoch {index}.")
    schedule = _schedule()
    window = schedule.window(index)
    if window.end_us > to_us(now):
        if explicit:
            raise EpochNotDue(f"Epoch {index} ends at {window.ends_at.isoformat()}; "
                              "close it after that.")
        return None

    # The claim: a second closer inserting the same index fails on the unique index.
    epoch = Epoch.objects.create(index=index, starts_at=window.starts_at, ends_at=window.ends_at,
                                 policy_version=window.policy.version, closed_at=now)
    linked = _link_grants(epoch, window.ends_at)
    per_volunteer = (EpochCredit.objects.filter(epoch=epoch).values("volunteer_id")
                     .annotate(credit=Sum("amount_micro")).order_by())
    credit_by_code = {Account.volunteer_code(row["volunteer_id"]): row["credit"]
                      for row in per_volunteer if row["credit"] > 0}
    credits = sorted(credit_by_code.items())

    emission_account = _system_account("emission")
    emission = schedule.emission(index, emitted_before=-emission_account.balance_micro)
    project_shares = window.policy.params.project_shares
    by_project = _credit_by_project(epoch) if project_shares is not None else None
    if by_project is not None:
        shares = split_by_project(emission, shares=project_shares, credits=by_project)
    elif emission and not credits:
        shares = {"treasury": emission}
    else:
        shares = split_pro_rata(emission, credits)
    accounts = _accounts_for(list(shares))
    lines = {emission_account: -emission} if emission else {}
    lines.update({accounts[code]: amount for code, amount in shares.items()})
    leaves = payout_leaves(index, [{"account": code, "amount": shares[code]}
                                   for code in sorted(shares)])
    root = merkle_root(leaves)
    data = {
        "epoch": index, "start": window.start_us, "end": window.end_us,
        "policy": window.policy.version, "emission": emission,
        "credit_total": sum(credit_by_code.values()),
        "credits": [[code, credit] for code, credit in credits],
        "merkle_root": root, "recipients": len(leaves),
    }
    if by_project is not None:  # what the verifier needs to redo the per-project split
        data["projects"] = [[code, [[v, c] for v, c in rows]]
                            for code, rows in sorted(by_project.items())]
    entry = _append_entry(head, kind=JournalEntry.Kind.EPOCH, at=now,
                          memo=f"Epoch {index}: {tokens_str(emission)} tokens", data=data,
                          lines=lines)
    _seal_epoch(epoch, entry=entry, data=data)
    _clawback_step(head, epoch=epoch, payouts=shares, now=now)
    volunteer_ids = [int(code.removeprefix("volunteer-")) for code in shares
                     if code.startswith("volunteer-")]
    # The paid volunteers' devices show their new balances (after commit, like the signal).
    events.stats_changed(Device.objects.filter(volunteer_id__in=volunteer_ids, revoked=False)
                         .values_list("pk", flat=True))
    transaction.on_commit(lambda: epoch_closed.send(sender=Epoch, index=index,
                                                    volunteer_ids=volunteer_ids))
    return EpochClose(epoch=epoch, closed_now=True, grants_linked=linked)


def epochs_close_due(*, now: dt.datetime | None = None, limit: int | None = None) -> list[Epoch]:
    """Close every epoch that has ended, oldest first, one transaction each."""
    now = now or timezone.now()
    closed: list[Epoch] = []
    while limit is None or len(closed) < limit:
        result = epoch_close(now=now)
        if result is None:
            break
        closed.append(result.epoch)
    return closed


def _link_grants(epoch: Epoch, end: dt.datetime) -> int:
    """Link every grant not yet in an epoch and granted before `end` to this epoch.

    A grant that commits late (granted_at before the end of an epoch already
    closed) is simply not linked yet, so it falls into the next epoch. A grant
    reversed already is linked with no credit: it leaves the epoch's basis.
    """
    reversed_ = Exists(CreditReversal.objects.filter(grant_id=OuterRef("pk")))
    unlinked = (CreditGrant.objects.filter(granted_at__lt=end)
                .filter(~Exists(EpochCredit.objects.filter(grant_id=OuterRef("pk"))))
                .annotate(counted=Case(When(reversed_, then=Value(0)), default=F("amount_micro"),
                                      output_field=BigIntegerField()))
                .order_by().values_list("id", "volunteer_id", "counted"))
    sql, params = unlinked.query.sql_with_params()
    table = connection.ops.quote_name(EpochCredit._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (epoch_id, grant_id, volunteer_id, amount_micro) "
            f"SELECT %s, sub.id, sub.volunteer_id, sub.counted FROM ({sql}) sub",
            [epoch.pk, *params])
        return cursor.rowcount


def _credit_by_project(epoch: Epoch) -> dict[str, list[tuple[str, int]]]:
    """The epoch's linked credit per project and volunteer, sorted by account code."""
    rows = (EpochCredit.objects.filter(epoch=epoch)
            .values("grant__project_id", "volunteer_id").annotate(credit=Sum("amount_micro"))
            .order_by())
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        if row["credit"] > 0:
            found.setdefault(project_code(row["grant__project_id"]), {})[
                Account.volunteer_code(row["volunteer_id"])] = row["credit"]
    return {code: sorted(per.items()) for code, per in found.items()}


def _seal_epoch(epoch: Epoch, *, entry: JournalEntry, data: dict) -> None:
    epoch.entry = entry
    epoch.credit_micro = data["credit_total"]
    epoch.emission_micro = data["emission"]
    epoch.recipients = data["recipients"]
    epoch.merkle_root = data["merkle_root"]
    epoch.save(update_fields=["entry", "credit_micro", "emission_micro", "recipients",
                              "merkle_root"])


def _accounts_for(codes: list[str]) -> dict[str, Account]:
    """Accounts by code, creating volunteer accounts on first use (caller holds the lock)."""
    found: dict[str, Account] = {}
    for i in range(0, len(codes), CHUNK):
        found.update((a.code, a) for a in Account.objects.filter(code__in=codes[i:i + CHUNK]))
    missing = [code for code in codes if code not in found]
    for code in missing:
        if code in SYSTEM_ACCOUNTS:
            found[code] = _system_account(code)
    new = [Account(code=code, kind=Account.Kind.VOLUNTEER,
                   volunteer_id=int(code.removeprefix("volunteer-")))
           for code in missing if code.startswith("volunteer-")]
    Account.objects.bulk_create(new, batch_size=CHUNK)
    for i in range(0, len(new), CHUNK):
        batch = [a.code for a in new[i:i + CHUNK]]
        found.update((a.code, a) for a in Account.objects.filter(code__in=batch))
    return found


def _holder(code: str, *, create: bool) -> Account | None:
    """An account that may hold tokens: the treasury or a volunteer's (created lazily).

    None for a volunteer who has no account yet when `create` is False: they hold nothing.
    """
    if not isinstance(code, str) or not ACCOUNT_CODE.match(code):
        raise UnknownAccount(f"{code!r} is not an account: use treasury or volunteer-<number>.")
    if code in ("emission", "burn"):
        raise LedgerError(f"The {code} account cannot hold or send tokens.")
    account = Account.objects.filter(code=code).first()
    if account is not None:
        return account
    if code == "treasury":
        return _system_account(code)
    volunteer_id = int(code.removeprefix("volunteer-"))
    if not Volunteer.objects.filter(pk=volunteer_id).exists():
        raise UnknownAccount(f"There is no volunteer {volunteer_id}: check the number.")
    return _accounts_for([code])[code] if create else None


def _check_funds(account: Account | None, code: str, amount_micro: int, verb: str) -> Account:
    balance = account.balance_micro if account else 0
    if balance < amount_micro:
        raise InsufficientFunds(f"{code} holds {tokens_str(balance)} tokens, fewer than the "
                                f"{tokens_str(amount_micro)} asked {verb}.")
    return account


def _check_amount(amount_micro: int) -> None:
    if isinstance(amount_micro, bool) or not isinstance(amount_micro, int):
        raise LedgerError("Amounts are integers of micro-tokens.")
    if not 0 < amount_micro <= MAX_SAFE_MICRO:
        raise LedgerError("The amount must be positive (and below 2^53 micro-tokens).")


@transaction.atomic
def tokens_transfer(*, source: str, destination: str, amount_micro: int, memo: str = "",
                    now: dt.datetime | None = None) -> JournalEntry:
    """Move tokens between two holders (volunteers or the treasury); refused if short."""
    _check_amount(amount_micro)
    if source == destination:
        raise LedgerError("A transfer needs two different accounts.")
    if len(memo) > 200:
        raise LedgerError("The memo is limited to 200 characters.")
    now = now or timezone.now()
    head = _start(now)
    src = _holder(source, create=False)
    dst = _holder(destination, create=True)
    src = _check_funds(src, source, amount_micro, "for")
    return _append_entry(head, kind=JournalEntry.Kind.TRANSFER, at=now, memo=memo,
                         lines={src: -amount_micro, dst: amount_micro})


@transaction.atomic
def tokens_burn(*, source: str, amount_micro: int, memo: str = "",
                now: dt.datetime | None = None) -> JournalEntry:
    """Destroy tokens: they move to the burn account and leave the supply for good."""
    _check_amount(amount_micro)
    if len(memo) > 200:
        raise LedgerError("The memo is limited to 200 characters.")
    now = now or timezone.now()
    head = _start(now)
    src = _check_funds(_holder(source, create=False), source, amount_micro, "to burn")
    return _append_entry(head, kind=JournalEntry.Kind.BURN, at=now, memo=memo,
                         lines={src: -amount_micro, _system_account("burn"): amount_micro})


# -- clawback (see clawback.py) ----------------------------------------------------------------

def _clawback_step(head: ChainHead, *, epoch: Epoch, payouts: dict[str, int],
                   now: dt.datetime) -> JournalEntry | None:
    """Right after an epoch's payout: claim new credit reversals, withhold what is owed.

    Every reversal not claimed yet whose grant is linked to this epoch or an earlier
    one is claimed once (the OneToOne on ReversalClaim.reversal; the chain-head lock
    serialises closers). A grant linked here without credit left this epoch's basis;
    one linked to an earlier epoch, which paid, is a debt of the account it was paid
    to. Then each indebted account gives up min(owed, its payout here) to the
    treasury. One "clawback" entry publishes both, or none if nothing happened. A
    reversal of a grant this very epoch counted (it committed after the grants were
    linked) waits for the next close, when this epoch has paid.
    """
    link = "grant__ledger_epoch_credit__"
    rows = list(
        CreditReversal.objects.filter(~Exists(ReversalClaim.objects.filter(
            reversal_id=OuterRef("pk"))))
        .filter(**{f"{link}epoch__index__lte": epoch.index})
        .order_by("pk")
        .values_list("pk", "amount_micro", f"{link}epoch_id", f"{link}epoch__index",
                     f"{link}amount_micro", f"{link}volunteer_id", "grant__project_id"))
    claims: list[ReversalClaim] = []
    # (paid account, paid epoch, project code or "" if that epoch paid site-wide)
    debts: dict[tuple[str, int, str], list[tuple[int, int]]] = {}
    paid_epochs = {e.index: e for e in Epoch.objects.filter(
        index__in={r[3] for r in rows if r[3] < epoch.index}).select_related("entry")}
    per_project = {index: clawback_books(e.entry.data, _schedule())
                   for index, e in paid_epochs.items()}
    for pk, credit, epoch_id, index, counted, volunteer_id, project_id in rows:
        if counted == 0:
            claims.append(ReversalClaim(reversal_id=pk, kind=ReversalClaim.Kind.BASIS,
                                        closed_in=epoch, credit_epoch_id=epoch_id,
                                        credit_micro=credit))
        elif index < epoch.index and volunteer_id is not None:
            project = project_code(project_id) if per_project[index] is not None else ""
            debts.setdefault((Account.volunteer_code(volunteer_id), index, project), []).append(
                (pk, credit))
    charged_code = _charged_codes({code for code, _, _ in debts})
    accounts = _accounts_for(sorted({code for code, _, _ in debts} | set(charged_code.values())))
    items = []
    for (code, index, project), reversals in sorted(debts.items()):
        paid_epoch = paid_epochs[index]
        before_claims = ReversalClaim.objects.filter(
            kind=ReversalClaim.Kind.DEBT, account__code=code, credit_epoch=paid_epoch)
        if project:   # the epoch paid per project: claw back what that project's part paid
            paid, credits = per_project[index].get(project, ({}, {}))
            paid, credit_total = paid.get(code, 0), credits.get(code, 0)
            before_claims = before_claims.filter(
                reversal__grant__project_id=int(project.removeprefix("project-")))
        else:
            paid = (JournalLine.objects.filter(entry_id=paid_epoch.entry_id, account__code=code)
                    .values_list("amount_micro", flat=True).first() or 0)
            credit_total = dict(map(tuple, paid_epoch.entry.data["credits"])).get(code, 0)
        before = before_claims.aggregate(s=Sum("credit_micro"))["s"] or 0
        credit_sum = tokens_sum = 0
        for pk, credit in reversals:   # one by one: each claim row carries its own share
            tokens = clawback_tokens(paid=max(paid, 0), credit=credit_total,
                                     reversed_before=before, reversed_now=credit)
            claims.append(ReversalClaim(reversal_id=pk, kind=ReversalClaim.Kind.DEBT,
                                        closed_in=epoch, credit_epoch=paid_epoch,
                                        account=accounts[code],
                                        charged=accounts[charged_code[code]],
                                        credit_micro=credit,
                                        tokens_micro=tokens))
            before += credit
            credit_sum += credit
            tokens_sum += tokens
        items.append(clawback_item(code, index, project, credit_sum, tokens_sum,
                                   charged_code[code]))

    owed = _clawback_owed(extra={code: sum(i[-2] for i in items if i[-1] == code)
                                 for *_, code in items})
    taken = withheld(owed=owed, payouts=payouts)
    entry = None
    if items or taken:
        touched = sorted({i[-1] for i in items} | set(taken))
        holders = _accounts_for(sorted(set(taken) | {DESTINATION}))
        lines = {holders[code]: -amount for code, amount in taken.items()}
        if taken:
            lines[holders[DESTINATION]] = sum(taken.values())
        data = {"epoch": epoch.index, "reversals": items,
                "owed": [[code, owed.get(code, 0) - taken.get(code, 0)] for code in touched]}
        memo = (f"Clawback after epoch {epoch.index}: {tokens_str(sum(taken.values()))} "
                f"tokens withheld for reversed credit")
        entry = _append_entry(head, kind=JournalEntry.Kind.CLAWBACK, at=now, memo=memo,
                              data=data, lines=lines)
        for claim in claims:
            if claim.kind == ReversalClaim.Kind.DEBT:
                claim.entry = entry
    ReversalClaim.objects.bulk_create(claims, batch_size=CHUNK)
    return entry


def _clawback_owed(*, extra: dict[str, int]) -> dict[str, int]:
    """What each account owes: debts claimed (plus `extra`, claimed now) minus withheld."""
    owed = dict(extra)
    for code, tokens in (ReversalClaim.objects.filter(kind=ReversalClaim.Kind.DEBT,
                                                      tokens_micro__gt=0)
                         .values("charged__code").annotate(s=Sum("tokens_micro"))
                         .values_list("charged__code", "s")):
        owed[code] = owed.get(code, 0) + tokens
    for code, amount in (JournalLine.objects.filter(entry__kind=JournalEntry.Kind.CLAWBACK,
                                                    amount_micro__lt=0,
                                                    account__code__in=list(owed))
                         .values("account__code").annotate(s=Sum("amount_micro"))
                         .values_list("account__code", "s")):
        owed[code] += amount
    return owed


def _charged_codes(codes: set[str]) -> dict[str, str]:
    """For each paid volunteer account, the account its debts are withheld from.

    A volunteer claimed into an account (volunteer_merge) has its tokens moved there
    and is paid nothing more itself, so its debts follow it, hop by hop.
    """
    owner = {code: int(code.removeprefix("volunteer-")) for code in codes}
    for _ in range(8):   # a merge folds an anonymous volunteer into an account: one hop
        hops = dict(Volunteer.objects.filter(pk__in=set(owner.values()),
                                             merged_into__isnull=False)
                    .values_list("pk", "merged_into_id"))
        if not hops:
            break
        owner = {code: hops.get(pk, pk) for code, pk in owner.items()}
    return {code: Account.volunteer_code(pk) for code, pk in owner.items()}
