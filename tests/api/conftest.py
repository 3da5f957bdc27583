"""Fixtures for the owners' API: token clients for an owner, a rival owner and a volunteer."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from sparecycles.projects.models import App, Project
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.services import device_connect

RIVAL_APP = b"def main(input):\n    return {'secret': input['n']}\n"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Rate-limit counters live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(owner, project):
    """The owner of the `squares` project, authenticated by token."""
    return token_client(owner)


@pytest.fixture
def rival(db):
    """Another owner's project, app, version and batch: never visible to `api`."""
    user = get_user_model().objects.create_user("rival", password="pw-rival-123")
    project = Project.objects.create(slug="rival", title="Rival project")
    project.owners.add(user)
    app = App.objects.create(project=project, name="rivalapp", title="Rival app")
    version = app_version_create(app=app, code=RIVAL_APP)
    batch = batch_create(app_version=version, name="rival batch",
                         inputs=[{"n": i} for i in range(3)], quorum=QuorumParams())
    return {"user": user, "project": project, "app": app, "version": version, "batch": batch,
            "client": token_client(user)}


@pytest.fixture
def volunteer_user(db):
    """An account made on the volunteer side: owns nothing."""
    return get_user_model().objects.create_user("vera", password="pw-vera-12345")


def compute(batch, *, fail=(), wrong=()):
    """Act as honest volunteers until every work unit of `batch` has a result.

    `fail`: seqs reported as errors; `wrong`: seqs answered with a wrong output.
    Each work unit goes to a new device (one volunteer per replica).
    """
    from sparecycles.projects.models import WorkUnit

    for _ in range(10_000):
        device = device_connect(token=None,
                                capabilities={"runtimes": ["pyodide", "wasm"]}).device
        dispatch = tasks_dispatch(device=device, slots=4)
        if not dispatch.replicas:
            return
        for replica in dispatch.replicas:
            unit = WorkUnit.objects.get(pk=replica.workunit_id)
            n = unit.input.get("n", 0)
            if unit.seq in fail:
                replica_report(device=device, task_id=replica.task_id, ok=False,
                               error="ZeroDivisionError: division by zero")
            else:
                square = n * n + (1 if unit.seq in wrong else 0)
                replica_report(device=device, task_id=replica.task_id, ok=True,
                               output={"n": n, "square": square})
    raise AssertionError("the batch never ran dry")
