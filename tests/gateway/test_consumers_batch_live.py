"""Extension "batch" against a real daphne (tests/live_server.py): a hostile client's
`results` frames, and a v1-only client beside it that must see exactly v1."""

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.services import QuorumParams
from sparecycles.scheduler.models import Replica

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"type": "hello", "protocol": 1, "device_token": None,
         "client": {"name": "redteam", "version": "1"}, "capabilities": {"cores": 2}}
V1_TYPES = {"welcome", "tasks", "ack", "pong", "stats", "cancel", "error"}


def frames(ws, until: str) -> list[dict]:
    """Frames up to and including the first of type `until`."""
    seen = []
    while True:
        frame = json.loads(ws.recv(timeout=20))
        seen.append(frame)
        if frame["type"] == until:
            return seen


def test_a_hostile_batch_client_gets_answers_not_tracebacks_and_a_v1_client_sees_only_v1(
        live_server_factory):
    server = live_server_factory()
    bundled_batch_create("primes", count=8, quorum=QuorumParams(min_quorum=1, target_nresults=1))

    with connect(server.ws_url, max_size=None) as hostile:
        hostile.send(json.dumps({"type": "results", "results": [], "slots": 1}))
        with pytest.raises(ConnectionClosed):
            hostile.recv(timeout=20)
        assert hostile.close_code == 4401  # before hello, as any frame

    with connect(server.ws_url, max_size=None) as hostile:
        hostile.send(json.dumps(HELLO))
        assert frames(hostile, "welcome")[-1]["extensions"] == ["batch"]
        hostile.send(json.dumps({"type": "request", "slots": 2}))
        tasks = frames(hostile, "tasks")[-1]["tasks"]
        assert len(tasks) == 2
        deep: list = []
        for _ in range(900):
            deep = [deep]
        big = "x" * (15 * 1024)
        items = ([None, [], "x", 1.5, {"task_id": {"$gt": ""}, "status": "ok"},
                  {"task_id": tasks[0]["task_id"], "status": "ok", "output": deep},
                  {"task_id": tasks[0]["task_id"], "status": "ok", "output": {"s": "\u0000"}},
                  {"task_id": "nope\u0000", "status": "ok", "output": {}},
                  {"task_id": tasks[1]["task_id"], "status": "error", "error": "\u0000" * 9000}]
                 + [{"task_id": f"forged-{i}", "status": "ok", "output": {"pad": big}}
                    for i in range(50)])
        text = json.dumps({"type": "results", "results": items, "slots": True})
        assert len(text.encode()) < 1024 * 1024
        hostile.send(text)
        got = frames(hostile, "acks")[-1]["acks"]
        assert len(got) == len(items)
        assert got[8] == {"task_id": tasks[1]["task_id"], "accepted": True}
        assert {a["reason"] for a in got[9:]} <= {"unknown_task", "rate_limited"}
        # Then the error (7 invalid items: under the default 10), then the tasks it asked for.
        assert [f["type"] for f in frames(hostile, "tasks") if f["type"] != "stats"] == [
            "error", "tasks"]

    with connect(server.ws_url, max_size=None) as old:
        old.send(json.dumps(HELLO))
        seen = frames(old, "welcome")
        old.send(json.dumps({"type": "request", "slots": 1}))
        seen += frames(old, "tasks")
        [task] = seen[-1]["tasks"]
        old.send(json.dumps({"type": "result", "task_id": task["task_id"], "status": "ok",
                             "output": {"n": 1}}))
        seen += frames(old, "ack")
        old.send(json.dumps({"type": "ping"}))
        seen += frames(old, "pong")
        assert {f["type"] for f in seen} <= V1_TYPES
        assert seen[-2] == {"type": "ack", "task_id": task["task_id"], "accepted": True}

    assert Replica.objects.filter(received_at__isnull=False).count() == 2
    log = server.log_tail(200_000)
    assert "Traceback" not in log, log
