"""Against a scripted in-process WebSocket server: idle volunteers only ping, and a volunteer
whose frame the server failed on ("server_error") sends it again later."""

import asyncio
import hashlib
import json
import random

import pytest
from websockets.asyncio.server import serve

from tools.swarm import client as swarm_client
from tools.swarm.behaviours import BehaviourOptions, behaviour_create
from tools.swarm.client import SimulatedVolunteer

CODE = b"def main(input):\n    return {'n': input['n'], 'square': input['n'] ** 2}\n"
TASK = {"task_id": "t-1", "deadline": "2099-01-01T00:00:00Z", "input": {"n": 7},
        "app": {"name": "sq", "version": 1, "runtime": "pyodide", "code_url": "/apps/sq/1/code",
                "sha256": hashlib.sha256(CODE).hexdigest(), "entry": "main", "packages": []}}
SERVER_ERROR = {"type": "error", "code": "server_error", "message": "try again later"}
WELCOME = {"type": "welcome", "protocol": 1, "device_id": "d-1", "device_token": "tok",
           "volunteer": {"name": "v", "credit": 0, "tokens": "0"}, "max_inflight": 1,
           "heartbeat_s": 1}


@pytest.fixture(autouse=True)
def served_code(monkeypatch):
    monkeypatch.setattr(swarm_client, "http_get", lambda url, timeout=0: (200, CODE))


async def scripted(answers, seconds: float, behaviour: str):
    """Run one volunteer for `seconds` against a server answering each frame type from
    `answers[type]` (a list, one answer per frame, [] for none); returns (frames, volunteer)."""
    received: list[dict] = []
    stop = asyncio.Event()

    async def handler(ws):
        async for text in ws:
            frame = json.loads(text)
            received.append(frame)
            queue = answers.get(frame["type"], [])
            reply = queue.pop(0) if queue else None
            if reply is not None:
                await ws.send(json.dumps(reply))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        volunteer = SimulatedVolunteer(
            url=f"http://127.0.0.1:{port}", rng=random.Random(1),
            behaviour=behaviour_create(behaviour, rng=random.Random(1),
                                       options=BehaviourOptions()))
        naps = 0
        nap = volunteer._nap

        async def counted(*args):
            nonlocal naps
            naps += 1
            await nap(*args)

        volunteer._nap = counted
        run = asyncio.create_task(volunteer.run(stop, drain_s=0.1))
        await asyncio.sleep(seconds)
        stop.set()
        await run
    return received, volunteer, naps


def test_an_idle_volunteer_says_hello_then_only_pings_without_spinning():
    frames, volunteer, naps = asyncio.run(scripted(
        {"hello": [WELCOME], "ping": [{"type": "pong"}] * 10}, 2.6, "idle"))
    assert [f["type"] for f in frames] == ["hello", "ping", "ping"]  # every heartbeat (1 s)
    assert volunteer.stats.pongs == 2 and volunteer.stats.requests == 0
    assert naps <= 6  # it sleeps until its next ping, it does not poll


def test_frames_the_server_failed_on_are_sent_again_until_acknowledged():
    ack = {"type": "ack", "task_id": "t-1", "accepted": True}
    frames, volunteer, _ = asyncio.run(scripted({
        "hello": [WELCOME],
        "request": [SERVER_ERROR, {"type": "tasks", "retry_after_s": 0, "tasks": [TASK]}]
        + [{"type": "tasks", "retry_after_s": 5, "tasks": []}] * 5,
        "result": [SERVER_ERROR, ack],
    }, 4.0, "honest"))
    kinds = [f["type"] for f in frames]
    assert kinds[:3] == ["hello", "request", "request"]  # asked again after the failure
    results = [f for f in frames if f["type"] == "result"]
    assert len(results) == 2 and results[0] == results[1]  # the same result, sent again
    assert results[0]["output"] == {"n": 7, "square": 49}
    assert volunteer.stats.server_errors == 2 and volunteer.problem == ""
    assert volunteer.acked_task_ids == {"t-1"} and not volunteer.unacked
