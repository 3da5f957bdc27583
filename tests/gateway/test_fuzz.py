"""Hostile frames: at least 10,000 of them, no unhandled exception, honest clients still served."""

import json
import logging

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sparecycles.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

FRAMES_PER_EXAMPLE = 50
EXAMPLES = 210  # 210 × 50 = 10,500 frames
TYPES = ["hello", "request", "result", "progress", "ping", "tasks", "ack", "", "HELLO"]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                      st.floats(allow_nan=False), st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10), kids, max_size=4)),
    max_leaves=12)
hostile_object = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"slots": json_value, "task_id": st.one_of(st.text(max_size=300), json_value),
              "status": st.one_of(st.sampled_from(["ok", "error"]), json_value),
              "output": json_value, "error": json_value, "elapsed_ms": json_value,
              "fraction": json_value, "protocol": json_value, "device_token": json_value,
              "capabilities": json_value, "client": json_value},
).map(json.dumps)
frame = st.one_of(
    hostile_object,
    json_value.map(json.dumps),
    st.text(max_size=200),
    st.just("[" * 5000 + "]" * 5000),  # deep nesting
    st.just('{"type": "result", "task_id": "x", "status": "ok", "output": ' + "[" * 3000
            + "]" * 3000 + "}"),
)


async def hello(communicator):
    await communicator.send_json_to({"type": "hello", "protocol": 1, "device_token": None})
    welcome = await communicator.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome"


async def drain_until_pong(communicator) -> list[dict]:
    """Send a ping and collect replies up to its pong; None if the server closed."""
    await communicator.send_json_to({"type": "ping"})
    replies = []
    while True:
        message = await communicator.receive_output(timeout=30)  # generous: CI machines are busy
        if message["type"] == "websocket.close":
            return None
        reply = json.loads(message["text"])
        if reply["type"] == "pong":
            return replies
        replies.append(reply)


@pytest.fixture
def permissive(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_VIOLATIONS": 10**9, "FRAMES_PER_S": 0,
                            "RESULTS_PER_S": 0, "MAX_CONNECTIONS_PER_IP": 0,
                            "CONNECTIONS_PER_IP_PER_MIN": 0}


def hostile_frames() -> list[str]:
    """At least 10,000 frames drawn by hypothesis (the socket part below is async)."""
    drawn: list[str] = []

    @hsettings(max_examples=EXAMPLES, deadline=None, database=None,
               suppress_health_check=list(HealthCheck))
    @given(frames=st.lists(frame, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
    def draw(frames):
        drawn.extend(frames)

    draw()
    return drawn


async def connect_and_hello():
    communicator = WebsocketCommunicator(application, "/ws/volunteer/")
    connected, _ = await communicator.connect()
    assert connected
    await hello(communicator)
    return communicator


async def test_ten_thousand_hostile_frames(permissive, make_batch, caplog):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_batch)(count=3)  # something for hostile requests to take
    frames = hostile_frames()
    assert len(frames) >= 10_000
    server_errors = []
    communicator = await connect_and_hello()
    with caplog.at_level(logging.ERROR):
        for text in frames:
            await communicator.send_input({"type": "websocket.receive", "text": text})
            replies = await drain_until_pong(communicator)
            if replies is None:  # a legitimate close (e.g. a second hello): reconnect
                communicator = await connect_and_hello()
                continue
            server_errors += [(text[:200], r) for r in replies if r.get("code") == "server_error"]
    await communicator.disconnect()
    assert server_errors == []
    assert not [r for r in caplog.records if "Unhandled" in r.getMessage()]

    # The server still serves an honest client end to end.
    await sync_to_async(make_batch)(count=1)
    honest = WebsocketCommunicator(application, "/ws/volunteer/")
    assert (await honest.connect())[0]
    await hello(honest)
    await honest.send_json_to({"type": "request", "slots": 1})
    tasks = await honest.receive_json_from(timeout=5)
    [task] = tasks["tasks"]
    n = task["input"]["n"]
    await honest.send_json_to({"type": "result", "task_id": task["task_id"], "status": "ok",
                               "output": {"n": n, "square": n * n}})
    assert (await honest.receive_json_from(timeout=5))["accepted"] is True
    await honest.disconnect()
