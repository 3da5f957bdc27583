"""Fixtures for the boards: volunteers and teams with chosen totals, and real earners."""

import time

import pytest

from sparecycles.credit.averages import rac_key
from sparecycles.credit.models import MICRO, TeamCredit, VolunteerCredit
from sparecycles.volunteers.models import Team, Volunteer


def aggregate(credit: float, rac: float | None = None, *, now: float | None = None) -> dict:
    """Credit row fields as credit_grant would leave them: `rac` credit/day as of now."""
    now = now if now is not None else time.time()
    rac = credit if rac is None else rac
    if credit <= 0:
        return {"credit_micro": 0, "rac": 0.0, "rac_time": None, "rac_key": -1e9}
    return {"credit_micro": round(credit * MICRO), "rac": rac, "rac_time": now,
            "rac_key": rac_key(rac=rac, rac_time=now)}


@pytest.fixture
def make_volunteer(db):
    def make(name: str, credit: float = 0, rac: float | None = None, **fields) -> Volunteer:
        volunteer = Volunteer.objects.create(name=name, **fields)
        VolunteerCredit.objects.create(volunteer=volunteer, **aggregate(credit, rac))
        return volunteer
    return make


@pytest.fixture
def make_team(db):
    def make(name: str, credit: float = 0, rac: float | None = None, **fields) -> Team:
        team = Team.objects.create(name=name, slug=name.lower().replace(" ", "-"), **fields)
        TeamCredit.objects.create(team=team, **aggregate(credit, rac))
        return team
    return make
