"""Fixtures for the ledger: a small public policy, volunteers, and credit grants at chosen times."""

import datetime as dt
import itertools

import pytest
from django.db import connection

from sparecycles.credit.models import CreditGrant
from sparecycles.ledger.policy import PolicyParams
from sparecycles.ledger.services import ledger_init
from sparecycles.ledger.units import MICRO
from sparecycles.projects.models import Batch, WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Volunteer

GENESIS = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EPOCH = dt.timedelta(hours=1)
# Hourly epochs; 1,000 tokens each, halving every 4 epochs; at most 6,600 tokens ever
# (1000 x4, 500 x4, 250, 250, then the last 100: epoch 10 is cut by the cap).
TEST_POLICY = PolicyParams(epoch_seconds=3600, initial_emission_micro=1000 * MICRO,
                           halving_epochs=4, max_supply_micro=6600 * MICRO)

skip_on_sqlite = pytest.mark.skipif(connection.vendor == "sqlite",
                                    reason="real row locks need PostgreSQL")


def at(epoch: int, seconds: float = 0) -> dt.datetime:
    """A moment inside epoch `epoch` of TEST_POLICY."""
    return GENESIS + epoch * EPOCH + dt.timedelta(seconds=seconds)


@pytest.fixture
def ledger(db):
    return ledger_init(params=TEST_POLICY, genesis=GENESIS, now=GENESIS)


@pytest.fixture
def volunteers(db):
    return [Volunteer.objects.create(name=f"Vol {i}") for i in range(1, 5)]


@pytest.fixture
def grant(app_version):
    """grant(volunteer, credit_micro, granted_at): a CreditGrant with its own valid replica."""
    batch = Batch.objects.create(app_version=app_version, name="ledger grants")
    seqs = itertools.count(1)
    project_id = app_version.app.project_id

    def make(volunteer: Volunteer, amount_micro: int, granted_at: dt.datetime) -> CreditGrant:
        workunit = WorkUnit.objects.create(batch=batch, app_version=app_version,
                                           seq=next(seqs), input={})
        replica = Replica.objects.create(
            workunit=workunit, volunteer=volunteer, server_state=Replica.ServerState.OVER,
            outcome=Replica.Outcome.SUCCESS, validate_state=Replica.ValidateState.VALID)
        return CreditGrant.objects.create(replica=replica, workunit=workunit,
                                          project_id=project_id, volunteer=volunteer,
                                          amount_micro=amount_micro, granted_at=granted_at)
    return make
