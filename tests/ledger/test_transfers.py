"""Transfers and burns: balanced, refused with a clear message when short, never negative."""

import pytest

from sparecycles.ledger.models import Account, JournalEntry
from sparecycles.ledger.selectors import supply_summary, volunteer_balance_micro
from sparecycles.ledger.services import (
    InsufficientFunds,
    LedgerError,
    UnknownAccount,
    epoch_close,
    tokens_burn,
    tokens_transfer,
)
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger

from .conftest import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(ledger, volunteers, grant):
    grant(volunteers[0], MICRO, at(0))
    epoch_close(now=at(1))
    return volunteers


def code(volunteer) -> str:
    return f"volunteer-{volunteer.pk}"


def test_transfer_moves_tokens_and_creates_the_account_lazily(paid):
    a, b = paid[:2]
    assert not Account.objects.filter(code=code(b)).exists()
    entry = tokens_transfer(source=code(a), destination=code(b), amount_micro=250 * MICRO,
                            memo="thanks", now=at(1, 5))
    assert entry.kind == JournalEntry.Kind.TRANSFER
    assert volunteer_balance_micro(a) == 750 * MICRO
    assert volunteer_balance_micro(b) == 250 * MICRO
    assert verify_ledger().ok


def test_a_transfer_larger_than_the_balance_is_refused_and_changes_nothing(paid):
    a, b = paid[:2]
    entries = JournalEntry.objects.count()
    with pytest.raises(InsufficientFunds, match="holds 1000 tokens, fewer than the 1000.000001"):
        tokens_transfer(source=code(a), destination=code(b), amount_micro=1000 * MICRO + 1)
    assert volunteer_balance_micro(a) == 1000 * MICRO
    assert JournalEntry.objects.count() == entries


@pytest.mark.parametrize("source, destination, amount, error", [
    ("volunteer-0", "treasury", 1, UnknownAccount),
    ("emission", "treasury", 1, LedgerError),
    ("treasury", "burn", 1, LedgerError),
    ("treasury", "treasury", 1, LedgerError),
    ("treasury", "volunteer-99999", 1, UnknownAccount),
    ("treasury", "nobody", 1, UnknownAccount),
])
def test_bad_transfers_are_refused(paid, source, destination, amount, error):
    with pytest.raises(error):
        tokens_transfer(source=source, destination=destination, amount_micro=amount)


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, 2**53])
def test_amounts_are_positive_integers(paid, amount):
    with pytest.raises(LedgerError):
        tokens_transfer(source=code(paid[0]), destination="treasury", amount_micro=amount)


def test_burn_leaves_the_supply(paid):
    a = paid[0]
    tokens_burn(source=code(a), amount_micro=100 * MICRO, memo="gone")
    summary = supply_summary(now=at(2))
    assert summary["burned_micro"] == 100 * MICRO
    assert summary["supply_micro"] == summary["emitted_micro"] - summary["burned_micro"] == \
        900 * MICRO
    with pytest.raises(InsufficientFunds):
        tokens_burn(source=code(a), amount_micro=901 * MICRO)
    assert verify_ledger().ok


def test_the_database_refuses_a_negative_balance_even_behind_the_services_back(paid):
    from django.db import IntegrityError, transaction
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(code=code(paid[0])).update(balance_micro=-1)
