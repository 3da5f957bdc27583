"""web/consumers.py: a public project page's socket says "changed" when its work units do."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from sparecycles import events
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.web.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_coalescer(monkeypatch):
    monkeypatch.setattr(events, "PROGRESS", events.Coalescer(interval=0.2))


def socket(path: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)


async def test_a_validated_result_reaches_the_project_page(make_batch, make_device, project):
    batch = await database_sync_to_async(make_batch)(count=1, min_quorum=1, target_nresults=1)
    page = socket(f"/ws/projects/{project.slug}/")
    assert (await page.connect())[0]
    assert await page.receive_nothing(timeout=0.3)  # creating the batch was before we joined

    def compute():
        device = make_device().device
        [task] = tasks_dispatch(device=device, slots=1).replicas
        replica_report(device=device, task_id=task.task_id, ok=True,
                       output={"n": 1, "square": 1})
    await database_sync_to_async(compute)()
    assert await page.receive_json_from(timeout=5) == {"type": "changed"}
    assert await database_sync_to_async(lambda: batch.workunits.get().state)() == "completed"
    await page.disconnect()


async def test_unknown_and_private_projects_are_refused(project):
    for slug in ("nope", project.slug):
        if slug == project.slug:
            project.is_public = False
            await database_sync_to_async(project.save)()
        page = socket(f"/ws/projects/{slug}/")
        connected, code = await page.connect()
        assert not connected and code == 4404


async def test_what_the_client_says_is_ignored(project):
    page = socket(f"/ws/projects/{project.slug}/")
    assert (await page.connect())[0]
    await page.send_to(text_data='{"type": "changed"}' * 1000)
    assert await page.receive_nothing(timeout=0.3)
    await page.disconnect()
