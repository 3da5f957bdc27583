"""close_epochs, ledger_policy, verify_ledger --file, and the read-only admin."""

import datetime as dt
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sparecycles.ledger.models import Epoch, PolicyVersion
from sparecycles.ledger.services import epochs_close_due
from sparecycles.ledger.units import MICRO

from .conftest import at

pytestmark = pytest.mark.django_db


def test_close_epochs_closes_what_is_due_once(db, settings, capsys):
    genesis = (timezone.now() - dt.timedelta(minutes=30)).replace(second=0, microsecond=0)
    settings.SPARECYCLES_LEDGER = {"EPOCH_SECONDS": 60, "GENESIS": genesis.isoformat(),
                                   "HALVING_EPOCHS": 1, "INITIAL_EMISSION_MICRO": 8 * MICRO}
    call_command("close_epochs")
    out = capsys.readouterr().out
    assert "Closed epoch 0: 8 tokens to 1 account(s)" in out
    assert "Closed epoch 3: 1 tokens" in out
    closed = Epoch.objects.count()
    assert 29 <= closed <= 31
    call_command("close_epochs")
    assert Epoch.objects.count() - closed <= 1   # only what ended meanwhile


def test_close_epochs_refuses_a_bad_interval(db):
    with pytest.raises(SystemExit):
        call_command("close_epochs", "--loop", "--interval", "0")


def test_ledger_policy_shows_and_announces(ledger, capsys):
    call_command("ledger_policy")
    assert "v1 from epoch 0" in capsys.readouterr().out
    call_command("ledger_policy", "--announce", "--initial-emission", "2.5",
                 "--from-epoch", "999999", "--note", "test")
    assert "Announced policy v2, effective from epoch 999999" in capsys.readouterr().out
    assert PolicyVersion.objects.get(version=2).initial_emission_micro == 2_500_000
    with pytest.raises(CommandError, match="only from a future epoch"):
        call_command("ledger_policy", "--announce", "--halving-epochs", "5", "--from-epoch", "1")
    with pytest.raises(CommandError, match="not an amount of tokens"):
        call_command("ledger_policy", "--announce", "--max-supply", "lots")
    with pytest.raises(CommandError, match="Nothing to change"):
        call_command("ledger_policy", "--announce")


def test_verify_ledger_checks_a_downloaded_journal(ledger, volunteers, grant, client, tmp_path,
                                                   capsys):
    grant(volunteers[0], MICRO, at(0))
    epochs_close_due(now=at(3))
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"".join(client.get("/ledger/api/journal.jsonl").streaming_content))
    call_command("verify_ledger", "--file", str(path))
    assert "Ledger OK: 4 entries, 3 epochs" in capsys.readouterr().out
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record["data"]["emission"] += 1
    lines[2] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit):
        call_command("verify_ledger", "--file", str(path), "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problem"]["entry"] == 3


def test_the_admin_is_read_only(admin_client, ledger):
    response = admin_client.get("/admin/ledger/journalentry/")
    assert response.status_code == 200 and "Genesis policy" in response.content.decode()
    assert admin_client.get("/admin/ledger/account/add/").status_code == 403
