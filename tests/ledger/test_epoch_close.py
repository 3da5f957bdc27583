"""epoch_close: link credit to exactly one epoch, pay the emission pro rata, seal it, once."""

import pytest

from sparecycles.events import STATS_GROUP
from sparecycles.ledger.canonical import to_us
from sparecycles.ledger.merkle import leaf_hash, verify_inclusion
from sparecycles.ledger.models import Account, Epoch, EpochCredit, JournalEntry
from sparecycles.ledger.selectors import (
    epoch_payouts,
    proof_for,
    supply_summary,
    volunteer_balance_micro,
)
from sparecycles.ledger.services import (
    EpochNotDue,
    EpochOutOfOrder,
    epoch_close,
    epochs_close_due,
)
from sparecycles.ledger.signals import epoch_closed
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger
from sparecycles.volunteers.models import Device

from .conftest import at

pytestmark = pytest.mark.django_db


def test_emission_is_split_pro_rata_to_credit(ledger, volunteers, grant):
    a, b, c = volunteers[:3]
    grant(a, 1 * MICRO, at(0, 10))
    grant(a, 2 * MICRO, at(0, 20))
    grant(b, 3 * MICRO, at(0, 30))
    grant(c, 6 * MICRO, at(1, 5))          # next epoch
    result = epoch_close(now=at(1, 1))
    assert result.closed_now and result.grants_linked == 3
    epoch = result.epoch
    assert (epoch.index, epoch.credit_micro, epoch.emission_micro, epoch.recipients) == \
        (0, 6 * MICRO, 1000 * MICRO, 2)
    assert volunteer_balance_micro(a) == volunteer_balance_micro(b) == 500 * MICRO
    assert volunteer_balance_micro(c) == 0
    entry = epoch.entry
    assert entry.kind == JournalEntry.Kind.EPOCH
    assert entry.data["credits"] == [[f"volunteer-{a.pk}", 3 * MICRO],
                                     [f"volunteer-{b.pk}", 3 * MICRO]]
    assert sorted(entry.lines.values_list("account__code", "amount_micro")) == sorted([
        ("emission", -1000 * MICRO), (f"volunteer-{a.pk}", 500 * MICRO),
        (f"volunteer-{b.pk}", 500 * MICRO)])
    assert verify_ledger().ok


def test_rounding_remainder_is_paid_and_nothing_is_lost(ledger, volunteers, grant):
    for volunteer in volunteers[:3]:
        grant(volunteer, 1, at(0))
    epoch = epoch_close(now=at(1)).epoch
    amounts = sorted(volunteer_balance_micro(v) for v in volunteers[:3])
    assert sum(amounts) == 1000 * MICRO and amounts[-1] - amounts[0] == 1
    assert sum(p.amount_micro for p in epoch_payouts(epoch)[0]) == epoch.emission_micro


def test_an_epoch_without_credit_pays_the_treasury(ledger):
    epoch = epoch_close(now=at(1)).epoch
    assert epoch.recipients == 1
    assert Account.objects.get(code="treasury").balance_micro == 1000 * MICRO


def test_closing_twice_pays_once(ledger, volunteers, grant):
    grant(volunteers[0], MICRO, at(0))
    first = epoch_close(index=0, now=at(1))
    again = epoch_close(index=0, now=at(2))
    assert first.closed_now and not again.closed_now and again.epoch.pk == first.epoch.pk
    assert volunteer_balance_micro(volunteers[0]) == 1000 * MICRO
    assert JournalEntry.objects.filter(kind="epoch").count() == 1


def test_an_epoch_is_closed_only_after_it_ends_and_in_order(ledger):
    assert epoch_close(now=at(0, 3599)) is None
    with pytest.raises(EpochNotDue, match="Epoch 0 ends at 2026-01-01T01:00:00"):
        epoch_close(index=0, now=at(0, 3599))
    with pytest.raises(EpochOutOfOrder, match="Epoch 0 must be closed before epoch 2"):
        epoch_close(index=2, now=at(5))
    assert not Epoch.objects.exists()


def test_a_late_committing_grant_falls_into_the_next_epoch(ledger, volunteers, grant):
    a, b = volunteers[:2]
    grant(a, MICRO, at(0, 100))
    epoch_close(now=at(1, 1))
    late = grant(b, MICRO, at(0, 3599))   # granted in epoch 0, committed after it closed
    second = epoch_close(now=at(2)).epoch
    assert EpochCredit.objects.get(grant=late).epoch == second
    assert volunteer_balance_micro(b) == 1000 * MICRO
    assert verify_ledger().ok


def test_every_grant_is_linked_to_exactly_one_epoch(ledger, volunteers, grant):
    grants = [grant(volunteers[i % 4], (i + 1) * 1000, at(i % 3, i)) for i in range(12)]
    closed = epochs_close_due(now=at(3))
    assert [e.index for e in closed] == [0, 1, 2]
    assert EpochCredit.objects.count() == len(grants)
    assert sum(e.credit_micro for e in Epoch.objects.all()) == sum(g.amount_micro for g in grants)
    assert epochs_close_due(now=at(3)) == []


def test_the_cap_ends_emission(ledger):
    epochs_close_due(now=at(13))
    emissions = list(Epoch.objects.order_by("index").values_list("emission_micro", flat=True))
    assert emissions == [1000 * MICRO] * 4 + [500 * MICRO] * 4 + \
        [250 * MICRO, 250 * MICRO, 100 * MICRO, 0, 0]
    summary = supply_summary(now=at(13))
    assert summary["emitted_micro"] == summary["supply_micro"] == 6600 * MICRO
    assert Epoch.objects.get(index=12).entry.lines.count() == 0
    assert verify_ledger().ok


def test_payout_proofs_verify(ledger, volunteers, grant):
    for i, volunteer in enumerate(volunteers):
        grant(volunteer, (i + 1) * MICRO, at(0))
    epoch = epoch_close(now=at(1)).epoch
    for volunteer in volunteers:
        proof = proof_for(epoch, f"volunteer-{volunteer.pk}")
        assert proof["amount_micro"] == volunteer_balance_micro(volunteer)
        assert verify_inclusion(index=proof["leaf_index"], size=proof["tree_size"],
                                leaf=leaf_hash(proof["leaf"].encode()),
                                path=proof["audit_path"], root=epoch.merkle_root)
    assert proof_for(epoch, "volunteer-999999") is None


def test_the_entry_time_and_window_are_public(ledger):
    epoch = epoch_close(now=at(1, 7)).epoch
    assert epoch.entry.data["start"] == to_us(at(0)) and epoch.entry.data["end"] == to_us(at(1))
    assert epoch.entry.at == at(1, 7)


def test_the_signal_is_sent_after_commit(ledger, volunteers, grant,
                                         django_capture_on_commit_callbacks):
    received = []
    epoch_closed.connect(lambda sender, **kw: received.append(kw), weak=False,
                         dispatch_uid="test-epoch-closed")
    try:
        grant(volunteers[0], MICRO, at(0))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            epoch_close(now=at(1))
        assert received == []
        for callback in callbacks:
            callback()
        assert received == [{"signal": epoch_closed, "index": 0,
                             "volunteer_ids": [volunteers[0].pk]}]
    finally:
        epoch_closed.disconnect(dispatch_uid="test-epoch-closed")


def test_the_paid_volunteers_devices_hear_of_it_in_one_message(
        ledger, volunteers, grant, django_capture_on_commit_callbacks, sent_to_groups):
    """Their sockets show the new balance (`stats`): one message names every device of a
    paid volunteer (events.STATS_GROUP), not a revoked one's nor an unpaid volunteer's."""
    a, b, unpaid = volunteers[:3]
    devices = {name: Device.objects.create(volunteer=volunteer, revoked=revoked,
                                           token_hash=Device.hash_token(Device.new_token()))
               for name, volunteer, revoked in [("a1", a, False), ("a2", a, False),
                                                ("b", b, False), ("b-old", b, True),
                                                ("unpaid", unpaid, False)]}
    grant(a, MICRO, at(0))
    grant(b, MICRO, at(0))
    with django_capture_on_commit_callbacks(execute=True):
        epoch_close(now=at(1))
    assert [(group, message) for group, message in sent_to_groups
            if message["type"] == "stats.changed"] == [
        (STATS_GROUP, {"type": "stats.changed", "device_ids": sorted(
            devices[name].pk for name in ("a1", "a2", "b"))})]


def test_the_ledger_starts_from_settings_on_first_use(db, settings):
    settings.SPARECYCLES_LEDGER = {"EPOCH_SECONDS": 600, "GENESIS": "2026-03-01T00:00:00Z"}
    closed = epochs_close_due(now=at(0).replace(month=3, minute=25))
    assert [e.index for e in closed] == [0, 1]
    assert closed[1].ends_at.isoformat() == "2026-03-01T00:20:00+00:00"
