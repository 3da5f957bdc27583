"""A process killed (SIGKILL) in the middle of closing an epoch leaves no trace; the
restarted close pays that epoch exactly once. Runs on SQLite and PostgreSQL."""

import signal
import time

import pytest

from sparecycles.ledger.models import Account, ChainHead, Epoch, EpochCredit, JournalEntry
from sparecycles.ledger.selectors import volunteer_balance_micro
from sparecycles.ledger.services import epochs_close_due, ledger_init
from sparecycles.ledger.units import MICRO
from sparecycles.ledger.verify import verify_ledger

from .conftest import GENESIS, TEST_POLICY, at
from .processes import result, spawn

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(path, process, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the worker exited early:\n{process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the worker never reached the crash point")
        time.sleep(0.05)


@pytest.mark.parametrize("crash_after", ["_link_grants", "_append_entry", "_seal_epoch"])
def test_a_close_killed_midway_is_rolled_back_and_the_retry_pays_once(
        volunteers, grant, tmp_path, crash_after):
    ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)
    a, b = volunteers[:2]
    grants = [grant(a, 3 * MICRO, at(0, 10)), grant(b, 1 * MICRO, at(0, 20)),
              grant(b, 2 * MICRO, at(1, 30))]
    marker = tmp_path / "inside-the-transaction"

    victim = spawn("crash", crash_after, at(2).isoformat(), marker)
    wait_for(marker, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    # Nothing of the killed close survived.
    assert not Epoch.objects.exists() and not EpochCredit.objects.exists()
    assert list(JournalEntry.objects.values_list("kind", flat=True)) == ["policy"]
    assert ChainHead.objects.get().seq == 1
    assert not Account.objects.filter(kind="volunteer").exists()

    # The restart closes both due epochs, once.
    assert result(spawn("close", at(2).isoformat(), 0))["closed"] == [0, 1]
    assert result(spawn("close", at(2).isoformat(), 0))["closed"] == []
    assert epochs_close_due(now=at(2)) == []
    assert EpochCredit.objects.count() == len(grants)
    assert volunteer_balance_micro(a) == 750 * MICRO
    assert volunteer_balance_micro(b) == 250 * MICRO + 1000 * MICRO
    assert JournalEntry.objects.filter(kind="epoch").count() == 2
    report = verify_ledger()
    assert report.ok, report.problem
