"""PostgreSQL: several processes close epochs (and move tokens) at once; each epoch is paid
exactly once and no balance goes negative. Skipped on SQLite, whose writers never overlap."""

import pytest
from django.db.models import Sum

from sparecycles.ledger.models import Account, Epoch, EpochCredit, JournalEntry
from sparecycles.ledger.services import ledger_init
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger

from .conftest import GENESIS, TEST_POLICY, at, skip_on_sqlite
from .processes import StartLine, result, spawn

pytestmark = [skip_on_sqlite, pytest.mark.django_db(transaction=True)]

CLOSERS = 5


@pytest.fixture
def credited(volunteers, grant):
    ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
    grants = [grant(volunteers[i % 4], (i % 7 + 1) * MICRO, at(i % 6, i * 13 % 3600))
              for i in range(60)]
    return volunteers, grants


def test_concurrent_closers_pay_each_epoch_exactly_once(credited, tmp_path):
    volunteers, grants = credited
    codes = [f"volunteer-{v.pk}" for v in volunteers] + ["treasury"]
    start = StartLine(tmp_path, CLOSERS + 3)
    closers = [spawn("close", at(6).isoformat(), start) for _ in range(CLOSERS)]
    movers = [spawn("transfers", at(6).isoformat(), start, seed, 40, *codes)
              for seed in range(3)]
    start.go()
    closed = [result(p)["closed"] for p in closers]
    moved = [result(p) for p in movers]

    everything = sorted(i for indexes in closed for i in indexes)
    assert everything == [0, 1, 2, 3, 4, 5]          # each epoch closed by exactly one process
    assert sum(m["done"] for m in moved) > 0
    assert Epoch.objects.count() == JournalEntry.objects.filter(kind="epoch").count() == 6
    assert EpochCredit.objects.count() == len(grants)
    assert set(EpochCredit.objects.values_list("grant_id", flat=True)) == {g.pk for g in grants}
    emitted = -Account.objects.get(code="emission").balance_micro
    assert emitted == 4 * 1000 * MICRO + 2 * 500 * MICRO
    assert Account.objects.filter(balance_micro__lt=0).exclude(code="emission").count() == 0
    assert Account.objects.aggregate(s=Sum("balance_micro"))["s"] == 0
    report = verify_ledger()
    assert report.ok, report.problem


def test_racing_closers_of_one_epoch_pay_it_once(credited, tmp_path):
    start = StartLine(tmp_path, CLOSERS)
    workers = [spawn("close-index", 0, at(1).isoformat(), start) for _ in range(CLOSERS)]
    start.go()
    outcomes = [result(p)["closed_now"] for p in workers]
    assert outcomes.count(True) == 1 and outcomes.count(False) == CLOSERS - 1
    assert JournalEntry.objects.filter(kind="epoch").count() == 1
    assert verify_ledger().ok


def test_first_use_from_many_processes_starts_one_chain(volunteers, grant, tmp_path):
    """No chain yet: every process races to create the chain head and the genesis policy
    (the published daily default, genesis at midnight UTC of first use)."""
    grant(volunteers[0], MICRO, at(0))
    first_use = at(5)
    start = StartLine(tmp_path / "first", CLOSERS)
    start.go_file.parent.mkdir()
    workers = [spawn("close", first_use.isoformat(), start) for _ in range(CLOSERS)]
    start.go()
    assert [result(p)["closed"] for p in workers] == [[]] * CLOSERS
    assert JournalEntry.objects.filter(kind="policy").count() == 1
    assert Epoch.objects.count() == 0

    two_days_later = (first_use + 2 * (at(24) - at(0))).isoformat()
    start = StartLine(tmp_path / "second", CLOSERS)
    start.go_file.parent.mkdir()
    workers = [spawn("close", two_days_later, start) for _ in range(CLOSERS)]
    start.go()
    assert sorted(i for p in workers for i in result(p)["closed"]) == [0, 1]
    assert Epoch.objects.get(index=0).starts_at == GENESIS   # midnight of first use
    assert verify_ledger().ok
