"""The live-leaderboard socket: joins the group, forwards "changed", at most once a second."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from sparecycles.events import LEADERBOARD_GROUP
from sparecycles.leaderboards.consumers import LeaderboardConsumer
from sparecycles.leaderboards.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

CHANGED = {"type": "changed"}


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(LeaderboardConsumer, "throttle_s", 0.3)


async def connected() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/leaderboards/")
    ok, _ = await communicator.connect()
    assert ok
    return communicator


async def changed(volunteer_id: int = 1) -> None:
    await get_channel_layer().group_send(LEADERBOARD_GROUP, {"type": "leaderboard.changed",
                                                             "volunteer_id": volunteer_id})


async def test_a_grant_event_reaches_every_open_board(fast):
    a, b = await connected(), await connected()
    await changed()
    assert await a.receive_json_from(timeout=2) == CHANGED
    assert await b.receive_json_from(timeout=2) == CHANGED
    await a.disconnect()
    await b.disconnect()


async def test_a_burst_becomes_one_message_now_and_one_trailing(fast):
    board = await connected()
    for volunteer_id in range(20):
        await changed(volunteer_id)
    assert await board.receive_json_from(timeout=2) == CHANGED
    assert await board.receive_nothing(timeout=0.1)
    assert await board.receive_json_from(timeout=2) == CHANGED  # the rest of the burst
    assert await board.receive_nothing(timeout=0.5)
    await board.disconnect()


async def test_quiet_boards_hear_each_change_at_once(fast):
    board = await connected()
    for _ in range(2):
        await changed()
        assert await board.receive_json_from(timeout=0.2) == CHANGED
        await asyncio.sleep(0.35)
    await board.disconnect()


async def test_whatever_the_client_sends_is_ignored(fast):
    board = await connected()
    await board.send_to(text_data="not json at all")
    await board.send_json_to({"type": "subscribe"})
    assert await board.receive_nothing(timeout=0.1)
    await changed()
    assert await board.receive_json_from(timeout=2) == CHANGED
    await board.disconnect()


async def test_after_disconnect_nothing_is_sent(fast):
    board = await connected()
    await changed()
    assert await board.receive_json_from(timeout=2) == CHANGED
    await changed()  # schedules a trailing message...
    await board.disconnect()  # ...which is cancelled
    assert await board.receive_nothing(timeout=0.6)  # past the 0.3 s the trailing one was due
    await changed()  # and the group no longer reaches it
    assert await board.receive_nothing(timeout=0.2)


async def test_credit_granted_through_the_scheduler_notifies_boards(fast, make_batch, make_device,
                                                                    earn):
    await database_sync_to_async(make_batch)(count=1)
    device = (await database_sync_to_async(make_device)()).device
    board = await connected()
    await database_sync_to_async(earn)(device)
    assert await board.receive_json_from(timeout=2) == CHANGED
    await board.disconnect()


async def test_routed_in_the_site_asgi_application(fast):
    from sparecycles.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/leaderboards/",
                                         headers=[(b"origin", b"http://localhost"),
                                                  (b"host", b"localhost")])
    ok, _ = await communicator.connect()
    assert ok
    await changed()
    assert await communicator.receive_json_from(timeout=2) == CHANGED
    await communicator.disconnect()


async def test_other_sites_pages_may_not_listen(fast):
    from sparecycles.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/leaderboards/",
                                         headers=[(b"origin", b"https://evil.example"),
                                                  (b"host", b"localhost")])
    ok, _ = await communicator.connect()
    assert not ok
