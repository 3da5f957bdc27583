"""The sabotage simulation runs the real services at the defaults of a freshly loaded app."""

import re

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db(transaction=True)


def table(capsys) -> dict[str, dict[str, str]]:
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        match = re.match(r"\| (\d+% \w+) \| (.*) \|$", line)
        if match:
            cells = [c.strip() for c in match.group(2).split("|")]
            rows[match.group(1)] = dict(zip(
                ["completed", "wrong", "failed", "open", "credit", "tasks", "quarantined",
                 "pairs"], cells, strict=True))
    return rows


def number(cell: str) -> int:
    return int(cell.split()[0])


def test_at_defaults_colluders_and_cheaters_get_nothing_through(capsys):
    call_command("sabotage_table", "--workunits", "30", "--devices", "10",
                 "--shares", "0,0.5", "--cheater-shares", "0.3", "--seed", "3")
    rows = table(capsys)
    assert set(rows) == {"0% colluders", "50% colluders", "30% cheaters"}
    for row in rows.values():
        assert number(row["wrong"]) == 0
        assert row["credit"] == "0.0%"  # no bad device earned anything
    assert number(rows["30% cheaters"]["failed"]) == 0
    assert rows["50% colluders"]["quarantined"] == "5 of 5"
    assert number(rows["0% colluders"]["completed"]) == 30


def test_the_old_rules_let_half_a_fleet_of_colluders_win(capsys):
    # The same run under the rules before issue 16 (majority, new devices pair, no
    # automatic spot checks): wrong canonical results and credit for the colluders.
    call_command("sabotage_table", "--workunits", "30", "--devices", "10",
                 "--shares", "0.5", "--cheater-shares", "", "--seed", "3", "--old-rules")
    row = table(capsys)["50% colluders"]
    assert number(row["wrong"]) > 0
    assert row["credit"] != "0.0%"


def test_refuses_a_database_with_work(make_batch):
    make_batch(count=1)
    with pytest.raises(CommandError, match="throwaway"):
        call_command("sabotage_table")
