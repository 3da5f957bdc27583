"""Fixtures for the account pages: a logged-in volunteer and an anonymous browser with credit."""

import pytest

from sparecycles.accounts.services import account_create
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import device_connect


@pytest.fixture
def earn():
    """Compute one task on `device` and report it (valid at quorum 1)."""
    def run(device, output=None):
        replica = tasks_dispatch(device=device, slots=1).replicas[0]
        replica_report(device=device, task_id=replica.task_id, ok=True,
                       output=output if output is not None else {"x": 1})
        return replica
    return run


@pytest.fixture
def member(db):
    """A signed-up volunteer (username ada, password below)."""
    return account_create(username="ada", password=PASSWORD)


PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def anonymous_browser(make_batch, earn):
    """A browser that computed one result without an account: (token, device)."""
    make_batch(count=3)
    session = device_connect(token=None, capabilities={"runtimes": ["pyodide"]})
    earn(session.device)
    return session.new_token, session.device
