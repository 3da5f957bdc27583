"""The sandbox tests start real sandboxes (Pyodide under Node in namespaces): each new
validator code costs a cold start of a few seconds, so attacks share processes where
they can't disturb each other."""

import pytest

from sparecycles.sandbox import isolation
from sparecycles.sandbox.pool import pool


@pytest.fixture(autouse=True)
def _fresh_pool(settings):
    """No warm process, breaker or cached mechanism leaks from one test into the next."""
    settings.SANDBOX = {**settings.SANDBOX, "PAIR_TIMEOUT_S": 2.0, "RETRY_S": 60}
    pool.close()
    isolation.isolation.cache_clear()
    yield
    pool.close()
    isolation.isolation.cache_clear()


@pytest.fixture
def other_project(db):
    """A second owner's project, for attacks of one owner on another."""
    from django.contrib.auth import get_user_model

    from sparecycles.projects.models import Project
    other = Project.objects.create(slug="owner-b", title="Owner B's")
    other.owners.add(get_user_model().objects.create_user("owner-b", password="pw-b-123456"))
    return other
