"""For any sequence of credits, epoch closes, transfers and burns: the books hold.

supply == sum of holders' balances == emitted - burned; every entry balances;
every balance equals the sum of its lines; the chain verifies; every grant is
in exactly one closed epoch; each epoch pays exactly its emission.
"""

import datetime as dt

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparecycles.credit.models import CreditGrant
from sparecycles.ledger.models import Account, Epoch, EpochCredit, JournalEntry, JournalLine
from sparecycles.ledger.selectors import supply_summary
from sparecycles.ledger.services import (
    InsufficientFunds,
    epochs_close_due,
    ledger_init,
    tokens_burn,
    tokens_transfer,
)
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger

from .conftest import GENESIS, TEST_POLICY

pytestmark = pytest.mark.django_db

HOLDER = st.sampled_from(["v0", "v1", "v2", "v3", "treasury"])
operations = st.lists(st.one_of(
    # credit: who, how much, how many seconds ago it was granted (late commits cross epochs)
    st.tuples(st.just("credit"), st.integers(0, 3), st.integers(0, 50 * MICRO),
              st.integers(0, 5400)),
    st.tuples(st.just("tick"), st.integers(1, 7200)),          # time passes
    st.tuples(st.just("close")),
    st.tuples(st.just("transfer"), HOLDER, HOLDER, st.integers(1, 400 * MICRO)),
    st.tuples(st.just("burn"), HOLDER, st.integers(1, 300 * MICRO)),
), max_size=40)


class Rollback(Exception):
    pass


def check_books(expected_emission: dict[int, int] | None = None) -> None:
    summary = supply_summary()
    holders = (Account.objects.filter(kind__in=["volunteer", "treasury"])
               .aggregate(s=Sum("balance_micro"))["s"] or 0)
    assert summary["supply_micro"] == holders == \
        summary["emitted_micro"] - summary["burned_micro"]
    assert (Account.objects.aggregate(s=Sum("balance_micro"))["s"] or 0) == 0
    for entry_id in JournalEntry.objects.values_list("id", flat=True):
        assert (JournalLine.objects.filter(entry_id=entry_id)
                .aggregate(s=Sum("amount_micro"))["s"] or 0) == 0
    for account in Account.objects.all():
        assert account.balance_micro == (account.lines.aggregate(s=Sum("amount_micro"))["s"] or 0)
        assert account.kind == "emission" or account.balance_micro >= 0
    for epoch in Epoch.objects.all():
        paid = JournalLine.objects.filter(entry=epoch.entry, amount_micro__gt=0)
        assert (paid.aggregate(s=Sum("amount_micro"))["s"] or 0) == epoch.emission_micro
    report = verify_ledger()
    assert report.ok, report.problem


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
def test_the_books_always_balance(volunteers, grant, ops):
    try:
        with transaction.atomic():
            ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
            now = GENESIS
            codes = {f"v{i}": f"volunteer-{v.pk}" for i, v in enumerate(volunteers)}
            codes["treasury"] = "treasury"
            for op in ops:
                if op[0] == "credit":
                    _, who, amount, ago = op
                    grant(volunteers[who], amount, now - dt.timedelta(seconds=ago))
                elif op[0] == "tick":
                    now += dt.timedelta(seconds=op[1])
                elif op[0] == "close":
                    epochs_close_due(now=now)
                elif op[0] == "transfer":
                    _, source, destination, amount = op
                    if source == destination:
                        continue
                    try:
                        tokens_transfer(source=codes[source], destination=codes[destination],
                                        amount_micro=amount, now=now)
                    except InsufficientFunds:
                        pass
                elif op[0] == "burn":
                    try:
                        tokens_burn(source=codes[op[1]], amount_micro=op[2], now=now)
                    except InsufficientFunds:
                        pass
                check_books()
            # Close everything up to a moment after the last grant: each grant in one epoch.
            epochs_close_due(now=now + dt.timedelta(hours=2))
            check_books()
            assert EpochCredit.objects.count() == CreditGrant.objects.count()
            assert sum(Epoch.objects.values_list("credit_micro", flat=True)) == \
                sum(CreditGrant.objects.values_list("amount_micro", flat=True))
            raise Rollback
    except Rollback:
        pass
