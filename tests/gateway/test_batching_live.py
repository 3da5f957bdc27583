"""Stats pushes across processes (scale-out: channels_redis), against real daphnes
(tests/live_server.py): a grant made in any process reaches the device's socket in
whichever daphne holds it, and nowhere else."""

import json

import pytest
from django.conf import settings
from websockets.sync.client import connect

from sparecycles.validation.services import replica_report

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="several processes share a channel "
                                                      "layer only through Redis"),
]

HELLO = {"type": "hello", "protocol": 1, "client": {"name": "test", "version": "1"},
         "capabilities": {"runtimes": ["pyodide"]}}


def said(ws, timeout: float = 20) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def quiet(ws, seconds: float) -> bool:
    """True if the socket says nothing for `seconds`."""
    try:
        frame = ws.recv(timeout=seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"expected nothing, got {frame}")


def test_a_grant_in_any_process_reaches_the_daphne_holding_the_device_and_no_other(
        live_server_factory, make_batch, make_device):
    first, second = live_server_factory(), live_server_factory()
    make_batch(count=2, min_quorum=1, target_nresults=1)
    here, there = make_device(), make_device()
    with (connect(first.ws_url) as on_first, connect(second.ws_url) as on_second):
        on_first.send(json.dumps({**HELLO, "device_token": here.new_token}))
        on_second.send(json.dumps({**HELLO, "device_token": there.new_token}))
        assert said(on_first)["type"] == "welcome" and said(on_second)["type"] == "welcome"
        # A result validated in the first daphne (VALIDATE_IN_WEB): its device hears.
        on_first.send(json.dumps({"type": "request", "slots": 1}))
        [task] = said(on_first)["tasks"]
        on_first.send(json.dumps({"type": "result", "task_id": task["task_id"],
                                  "status": "ok", "output": {"x": 1}}))
        assert said(on_first)["type"] == "ack"
        stats = said(on_first)
        assert stats["type"] == "stats" and stats["credit"] == 1.0
        assert quiet(on_second, 1.5)  # its daphne heard the grant, but not for its device
        # A grant made in a third process (this one, as the validator process does) reaches
        # the second daphne's socket, and only it.
        on_second.send(json.dumps({"type": "request", "slots": 1}))
        [task] = said(on_second)["tasks"]
        replica_report(device=there.device, task_id=task["task_id"], ok=True, output={"x": 1})
        stats = said(on_second)
        assert stats["type"] == "stats" and stats["credit"] == 1.0
        assert quiet(on_first, 1.5)
