"""owners/consumers.py: an owner's batch page hears its batch change; nobody else may listen."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from sparecycles import events
from sparecycles.owners.routing import websocket_urlpatterns
from sparecycles.projects.services import batch_pause, project_owner_add
from sparecycles.scheduler.services import tasks_dispatch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_coalescer(monkeypatch):
    monkeypatch.setattr(events, "PROGRESS", events.Coalescer(interval=0.2))


def socket(pk: int, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/batches/{pk}/")
    communicator.scope["user"] = user
    return communicator


async def test_the_owner_hears_tasks_go_out_and_a_pause(make_batch, make_device, owner,
                                                        project):
    await database_sync_to_async(project_owner_add)(project=project, user=owner)
    batch = await database_sync_to_async(make_batch)(count=2)
    page = socket(batch.pk, owner)
    assert (await page.connect())[0]
    await database_sync_to_async(
        lambda: tasks_dispatch(device=make_device().device, slots=1))()
    assert await page.receive_json_from(timeout=5) == {"type": "changed"}
    await database_sync_to_async(batch_pause)(batch=batch)
    assert await page.receive_json_from(timeout=5) == {"type": "changed"}  # trailing, ≤1/s
    await page.disconnect()


async def test_strangers_and_other_owners_are_refused(make_batch, django_user_model):
    batch = await database_sync_to_async(make_batch)(count=1)
    rival = await database_sync_to_async(django_user_model.objects.create_user)(
        "rival", password="pw-rival-123", is_staff=True)
    for user in (AnonymousUser(), rival):
        connected, code = await socket(batch.pk, user).connect()
        assert not connected and code == 4404
    huge = 2**70
    connected, code = await socket(huge, rival).connect()
    assert not connected and code == 4404
