"""A real daphne serving sparecycles.asgi (through tests/live_asgi.py) on a free port,
sharing pytest-django's test database.

pytest-django's own `live_server` is WSGI only. Register this module as a plugin
in tests/conftest.py (`pytest_plugins = ["tests.live_server"]`) and use:

    def test_x(live_server_url): ...                          # "http://127.0.0.1:PORT"
    def test_y(live_server_factory):
        server = live_server_factory(env={"SPARECYCLES_RETRY_AFTER_S": "1"})
        server.kill(); live_server_factory(port=server.port)       # a crash and a restart

Both are function-scoped and need `transactional_db` (the server only sees
committed rows). Mark the test `django_db(transaction=True)`. The server is
stopped before pytest-django flushes the database; if it died during the test,
teardown fails with its log.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class LiveServer:
    url: str  # "http://127.0.0.1:PORT"
    port: int
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    killed: bool = False  # on purpose, by the test: not a death to report

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/volunteer/"

    def log_tail(self, chars: int = 8000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:] or "(empty log)"
        except OSError:
            return "(no server log)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no goodbye to open sockets."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.killed = True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def database_url(settings_dict: dict) -> str:
    """DATABASE_URL for the server process: the test database pytest-django set up."""
    engine = settings_dict["ENGINE"]
    options = {k: v for k, v in (settings_dict.get("OPTIONS") or {}).items()
               if isinstance(v, str | int | float) and not isinstance(v, bool)}
    query = f"?{urllib.parse.urlencode(options)}" if options else ""
    if engine == "django.db.backends.sqlite3":
        name = str(settings_dict["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError("A live server needs a file-based SQLite test database; "
                               "settings.DATABASES['default']['TEST']['NAME'] must be a path.")
        return f"sqlite:///{Path(name).resolve()}{query}"
    if engine.startswith("django.db.backends.postgresql"):
        quote = urllib.parse.quote
        user = quote(str(settings_dict.get("USER") or ""), safe="")
        password = quote(str(settings_dict.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(str(settings_dict['NAME']), safe='')}{query}"
    raise RuntimeError(f"The live server does not know how to share a {engine} database.")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with _no_proxy.open(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def live_server_start(*, log_dir: Path, env: dict[str, str] | None = None,
                      port: int | None = None) -> LiveServer:
    """Start daphne and wait for /healthz; fails the test with the server's log if it cannot.

    `port` reuses a port, e.g. to restart a killed server where its clients expect it.
    """
    from django.db import connection

    server_env = dict(os.environ)
    server_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server runs the ORM the proper way
    server_env.update({
        "PYTHONPATH": str(REPO / "platform"),
        "DJANGO_SETTINGS_MODULE": "sparecycles.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
        # Tests drive housekeeping themselves (tests/conftest.py): the server starts its
        # embedded loop at start-up only when a test asks for it in `env`.
        "SPARECYCLES_EMBEDDED_HOUSEKEEPING": "false",
    })
    server_env.update(env or {})  # REDIS_URL / REDIS_PREFIX pass through from os.environ
    # Another process may grab a free port before daphne binds it: then try another.
    attempts = 3 if port is None else 1
    for attempt in range(1, attempts + 1):
        port = port if attempts == 1 else free_port()
        log_path = log_dir / f"daphne-{port}-{time.monotonic_ns()}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                 "--websocket-max-message-size", "1048576", "tests.live_asgi:application"],
                cwd=REPO, env=server_env, stdout=log, stderr=subprocess.STDOUT,
            )
        server = LiveServer(url=f"http://127.0.0.1:{port}", port=port, log_path=log_path,
                            process=process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _healthy(server.url):
                return server
            time.sleep(0.1)
        exit_code = process.poll()
        server.stop()
        if "Address already in use" in server.log_tail() and attempt < attempts:
            continue
        why = (f"exited with code {exit_code}" if exit_code is not None
               else f"did not answer /healthz within {START_TIMEOUT_S:.0f} s")
        pytest.fail(f"daphne {why}. Its log:\n{server.log_tail()}", pytrace=False)
    raise AssertionError("not reached: the loop returns or fails")


@pytest.fixture
def live_server_factory(transactional_db, tmp_path_factory
                        ) -> Iterator[Callable[..., LiveServer]]:
    """Start live servers with extra environment, e.g. short SPARECYCLES_* settings."""
    servers: list[LiveServer] = []
    log_dir = tmp_path_factory.mktemp("daphne")

    def start(*, env: dict[str, str] | None = None, port: int | None = None) -> LiveServer:
        server = live_server_start(log_dir=log_dir, env=env, port=port)
        servers.append(server)
        return server

    yield start
    died = [s for s in servers if not s.alive() and not s.killed]
    for server in servers:
        server.stop()
    if died:
        pytest.fail("\n\n".join(
            f"daphne on port {s.port} died during the test (code {s.process.returncode}). "
            f"Its log:\n{s.log_tail()}" for s in died), pytrace=False)


@pytest.fixture
def live_server_url(live_server_factory) -> str:
    """The URL of a fresh daphne with default settings, e.g. "http://127.0.0.1:PORT"."""
    return live_server_factory().url
