"""A policy change is public, on the chain, and takes effect only from a future epoch."""

import dataclasses

import pytest

from sparecycles.ledger.models import JournalEntry, PolicyVersion
from sparecycles.ledger.policy import PolicyError
from sparecycles.ledger.services import epoch_close, epochs_close_due, ledger_init, policy_announce
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger

from .conftest import GENESIS, TEST_POLICY, at

pytestmark = pytest.mark.django_db

DOUBLE = dataclasses.replace(TEST_POLICY, initial_emission_micro=2000 * MICRO)


def test_genesis_policy_is_the_first_entry(ledger):
    entry = JournalEntry.objects.get(seq=1)
    assert entry.kind == "policy" and entry.data["version"] == 1
    assert entry.data["effective_from_epoch"] == 0
    assert ledger_init(params=TEST_POLICY, genesis=GENESIS) == ledger   # idempotent
    with pytest.raises(PolicyError, match="announce a new policy version instead"):
        ledger_init(params=DOUBLE, genesis=GENESIS)


def test_a_change_defaults_to_the_next_epoch(ledger):
    version = policy_announce(params=DOUBLE, note="More tokens", now=at(2, 10))
    assert (version.version, version.effective_from_epoch, version.starts_at) == (2, 3, at(3))
    epochs_close_due(now=at(4))
    emissions = dict(JournalEntry.objects.filter(kind="epoch")
                     .values_list("data__epoch", "data__emission"))
    assert emissions == {0: 1000 * MICRO, 1: 1000 * MICRO, 2: 1000 * MICRO, 3: 2000 * MICRO}
    assert verify_ledger().ok


@pytest.mark.parametrize("effective_from", [0, 2])
def test_a_change_for_an_epoch_begun_or_closed_is_refused(ledger, effective_from):
    epoch_close(now=at(1))
    with pytest.raises(PolicyError, match="only from a future epoch: epoch 3 or later"):
        policy_announce(params=DOUBLE, effective_from_epoch=effective_from, now=at(2, 1))
    assert PolicyVersion.objects.count() == 1


def test_a_shorter_epoch_takes_effect_at_its_boundary(ledger):
    policy_announce(params=dataclasses.replace(TEST_POLICY, epoch_seconds=600),
                    effective_from_epoch=2, now=at(0, 5))
    closed = epochs_close_due(now=at(2, 1200))
    assert [(e.index, e.starts_at, e.ends_at) for e in closed][-1] == (3, at(2, 600), at(2, 1200))
    assert verify_ledger().ok


def test_a_rewritten_past_policy_is_caught_by_verify(ledger):
    policy_announce(params=DOUBLE, effective_from_epoch=5, now=at(1))
    epochs_close_due(now=at(6))
    # Quietly pretend v2 applied from epoch 1: the sealed epochs no longer follow the policy.
    PolicyVersion.objects.filter(version=2).update(effective_from_epoch=1)
    report = verify_ledger()
    assert not report.ok and "policy rows differ" in report.problem.message
