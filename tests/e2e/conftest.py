"""Browser tests: a real daphne serving the ASGI app, driven by Debian's Chromium.

Run them on their own: `pytest -m e2e tests/e2e` (Playwright's event loop upsets
later async tests). pytest-django's live_server is WSGI only, so the server here
is a daphne subprocess on a free port, pointed at pytest-django's test database.
"""

import os
from pathlib import Path

import pytest

from tests.live_server import LiveServer, live_server_start

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
SCREENSHOTS = REPO / "var" / "screenshots"


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


@pytest.fixture(scope="session")
def live_daphne(django_db_setup, tmp_path_factory) -> LiveServer:
    """daphne serving sparecycles.asgi on a free port, sharing the test database."""
    server = live_server_start(log_dir=tmp_path_factory.mktemp("daphne"))
    try:
        yield server
    finally:
        server.stop()
        if os.environ.get("SPARECYCLES_E2E_SERVER_LOG"):   # debugging aid: show the whole log
            print(f"\n--- daphne log ({server.log_path}) ---\n"
                  f"{server.log_path.read_text(errors='replace')}")


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
