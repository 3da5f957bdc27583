"""`manage.py serve --server daphne|uvicorn`: either server keeps the socket's rules.

A frame over 1 MiB fails the socket with 1009 (the server's own limit, before the app
sees it); a frame under it reaches the app. Forwarded headers: tests/web/test_forwarded.py
runs its live spoofing tests under both servers.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live_server import _healthy, database_url, free_port

REPO = Path(__file__).resolve().parents[2]
HELLO = {"type": "hello", "protocol": 1, "device_token": None,
         "client": {"name": "test", "version": "1"},
         "capabilities": {"runtimes": ["pyodide"], "cores": 1, "memory_mb": 1024}}
SERVERS = ["daphne", pytest.param("uvicorn", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="uvicorn is not installed"))]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(server: str) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
        env.update({"DATABASE_URL": database_url(connection.settings_dict),
                    "ALLOWED_HOSTS": "127.0.0.1", "PYTHONPATH": str(REPO / "platform")})
        log = tmp_path / f"serve-{server}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--workers", "1", "--port", str(port),
                 "--server", server, "--no-housekeeping", "--no-validator"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _healthy(url):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(log.read_text()[-4000:])
            time.sleep(0.2)
        return url.replace("http://", "ws://") + "/ws/volunteer/"

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("server", SERVERS)
def test_a_frame_over_one_mib_closes_1009_and_one_under_it_is_answered(serve, server):
    url = serve(server)
    with connect(url, open_timeout=10, max_size=None) as socket_:
        socket_.send(json.dumps(HELLO))
        assert json.loads(socket_.recv(timeout=10))["type"] == "welcome"
        # Just under the limit: a frame the app reads (and refuses as a bad result).
        padding = "x" * (1024 * 1024 - 200)
        socket_.send(json.dumps({"type": "ping", "padding": padding}))
        assert json.loads(socket_.recv(timeout=10))["type"] == "pong"
        socket_.send(json.dumps({"type": "ping", "padding": "x" * (1024 * 1024 + 1)}))
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=10)
    # The server fails the connection with 1009; the close frame can be lost when it drops
    # the TCP connection with the rest of the frame unread (a reset), never another code.
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    with connect(url, open_timeout=10) as again:  # and it goes on serving
        again.send(json.dumps(HELLO))
        assert json.loads(again.recv(timeout=10))["type"] == "welcome"


def test_an_unknown_server_is_refused():
    done = subprocess.run([sys.executable, "manage.py", "serve", "--server", "gunicorn"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "platform")})
    assert done.returncode != 0 and "invalid choice: 'gunicorn'" in done.stderr
