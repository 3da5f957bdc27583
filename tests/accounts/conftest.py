"""Fixtures for the account pages: a logged-in volunteer and an anonymous browser with credit."""

import pytest

from sparecycles.accounts.services import account_create
from sparecycles.volunteers.services import device_connect


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
