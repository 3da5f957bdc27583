"""The sabotage simulation runs the real services and shows spot checks catching colluders."""

import re

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db(transaction=True)


def test_colluders_without_and_with_spot_checks(capsys):
    call_command("sabotage_table", "--workunits", "30", "--devices", "10",
                 "--shares", "0,0.5", "--spot-rate", "0.5", "--seed", "3")
    rows = [line for line in capsys.readouterr().out.splitlines()
            if re.match(r"\| \d+% \|", line)]
    wrong = [int(re.search(r"\| (\d+) \(", row).group(1)) for row in rows]
    assert len(rows) == 4
    assert wrong[0] == wrong[1] == 0  # no colluders, no wrong answers
    assert wrong[3] < wrong[2]  # spot checks cut what half the fleet colluding gets through
    assert "0 of 5 |" not in rows[3]  # and quarantine some colluders


def test_refuses_a_database_with_work(make_batch):
    make_batch(count=1)
    with pytest.raises(CommandError, match="throwaway"):
        call_command("sabotage_table")
