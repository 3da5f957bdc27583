"""Browser tests: a real daphne serving the ASGI app, driven by Debian's Chromium.

Run them on their own: `pytest -m e2e tests/e2e` (Playwright's event loop upsets
later async tests). pytest-django's live_server is WSGI only, so the server here
is a daphne subprocess on a free port, pointed at pytest-django's test database.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT_S = 30
SCREENSHOTS = REPO / "var" / "screenshots"


@dataclass(frozen=True)
class LiveServer:
    url: str            # "http://127.0.0.1:PORT"
    host: str           # "127.0.0.1:PORT"
    log_path: Path

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="session", autouse=True)
def allow_orm_beside_playwright():
    """Playwright's sync API runs an event loop in the test thread, and the ORM refuses
    to run beside one unless DJANGO_ALLOW_ASYNC_UNSAFE is set.

    Django reads the variable at each ORM call, so setting it here (first, being an
    autouse session fixture) is enough, and it stays out of the ordinary test run,
    where pytest imports this file too and the check must keep catching sync ORM
    calls from async code.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get update && apt-get install -y chromium` "
                    "(Playwright's own browser download does not work here).", pytrace=False)
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(settings_dict: dict) -> str:
    """DATABASE_URL for the server process: the test database this session created."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        path = Path(settings_dict["NAME"]).resolve()
        return f"sqlite:///{path}?timeout=20"
    if engine.startswith("django.db.backends.postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"
    raise RuntimeError(f"The browser tests do not know how to share a {engine} database.")


@pytest.fixture(scope="session")
def live_daphne(django_db_setup, tmp_path_factory) -> LiveServer:
    """daphne serving sparecycles.asgi on a free port, sharing the test database."""
    from django.db import connection

    port = _free_port()
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(REPO / "platform"),
        "DJANGO_SETTINGS_MODULE": "sparecycles.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "--websocket-max-message-size", "1048576", "sparecycles.asgi:application"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    server = LiveServer(url=f"http://127.0.0.1:{port}", host=f"127.0.0.1:{port}", log_path=log_path)
    try:
        _wait_healthy(process, server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if os.environ.get("SPARECYCLES_E2E_SERVER_LOG"):   # debugging aid: show the whole log
            print(f"\n--- daphne log ({log_path}) ---\n{log_path.read_text(errors='replace')}")


def _wait_healthy(process: subprocess.Popen, server: LiveServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with code {process.returncode}:\n{server.log_tail()}",
                        pytrace=False)
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"daphne did not answer /healthz within {SERVER_START_TIMEOUT_S} s:\n"
                f"{server.log_tail()}", pytrace=False)


@pytest.fixture
def request_log(context):
    """Every URL the browser asks for: page, workers, websockets, and the context's own."""
    urls: list[str] = []
    context.on("request", lambda request: urls.append(request.url))

    def on_page(page):
        page.on("request", lambda request: urls.append(request.url))
        page.on("websocket", lambda ws: urls.append(ws.url))

    context.on("page", on_page)
    for page in context.pages:
        on_page(page)
    return urls


@pytest.fixture
def screenshots_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of the server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "live_daphne" in getattr(item, "funcargs", {}):
        server = item.funcargs["live_daphne"]
        report.sections.append(("daphne log (tail)", server.log_tail()))
