"""Changing any single byte of a stored entry makes verify_ledger fail at that entry."""

import dataclasses
import datetime as dt
import random

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparecycles.ledger.models import Account, ChainHead, Epoch, JournalEntry, JournalLine
from sparecycles.ledger.services import epochs_close_due, policy_announce, tokens_transfer
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger

from .conftest import TEST_POLICY, at

pytestmark = pytest.mark.django_db


class Rollback(Exception):
    pass


@pytest.fixture
def books(ledger, volunteers, grant):
    """A small ledger with every kind of entry: policy, epochs, transfers."""
    for i, volunteer in enumerate(volunteers):
        grant(volunteer, (i + 1) * MICRO, at(i % 2, 60 * i))
    epochs_close_due(now=at(1, 30))
    tokens_transfer(source=f"volunteer-{volunteers[0].pk}", destination="treasury",
                    amount_micro=12_345, memo="tip", now=at(1, 40))
    policy_announce(params=dataclasses.replace(TEST_POLICY, halving_epochs=8),
                    note="Slower halving", now=at(1, 50))
    grant(volunteers[2], 5 * MICRO, at(1, 100))
    epochs_close_due(now=at(3))
    assert verify_ledger().ok
    return list(JournalEntry.objects.order_by("seq"))


def flip_char(text: str, position: int) -> str:
    position %= max(len(text), 1)
    if not text:
        return "x"
    replacement = "0" if text[position] != "0" else "1"
    return text[:position] + replacement + text[position + 1:]


def mutate_json(value, rng: random.Random):
    """Change one byte somewhere inside a JSON value (an int's byte or a string's char)."""
    if isinstance(value, dict) and value:
        key = rng.choice(sorted(value))
        return {**value, key: mutate_json(value[key], rng)}
    if isinstance(value, list) and value:
        i = rng.randrange(len(value))
        return value[:i] + [mutate_json(value[i], rng)] + value[i + 1:]
    if isinstance(value, int) and not isinstance(value, bool):
        return value ^ (1 << (8 * rng.randrange(6) + rng.randrange(8)))
    if isinstance(value, str):
        return flip_char(value, rng.randrange(max(len(value), 1)))
    return 0


FIELDS = ["kind", "memo", "data", "prev_hash", "hash", "at", "seq", "line_amount",
          "line_account"]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.integers(min_value=0), field=st.sampled_from(FIELDS),
       seed=st.integers(min_value=0, max_value=2**32))
def test_any_single_change_is_named_at_its_entry(books, which, field, seed):
    rng = random.Random(seed)
    entry = books[which % len(books)]
    target = JournalEntry.objects.filter(pk=entry.pk)
    try:
        with transaction.atomic():
            if field in ("kind", "memo", "prev_hash", "hash"):
                value = getattr(entry, field)
                target.update(**{field: flip_char(value, rng.randrange(max(len(value), 1)))})
            elif field == "data":
                target.update(data=mutate_json(entry.data, rng) if entry.data else {"x": 1})
            elif field == "at":
                target.update(at=entry.at + dt.timedelta(microseconds=1 << rng.randrange(40)))
            elif field == "seq":
                target.update(seq=10_000 + rng.randrange(1000))
            else:
                lines = list(JournalLine.objects.filter(entry=entry))
                if not lines:   # a policy entry has no lines: add one
                    JournalLine.objects.create(entry=entry, position=0, amount_micro=1,
                                               account=Account.objects.get(code="treasury"))
                else:
                    line = rng.choice(lines)
                    if field == "line_amount":
                        amount = line.amount_micro ^ (1 << rng.randrange(40))
                        JournalLine.objects.filter(pk=line.pk).update(
                            amount_micro=amount or line.amount_micro + 1)
                    else:
                        used = {ln.account_id for ln in lines}
                        spare = Account.objects.exclude(pk__in=used).order_by("?").first()
                        if spare is None:
                            # Every account already has a line in this entry: a second line
                            # on one of them (or on none) is a change the database refuses.
                            other = rng.choice([ln for ln in lines if ln.pk != line.pk]
                                               or lines)
                            with pytest.raises(IntegrityError), transaction.atomic():
                                JournalLine.objects.filter(pk=line.pk).update(
                                    account_id=other.account_id if other.pk != line.pk
                                    else None)
                            raise Rollback
                        JournalLine.objects.filter(pk=line.pk).update(account=spare)
            report = verify_ledger()
            assert not report.ok
            assert report.problem.seq == entry.seq, (field, report.problem)
            raise Rollback
    except Rollback:
        pass


def test_verify_ledger_command_names_the_first_broken_entry(books, capsys):
    call_command("verify_ledger")
    assert "Ledger OK" in capsys.readouterr().out
    JournalLine.objects.filter(entry=books[2], amount_micro__gt=0).update(
        amount_micro=999 * MICRO)
    JournalLine.objects.filter(entry=books[4], amount_micro__gt=0).update(
        amount_micro=998 * MICRO)
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"entry #{books[2].seq}" in err and "content hashes to" in err


def test_a_removed_last_entry_is_caught_by_the_chain_head(books):
    last = books[-1]
    Epoch.objects.filter(entry=last).delete()
    JournalLine.objects.filter(entry=last).delete()
    last.delete()
    report = verify_ledger()
    assert not report.ok and "chain head" in report.problem.message


def test_a_cached_balance_that_disagrees_with_its_lines_is_named(books, volunteers):
    code = f"volunteer-{volunteers[1].pk}"
    Account.objects.filter(code=code).update(balance_micro=1)
    report = verify_ledger()
    assert not report.ok and report.problem.account == code


def test_a_rehashed_entry_breaks_the_link_to_the_next(books):
    from sparecycles.ledger.chain import record_hash
    from sparecycles.ledger.selectors import entry_record
    entry = books[1]
    JournalEntry.objects.filter(pk=entry.pk).update(memo="rewritten")
    entry.refresh_from_db()
    JournalEntry.objects.filter(pk=entry.pk).update(hash=record_hash(entry_record(entry)))
    report = verify_ledger()
    assert not report.ok and report.problem.seq == books[2].seq
    assert "previous-entry hash" in report.problem.message
    assert ChainHead.objects.get().seq == books[-1].seq
