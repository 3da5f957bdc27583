"""Per-address connection limits, per-connection frame limits, per-device result limits."""

import pytest
from channels.testing import WebsocketCommunicator

from sparecycles.asgi import application
from sparecycles.gateway import ratelimit
from sparecycles.gateway.ratelimit import ConnectionLimiter, TokenBucket

pytestmark = pytest.mark.django_db(transaction=True)


def communicator_from(address):
    communicator = WebsocketCommunicator(application, "/ws/volunteer/")
    communicator.scope["client"] = (address, 40000)
    return communicator


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=2, burst=3, stamp=0.0)
    assert [bucket.take(now=0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now=0.5) is True and bucket.take(now=0.5) is False
    assert TokenBucket(rate=0, burst=0).take() is True  # 0 switches the limit off


def test_connection_limiter_counts_open_and_recent(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_CONNECTIONS_PER_IP": 2,
                            "CONNECTIONS_PER_IP_PER_MIN": 3}
    limiter = ConnectionLimiter()
    assert limiter.admit("a", now=0) is None and limiter.admit("a", now=0) is None
    assert "open connections" in limiter.admit("a", now=0)
    limiter.release("a")
    assert limiter.admit("a", now=1) is None
    limiter.release("a")
    assert "new connections" in limiter.admit("a", now=2)
    assert limiter.admit("a", now=70) is None  # the minute has passed
    assert limiter.admit("b", now=70) is None  # other addresses are not affected


async def test_too_many_connections_from_one_address_are_refused(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_CONNECTIONS_PER_IP": 1}
    first = communicator_from("203.0.113.9")
    assert (await first.connect())[0]
    second = communicator_from("203.0.113.9")
    connected, code = await second.connect()
    assert not connected and code == 4429
    elsewhere = communicator_from("198.51.100.1")
    assert (await elsewhere.connect())[0]
    await first.disconnect()
    again = communicator_from("203.0.113.9")
    assert (await again.connect())[0]  # the slot was released
    await again.disconnect()
    await elsewhere.disconnect()
    assert ratelimit.connections.open == {}


async def test_frame_flood_gets_rate_limited(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "FRAMES_PER_S": 1, "FRAME_BURST": 3}
    communicator = communicator_from("203.0.113.10")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "hello", "protocol": 1})
    assert (await communicator.receive_json_from())["type"] == "welcome"
    for _ in range(2):
        await communicator.send_json_to({"type": "ping"})
        assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.send_json_to({"type": "ping"})
    error = await communicator.receive_json_from()
    assert error["code"] == "rate_limited"
    await communicator.disconnect()


async def test_result_flood_is_refused_per_device(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "RESULTS_PER_S": 1}
    ratelimit.device_results.buckets.clear()
    communicator = communicator_from("203.0.113.11")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "hello", "protocol": 1})
    await communicator.receive_json_from()
    reasons = []
    for i in range(8):
        await communicator.send_json_to({"type": "result", "task_id": f"t{i}", "status": "ok",
                                         "output": {}})
        reasons.append((await communicator.receive_json_from())["reason"])
    assert reasons[:5] == ["unknown_task"] * 5  # the burst
    assert "rate_limited" in reasons[5:]
    await communicator.disconnect()
