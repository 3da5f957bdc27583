"""Reversed credit in the books: out of an open epoch's basis, or clawed back from payouts.

TEST_POLICY pays 1,000 tokens an epoch for epochs 0-3, 500 for 4-7.
"""

import datetime as dt
import random

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sparecycles.credit.models import CreditGrant
from sparecycles.credit.services import credit_reverse_many
from sparecycles.ledger.chain import record_hash
from sparecycles.ledger.clawback import clawback_tokens
from sparecycles.ledger.models import (
    Account,
    ChainHead,
    Epoch,
    JournalEntry,
    JournalLine,
    ReversalClaim,
)
from sparecycles.ledger.selectors import entry_record, supply_summary
from sparecycles.ledger.services import (
    InsufficientFunds,
    epoch_close,
    epochs_close_due,
    ledger_init,
    tokens_burn,
    tokens_transfer,
)
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger

from .conftest import GENESIS, TEST_POLICY, at, skip_on_sqlite
from .test_tamper import flip_char, mutate_json

pytestmark = pytest.mark.django_db

T = MICRO  # one token, in micro-tokens


def balance(volunteer) -> int:
    return (Account.objects.filter(code=f"volunteer-{volunteer.pk}")
            .values_list("balance_micro", flat=True).first() or 0)


def clawbacks() -> list[JournalEntry]:
    return list(JournalEntry.objects.filter(kind="clawback").order_by("seq"))


def lines(entry: JournalEntry) -> dict[str, int]:
    return dict(entry.lines.values_list("account__code", "amount_micro"))


def assert_books_hold():
    summary = supply_summary()
    holders = (Account.objects.filter(kind__in=["volunteer", "treasury"])
               .aggregate(s=Sum("balance_micro"))["s"] or 0)
    assert summary["supply_micro"] == holders == summary["emitted_micro"] - summary["burned_micro"]
    report = verify_ledger()
    assert report.ok, report.problem
    return report


def test_credit_reversed_before_its_epoch_closes_leaves_the_basis(ledger, volunteers, grant):
    honest, cheat = volunteers[:2]
    grant(honest, 3 * MICRO, at(0, 10))
    bad = grant(cheat, 1 * MICRO, at(0, 20))
    assert credit_reverse_many(replica_ids=[bad.replica_id], reason="spot check failed") == 1
    epoch_close(index=0, now=at(1))
    epoch = Epoch.objects.get(index=0)
    assert epoch.credit_micro == 3 * MICRO
    assert balance(honest) == 1000 * T and balance(cheat) == 0
    assert clawbacks() == []      # nothing was paid for it, so nothing is owed
    claim = ReversalClaim.objects.get()
    assert claim.kind == "basis" and claim.tokens_micro == 0 and claim.entry is None
    assert_books_hold()


def test_paid_credit_reversed_is_withheld_from_the_next_payout(ledger, volunteers, grant):
    honest, cheat = volunteers[:2]
    grant(honest, 1 * MICRO, at(0, 10))
    bad = grant(cheat, 3 * MICRO, at(0, 20))
    epoch_close(index=0, now=at(1))
    assert balance(cheat) == 750 * T
    credit_reverse_many(replica_ids=[bad.replica_id], reason="caught colluding")
    assert balance(cheat) == 750 * T            # a reversal alone moves no tokens

    grant(honest, 1 * MICRO, at(1, 10))
    grant(cheat, 1 * MICRO, at(1, 20))           # earns 500 in epoch 1: all withheld
    epoch_close(index=1, now=at(2))
    [first] = clawbacks()
    code = f"volunteer-{cheat.pk}"
    assert first.seq == Epoch.objects.get(index=1).entry.seq + 1
    assert lines(first) == {code: -500 * T, "treasury": 500 * T}
    assert first.data == {"epoch": 1, "reversals": [[code, 0, 3 * MICRO, 750 * T, code]],
                          "owed": [[code, 250 * T]]}
    assert balance(cheat) == 750 * T            # +500 paid, -500 withheld
    assert Account.objects.get(code="treasury").balance_micro == 500 * T
    assert_books_hold()

    # The 250 still owed carries over: epoch 2 pays the cheat 500, 250 of it withheld.
    grant(honest, 1 * MICRO, at(2, 10))
    grant(cheat, 1 * MICRO, at(2, 20))
    epoch_close(index=2, now=at(3))
    second = clawbacks()[1]
    assert lines(second) == {code: -250 * T, "treasury": 250 * T}
    assert second.data == {"epoch": 2, "reversals": [], "owed": [[code, 0]]}
    assert balance(cheat) == 750 * T + 500 * T - 500 * T + 500 * T - 250 * T
    # Nothing is owed any more: epoch 3 pays in full and writes no clawback.
    grant(cheat, 1 * MICRO, at(3, 20))
    epoch_close(index=3, now=at(4))
    assert len(clawbacks()) == 2
    report = assert_books_hold()
    assert report.totals["clawed_back"] == 750 * T and report.totals["owed"] == 0
    # The clawed-back tokens equal exactly what the reversed credit earned.
    withheld = -(JournalLine.objects.filter(entry__kind="clawback", account__code=code)
                 .aggregate(s=Sum("amount_micro"))["s"])
    assert withheld == 750 * T


def test_a_debt_waits_while_the_account_earns_nothing(ledger, volunteers, grant):
    honest, cheat = volunteers[:2]
    bad = grant(cheat, 2 * MICRO, at(0, 20))
    grant(honest, 2 * MICRO, at(0, 10))
    epoch_close(index=0, now=at(1))
    credit_reverse_many(replica_ids=[bad.replica_id], reason="quarantined")
    grant(honest, 1 * MICRO, at(1, 10))
    epochs_close_due(now=at(3))                  # epochs 1 and 2: the cheat earns nothing
    [registered] = clawbacks()                  # the debt is published at the first close
    code = f"volunteer-{cheat.pk}"
    assert registered.data["owed"] == [[code, 500 * T]] and lines(registered) == {}
    assert balance(cheat) == 500 * T            # tokens held are never seized
    grant(cheat, 1 * MICRO, at(3, 10))
    epoch_close(index=3, now=at(4))              # pays the cheat 1000: 500 withheld
    assert lines(clawbacks()[-1]) == {code: -500 * T, "treasury": 500 * T}
    assert balance(cheat) == 1000 * T
    assert_books_hold()


def test_a_claimed_volunteers_debt_is_withheld_from_the_account_it_joined(ledger, volunteers,
                                                                           grant):
    """Cheat anonymously, get paid, claim the device into an account (the tokens move
    there), be found out: the account's payouts repay the debt."""
    from sparecycles.accounts.services import volunteer_merge

    anonymous, account, other = volunteers[:3]
    bad = grant(anonymous, MICRO, at(0, 10))
    grant(other, MICRO, at(0, 20))
    epoch_close(index=0, now=at(1))
    with transaction.atomic():
        volunteer_merge(source=anonymous, target=account)
    assert balance(anonymous) == 0 and balance(account) == 500 * T
    credit_reverse_many(replica_ids=[bad.replica_id], reason="colluder")
    grant(account, MICRO, at(1, 10))
    epoch_close(index=1, now=at(2))              # pays the account 1000: 500 withheld
    [entry] = clawbacks()
    paid, charged = f"volunteer-{anonymous.pk}", f"volunteer-{account.pk}"
    assert entry.data["reversals"] == [[paid, 0, MICRO, 500 * T, charged]]
    assert lines(entry) == {charged: -500 * T, "treasury": 500 * T}
    assert balance(account) == 1000 * T
    assert_books_hold()
    # Charging the debt to anyone else is caught against the database.
    ReversalClaim.objects.update(charged=Account.objects.get(code=f"volunteer-{other.pk}"))
    report = verify_ledger()
    assert not report.ok


def test_partial_reversals_claw_back_exactly_what_was_paid(ledger, volunteers, grant):
    """Three thirds of one payout: floors are cumulative, so 333 + 333 + 334 = 1000."""
    cheat, other = volunteers[:2]
    thirds = [grant(cheat, MICRO, at(0, i)) for i in range(3)]
    epoch_close(index=0, now=at(1))
    assert balance(cheat) == 1000 * T
    debts = []
    for i, g in enumerate(thirds):
        credit_reverse_many(replica_ids=[g.replica_id], reason="revalidated")
        grant(other, MICRO, at(1 + i, 10))
        epoch_close(index=1 + i, now=at(2 + i))
        debts.append(clawbacks()[-1].data["reversals"][0][3])
    assert debts == [333_333_333, 333_333_333, 333_333_334]
    assert sum(debts) == 1000 * T
    assert clawback_tokens(paid=1000, credit=3, reversed_before=0, reversed_now=3) == 1000
    assert_books_hold()


def test_a_reversal_is_claimed_once(ledger, volunteers, grant):
    cheat, other = volunteers[:2]
    bad = grant(cheat, MICRO, at(0))
    epoch_close(index=0, now=at(1))
    assert credit_reverse_many(replica_ids=[bad.replica_id], reason="x") == 1
    assert credit_reverse_many(replica_ids=[bad.replica_id], reason="again") == 0
    grant(other, MICRO, at(1))
    epochs_close_due(now=at(4))
    assert ReversalClaim.objects.count() == 1
    code = f"volunteer-{cheat.pk}"
    assert [e.data["reversals"] for e in clawbacks()] == [[[code, 0, MICRO, 1000 * T, code]]]
    claim = ReversalClaim.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        ReversalClaim.objects.create(reversal=claim.reversal, kind="debt",
                                     closed_in=claim.closed_in, credit_epoch=claim.credit_epoch,
                                     credit_micro=claim.credit_micro)
    assert_books_hold()


@pytest.fixture
def clawed(ledger, volunteers, grant):
    """Epoch 0 pays a cheat, its credit is reversed, epoch 1 withholds part of the debt."""
    honest, cheat = volunteers[:2]
    grant(honest, MICRO, at(0, 10))
    bad = grant(cheat, 3 * MICRO, at(0, 20))
    epoch_close(index=0, now=at(1))
    credit_reverse_many(replica_ids=[bad.replica_id], reason="caught")
    grant(honest, MICRO, at(1, 10))
    grant(cheat, MICRO, at(1, 20))
    epoch_close(index=1, now=at(2))
    grant(honest, MICRO, at(2, 10))
    epoch_close(index=2, now=at(3))
    assert verify_ledger().ok
    return honest, cheat, clawbacks()[0]


def rehash_from(entry: JournalEntry) -> None:
    """Recompute every hash from `entry` on, as a forger rewriting history would."""
    prev = JournalEntry.objects.get(seq=entry.seq - 1).hash
    for later in JournalEntry.objects.filter(seq__gte=entry.seq).order_by("seq"):
        JournalEntry.objects.filter(pk=later.pk).update(prev_hash=prev)
        later.refresh_from_db()
        prev = record_hash(entry_record(later))
        JournalEntry.objects.filter(pk=later.pk).update(hash=prev)
    ChainHead.objects.update(hash=prev)


def test_a_changed_clawback_amount_breaks_its_hash(clawed):
    _, cheat, entry = clawed
    JournalLine.objects.filter(entry=entry, account__code=f"volunteer-{cheat.pk}").update(
        amount_micro=-1)
    report = verify_ledger()
    assert not report.ok and report.problem.seq == entry.seq


def test_a_forged_smaller_clawback_fails_the_rules_even_rehashed(clawed):
    _, cheat, entry = clawed
    code = f"volunteer-{cheat.pk}"
    JournalLine.objects.filter(entry=entry, account__code=code).update(amount_micro=-1)
    JournalLine.objects.filter(entry=entry, account__code="treasury").update(amount_micro=1)
    Account.objects.filter(code=code).update(balance_micro=balance(cheat) + 500 * T - 1)
    Account.objects.filter(code="treasury").update(balance_micro=1)
    rehash_from(entry)
    report = verify_ledger()
    assert not report.ok and report.problem.seq == entry.seq
    assert "should withhold" in report.problem.message


def test_a_forged_smaller_debt_fails_the_rules_even_rehashed(clawed):
    _, cheat, entry = clawed
    data = {**entry.data, "reversals": [[f"volunteer-{cheat.pk}", 0, 3 * MICRO, 1,
                                           f"volunteer-{cheat.pk}"]]}
    JournalEntry.objects.filter(pk=entry.pk).update(data=data)
    rehash_from(entry)
    report = verify_ledger()
    assert not report.ok and report.problem.seq == entry.seq
    assert "earned 750000000" in report.problem.message


def test_a_removed_clawback_entry_is_missed_after_its_payout(clawed):
    _, _, entry = clawed
    ReversalClaim.objects.filter(entry=entry).update(entry=None)
    JournalLine.objects.filter(entry=entry).delete()
    entry.delete()
    for later in JournalEntry.objects.filter(seq__gt=entry.seq).order_by("seq"):
        JournalEntry.objects.filter(pk=later.pk).update(seq=later.seq - 1)
    rehash_from(JournalEntry.objects.get(seq=entry.seq))
    ChainHead.objects.update(seq=JournalEntry.objects.count())
    report = verify_ledger()
    assert not report.ok
    # Without the clawback entry the debt is unknown to the journal, so a forger would
    # also have to drop the reversal claim: the database check names it either way.
    assert "clawback" in report.problem.message


def test_a_claim_row_that_disagrees_with_its_entry_is_named(clawed):
    _, _, entry = clawed
    ReversalClaim.objects.filter(entry=entry).update(tokens_micro=1)
    report = verify_ledger()
    assert not report.ok and report.problem.seq == entry.seq
    assert "reversal claims" in report.problem.message


def test_a_basis_claim_for_credit_that_was_paid_is_named(ledger, volunteers, grant):
    cheat, other = volunteers[:2]
    bad = grant(cheat, MICRO, at(0))
    epoch_close(index=0, now=at(1))
    credit_reverse_many(replica_ids=[bad.replica_id], reason="x")
    grant(other, MICRO, at(1))
    epoch_close(index=1, now=at(2))
    ReversalClaim.objects.update(kind="basis", entry=None)
    report = verify_ledger()
    assert not report.ok


def test_pages_show_clawbacks_as_such(clawed, client):
    _, cheat, entry = clawed
    code = f"volunteer-{cheat.pk}"
    page = client.get(f"/ledger/accounts/{code}/").content.decode()
    assert "Clawback" in page and "-500" in page
    page = client.get(f"/ledger/entries/{entry.seq}/").content.decode()
    assert "Clawback" in page and "Reversed credit" in page and "750" in page
    page = client.get("/ledger/epochs/1/").content.decode()
    assert "Clawback" in page and f"#{entry.seq}" in page
    assert "Clawback" not in client.get("/ledger/epochs/0/").content.decode()
    body = client.get(f"/ledger/api/accounts/{code}").json()
    assert body["account"]["owed"] == "250"
    assert body["history"][0]["kind"] == "clawback"


def test_the_admin_lists_reversals_and_their_claims(clawed, admin_client):
    _, cheat, entry = clawed
    page = admin_client.get("/admin/ledger/reversalclaim/").content.decode()
    assert "Debt from a paid epoch" in page and f"volunteer-{cheat.pk}" in page
    assert "750" in page
    page = admin_client.get("/admin/credit/creditreversal/").content.decode()
    assert "caught" in page
    page = admin_client.get("/admin/ledger/journalentry/?kind=clawback").content.decode()
    assert "Clawback after epoch 1" in page
    assert admin_client.get("/admin/credit/creditreversal/add/").status_code == 403


# -- properties ----------------------------------------------------------------------------------

class Rollback(Exception):
    pass


# Rounds of an hour (one epoch of TEST_POLICY): credit earned in it, reversals of any
# earlier grant, a movement, then maybe the closes that are due. Rounds make paid-then-
# reversed credit common, so most examples exercise debts, carry-over and withholding.
rounds = st.lists(st.tuples(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50 * MICRO)), max_size=4),
    st.lists(st.integers(0, 200), max_size=3),
    st.one_of(st.none(), st.tuples(st.sampled_from(["transfer", "burn"]), st.integers(0, 3),
                                   st.integers(1, 400 * MICRO))),
    st.booleans(),
), max_size=12)


def check_clawback_books() -> None:
    assert_books_hold()
    # Every debt is what the reversed credit earned, never more than its epoch paid.
    for (code, index), (credit, tokens) in _debts().items():
        epoch = Epoch.objects.get(index=index)
        paid = (JournalLine.objects.filter(entry=epoch.entry, account__code=code)
                .values_list("amount_micro", flat=True).first() or 0)
        had = dict(map(tuple, epoch.entry.data["credits"]))[code]
        assert credit <= had and tokens == paid * credit // had
    # Withheld + still owed == all debts; nothing withheld beyond a debt.
    debts = sum(t for _, t in _debts().values())
    withheld = JournalLine.objects.filter(entry__kind="clawback", account__code="treasury") \
        .aggregate(s=Sum("amount_micro"))["s"] or 0
    report = verify_ledger()
    assert withheld == report.totals["clawed_back"]
    assert withheld + report.totals["owed"] == debts


def _debts() -> dict:
    rows = (ReversalClaim.objects.filter(kind="debt").values("account__code", "credit_epoch__index")
            .annotate(c=Sum("credit_micro"), t=Sum("tokens_micro")).order_by())
    return {(r["account__code"], r["credit_epoch__index"]): (r["c"], r["t"]) for r in rows}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=rounds)
def test_reversals_keep_the_books_balanced(volunteers, grant, plan):
    try:
        with transaction.atomic():
            ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
            now = GENESIS + dt.timedelta(minutes=1)
            grants = []
            codes = [f"volunteer-{v.pk}" for v in volunteers]
            for credits, reversals, movement, close in plan:
                for who, amount in credits:
                    grants.append(grant(volunteers[who], amount, now))
                if grants and reversals:
                    ids = [grants[i % len(grants)].replica_id for i in reversals]
                    credit_reverse_many(replica_ids=ids, reason="property")
                if movement:
                    kind, who, amount = movement
                    try:
                        if kind == "transfer":
                            tokens_transfer(source=codes[who], destination="treasury",
                                            amount_micro=amount, now=now)
                        else:
                            tokens_burn(source=codes[who], amount_micro=amount, now=now)
                    except InsufficientFunds:
                        pass
                now += dt.timedelta(hours=1)
                if close:
                    epochs_close_due(now=now)
                check_clawback_books()
            epochs_close_due(now=now + dt.timedelta(hours=2))
            check_clawback_books()
            event(f"clawback entries: {min(len(clawbacks()), 2)}")
            event(f"tokens withheld: {bool(verify_ledger().totals['clawed_back'])}")
            # Every reversal is accounted once it is in a closed epoch that has paid.
            from sparecycles.credit.models import CreditReversal
            assert ReversalClaim.objects.count() == CreditReversal.objects.filter(
                grant__ledger_epoch_credit__isnull=False).count()
            # Epochs' credit is what stood: reversed-before-close grants left the basis.
            basis = ReversalClaim.objects.filter(kind="basis").aggregate(
                s=Sum("credit_micro"))["s"] or 0
            granted = sum(CreditGrant.objects.values_list("amount_micro", flat=True))
            assert sum(Epoch.objects.values_list("credit_micro", flat=True)) == granted - basis
            raise Rollback
    except Rollback:
        pass


# -- concurrency (PostgreSQL) --------------------------------------------------------------------

@skip_on_sqlite
@pytest.mark.django_db(transaction=True)
def test_reversals_racing_epoch_closes_are_each_accounted_once(volunteers, grant):
    """Closers and reversers at once: each reversal lands in exactly one claim, either out
    of its epoch's basis or as a debt, and the books verify whatever the interleaving."""
    import threading

    from django.db import connection

    ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
    grants = [grant(volunteers[i % 4], (i % 5 + 1) * MICRO, at(i % 6, i * 7 % 3600))
              for i in range(48)]
    epochs_close_due(now=at(2))
    batches = [grants[i::4] for i in range(4)]
    barrier = threading.Barrier(len(batches) + 3)
    errors = []

    def run(action):
        try:
            barrier.wait(timeout=30)
            action()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    actions = [lambda b=b: credit_reverse_many(replica_ids=[g.replica_id for g in b],
                                               reason="race") for b in batches]
    actions += [lambda: epochs_close_due(now=at(6))] * 3
    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    epochs_close_due(now=at(8))     # anything reversed mid-close is claimed by a later one
    assert Epoch.objects.count() == 8
    assert ReversalClaim.objects.count() == 48
    check_clawback_books()
    # Epochs 0 and 1 had paid before any reversal: all their credit is debt.
    early = sum(g.amount_micro for g in grants if g.granted_at < at(2))
    assert (ReversalClaim.objects.filter(kind="debt").aggregate(s=Sum("credit_micro"))["s"]
            >= early)


def test_the_downloaded_journal_alone_recomputes_every_clawback(clawed, grant, client):
    import json

    from sparecycles.ledger.verify import verify_records

    _, cheat, _ = clawed
    grant(cheat, MICRO, at(3, 10))
    epoch_close(index=3, now=at(4))            # pays the cheat 1000, withholds the 250 owed
    body = b"".join(client.get("/ledger/api/journal.jsonl").streaming_content)
    records = [json.loads(line) for line in body.splitlines()]
    report = verify_records(records)
    assert report.ok, report.problem
    assert report.totals["clawed_back"] == 750 * T and report.totals["owed"] == 0

    def rehashed(forged: list[dict], start: int) -> list[dict]:
        for i in range(start, len(forged)):
            forged[i] = {**forged[i], "seq": i + 1, "prev": forged[i - 1]["hash"]}
            forged[i]["hash"] = record_hash(forged[i])
        return forged

    # A forger who drops the last clawback entry and rehashes: the payout to an account
    # that owes is no longer followed by its clawback.
    last = max(i for i, r in enumerate(records) if r["kind"] == "clawback")
    report = verify_records(rehashed(records[:last] + records[last + 1:], last))
    assert not report.ok and "no clawback entry follows" in report.problem.message
    # One who keeps the first clawback entry but withholds nothing.
    first = min(i for i, r in enumerate(records) if r["kind"] == "clawback")
    forged = list(records)
    forged[first] = {**forged[first], "lines": []}
    report = verify_records(rehashed(forged, first))
    assert not report.ok and report.problem.seq == first + 1
    assert "should withhold" in report.problem.message


def test_verify_ledger_command_reports_clawbacks(clawed, capsys):
    from django.core.management import call_command

    call_command("verify_ledger")
    assert "clawed back 500, still owed 250" in capsys.readouterr().out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(field=st.sampled_from(["kind", "memo", "data", "prev_hash", "hash", "at",
                              "line_amount", "line_account"]),
       seed=st.integers(min_value=0, max_value=2**32))
def test_any_single_change_to_a_clawback_entry_is_named_at_it(clawed, field, seed):
    """As test_tamper does for every entry: one changed byte of the clawback entry."""
    rng = random.Random(seed)
    _, _, entry = clawed
    target = JournalEntry.objects.filter(pk=entry.pk)
    try:
        with transaction.atomic():
            if field in ("kind", "memo", "prev_hash", "hash"):
                value = getattr(entry, field)
                target.update(**{field: flip_char(value, rng.randrange(len(value)))})
            elif field == "data":
                target.update(data=mutate_json(entry.data, rng))
            elif field == "at":
                target.update(at=entry.at + dt.timedelta(microseconds=1 << rng.randrange(40)))
            else:
                line = rng.choice(list(JournalLine.objects.filter(entry=entry)))
                if field == "line_amount":
                    amount = line.amount_micro ^ (1 << rng.randrange(40))
                    JournalLine.objects.filter(pk=line.pk).update(
                        amount_micro=amount or line.amount_micro + 1)
                else:
                    used = set(JournalLine.objects.filter(entry=entry)
                               .values_list("account_id", flat=True))
                    spare = Account.objects.exclude(pk__in=used).order_by("?").first()
                    JournalLine.objects.filter(pk=line.pk).update(account=spare)
            report = verify_ledger()
            assert not report.ok
            assert report.problem.seq == entry.seq, (field, report.problem)
            raise Rollback
    except Rollback:
        pass


@pytest.mark.django_db(transaction=True)
def test_a_close_killed_after_its_clawback_leaves_no_trace(volunteers, grant, tmp_path):
    """SIGKILL inside the closing transaction, right after the clawback step: neither the
    payout nor the clawback nor the claims survive; the restart withholds once."""
    import signal

    from .processes import result, spawn
    from .test_crash import wait_for

    ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
    cheat, other = volunteers[:2]
    bad = grant(cheat, MICRO, at(0, 10))
    grant(other, MICRO, at(0, 20))
    epoch_close(index=0, now=at(1))
    credit_reverse_many(replica_ids=[bad.replica_id], reason="caught")
    grant(cheat, MICRO, at(1, 10))
    marker = tmp_path / "inside"
    victim = spawn("crash", "_clawback_step", at(2).isoformat(), marker)
    wait_for(marker, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert Epoch.objects.count() == 1 and not clawbacks()
    assert not ReversalClaim.objects.exists()
    assert result(spawn("close", at(2).isoformat(), 0))["closed"] == [1]
    [entry] = clawbacks()
    code = f"volunteer-{cheat.pk}"
    assert lines(entry) == {code: -500 * T, "treasury": 500 * T}
    assert ReversalClaim.objects.get().entry == entry
    assert balance(cheat) == 500 * T + 1000 * T - 500 * T
    assert_books_hold()
