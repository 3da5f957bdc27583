"""The installable app on a phone: a real Chromium at a phone viewport with touch, the
service worker, offline use, results kept through a lost connection, and the device
settings (workers, CPU duty cycle, charging/battery, metered network).

The Battery Status and Network Information APIs are replaced on the page with
add_init_script: a seam for the browser's API, not a mock of our code.
"""

import json
import re
import time
import urllib.request

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.models import App, Project
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.models import Replica
from tests.e2e.test_volunteer_page import (
    COMPUTE_TIMEOUT_MS,
    ONE_REPLICA,
    SPIN_CODE,
    open_page,
    spin_batch,
    wait_for_done,
    wait_until,
)
from tests.live_server import live_server_start
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2, "service_workers": "allow"}
PYODIDE = "/static/pyodide/"
# Busy for input["seconds"] of wall time, like a real task: no sleeping.
SLOW_CODE = b'''import time

def main(input):
    end = time.time() + input["seconds"]
    while time.time() < end:
        pass
    return {"seconds": input["seconds"]}
'''
BATTERY_SEAM = """
(() => {
  const battery = new EventTarget();
  Object.assign(battery, { charging: false, level: 0.8, chargingTime: Infinity,
                           dischargingTime: 7200 });
  window.__battery = {
    set(charging, level) {
      battery.charging = charging;
      battery.level = level;
      battery.dispatchEvent(new Event("chargingchange"));
      battery.dispatchEvent(new Event("levelchange"));
    },
  };
  Navigator.prototype.getBattery = function getBattery() { return Promise.resolve(battery); };
})();
"""
CONNECTION_SEAM = """
(() => {
  const connection = new EventTarget();
  Object.assign(connection, { type: "cellular", effectiveType: "4g", saveData: false });
  window.__connection = {
    set(fields) {
      Object.assign(connection, fields);
      connection.dispatchEvent(new Event("change"));
    },
  };
  Object.defineProperty(Navigator.prototype, "connection", { configurable: true,
                                                             get() { return connection; } });
})();
"""
NO_BATTERY_API = "delete Navigator.prototype.getBattery;"
# Headless pages are always visible: let the test hide the page, as switching apps would.
VISIBILITY_SEAM = """
(() => {
  let hidden = false;
  const state = () => (hidden ? "hidden" : "visible");
  Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: state });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""


@pytest.fixture
def phone(browser) -> BrowserContext:
    context = browser.new_context(**PHONE)
    yield context
    context.close()


def slow_batch(*, seconds: float, count: int, delay_bound: int = 3600):
    project, _ = Project.objects.get_or_create(slug="e2e-slow", title="Slow")
    app, _ = App.objects.get_or_create(project=project, name="slow", title="Busy for a while")
    version = app.versions.first() or app_version_create(app=app, code=SLOW_CODE)
    return batch_create(app_version=version, name="slow",
                        inputs=[{"seconds": seconds, "i": i} for i in range(count)],
                        quorum=QuorumParams(min_quorum=1, target_nresults=1,
                                            delay_bound=delay_bound))


def status(page: Page):
    return page.locator("#status")


def activity(page: Page):
    return page.locator("#activity")


def open_settings(page: Page) -> None:
    if not page.locator("#settings-panel").evaluate("details => details.open"):
        page.locator("#settings-panel > summary").tap()
    expect(page.locator("#set-workers")).to_be_visible()


def wait_controlled(page: Page) -> None:
    wait_until(page, "() => Boolean(navigator.serviceWorker.controller)", timeout=30_000)


def sw_config(server_url: str) -> dict:
    with urllib.request.urlopen(f"{server_url}/sw.js", timeout=10) as response:
        body = response.read().decode()
    return json.loads(re.match(r"// [^\n]*\nself\.SPARECYCLES_SW = (\{.*?\});\n", body).group(1))


def sw_config_frame(page: Page) -> str:
    """The absolute URL of the volunteer page's compute frame."""
    return page.evaluate("() => new URL(window.sparecycles.config.computeFrameUrl, "
                         "location.href).href")


def cache_names(page: Page) -> list[str]:
    return page.evaluate("() => caches.keys()")


class Traffic:
    """What went over the network (not answered by the service worker from its cache)."""

    def __init__(self, context: BrowserContext):
        self.finished = []
        self.seen = set()
        context.on("requestfinished", self.add)
        context.on("page", lambda page: page.on("requestfinished", self.add))
        for page in context.pages:
            page.on("requestfinished", self.add)

    def add(self, request) -> None:
        if id(request) not in self.seen:
            self.seen.add(id(request))
            self.finished.append(request)

    def mark(self) -> int:
        return len(self.finished)

    def network(self, since: int = 0):
        out = []
        for request in self.finished[since:]:
            if not request.url.startswith(("http:", "https:")):
                continue   # blob: and data: (the compute frame's modules) never leave the browser
            response = request.response()
            if response is not None and not response.from_service_worker:
                out.append(request)
        return out

    def bytes(self, since: int = 0) -> int:
        """Response bodies, by Content-Length (every response here carries one; nothing is
        compressed). Request.sizes() would be exact but never answers for some requests
        made by a service worker."""
        return sum(int(request.response().headers.get("content-length") or 0)
                   for request in self.network(since))


def test_installable_and_controlled_by_a_service_worker_that_clears_old_caches(
        live_daphne, playwright, browser_type_launch_args, tmp_path):
    # Installability is only reported outside incognito: a persistent profile.
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), **browser_type_launch_args, **PHONE)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        # Caches an older build left behind, and one that is not ours.
        page.goto(f"{live_daphne.url}/healthz")
        page.evaluate("""() => Promise.all(["sparecycles-shell-000000000000",
            "sparecycles-runtime-pyodide-0.0.1", "someone-else"].map((n) => caches.open(n)))""")

        open_page(page, live_daphne)
        wait_controlled(page)
        cdp = context.new_cdp_session(page)
        deadline = time.monotonic() + 15
        while True:
            errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
            if not errors or time.monotonic() > deadline:
                break
            page.wait_for_timeout(250)
        assert errors == []
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"].endswith("/manifest.webmanifest")
        assert manifest["errors"] == []

        config = sw_config(live_daphne.url)
        scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
        assert scope == f"{live_daphne.url}/"
        names = cache_names(page)
        assert config["shellCache"] in names
        assert "someone-else" in names
        assert "sparecycles-shell-000000000000" not in names
        assert "sparecycles-runtime-pyodide-0.0.1" not in names
        cached = page.evaluate("""name => caches.open(name).then(c => c.keys())
                                  .then(keys => keys.map(k => new URL(k.url).pathname))""",
                               config["shellCache"])
        assert set(config["shell"]) <= set(cached)
    finally:
        context.close()


@pytest.fixture
def stoppable_server(transactional_db, tmp_path):
    """A daphne of this test's own, so the test can take the network away for real."""
    server = live_server_start(log_dir=tmp_path)
    yield server
    server.stop()


def test_second_visit_works_offline_and_starts_python_from_the_cache(stoppable_server, phone):
    server = stoppable_server
    bundled_batch_create("mandelbrot", count=20, quorum=ONE_REPLICA)
    traffic = Traffic(phone)
    page = phone.new_page()

    # First visit: nothing cached anywhere.
    page.goto(f"{server.url}/")
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    wait_controlled(page)
    page.wait_for_load_state("networkidle")
    shell_bytes = traffic.bytes()
    started = time.monotonic()
    page.get_by_role("button", name="Start").tap()
    wait_for_done(page, 1)
    cold_s = time.monotonic() - started
    cold_load_ms = page.evaluate("() => window.sparecycles.client.pool.slots[0].loadMs")
    page.get_by_role("button", name="Pause").tap()
    expect(page.locator("#offline-info")).to_have_text(
        "Ready: this page and the Python runtime work without a connection.", timeout=60_000)
    first_visit_bytes = traffic.bytes()

    # Second visit, online: the runtime comes from Cache Storage, not the network.
    mark = traffic.mark()
    page.goto(f"{server.url}/")
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    started = time.monotonic()
    page.get_by_role("button", name="Start").tap()
    wait_for_done(page, 1)
    cached_s = time.monotonic() - started
    cached_load_ms = page.evaluate("() => window.sparecycles.client.pool.slots[0].loadMs")
    wanted = {"pyodide.mjs", "pyodide.asm.wasm", "python_stdlib_core.zip",
              "python_stdlib_rest.zip"}
    # The big streamed responses may report "finished" a little after the first result.
    for _ in range(100):
        runtime = [r for r in traffic.finished[mark:] if PYODIDE in r.url]
        if {r.url.rsplit("/", 1)[1] for r in runtime} >= wanted:
            break
        page.wait_for_timeout(100)
    # Chromium may also serve the compiled wasm from its code cache and skip the request;
    # either way nothing of the runtime may come from the network (checked below).
    assert {r.url.rsplit("/", 1)[1] for r in runtime} >= wanted - {"pyodide.asm.wasm"}
    assert all(r.response().from_service_worker for r in runtime), "runtime not from the cache"
    assert [r.url for r in traffic.network(mark) if PYODIDE in r.url] == []
    second_visit_bytes = traffic.bytes(mark)
    page.get_by_role("button", name="Pause").tap()

    print(f"\nfirst download: shell {shell_bytes / 1024:.0f} KiB before Start; "
          f"{first_visit_bytes / 1024 / 1024:.2f} MiB with the runtime; second visit "
          f"{second_visit_bytes / 1024:.0f} KiB over the network\n"
          f"start-to-first-result: cold {cold_s:.2f} s (Pyodide load {cold_load_ms} ms), "
          f"cached {cached_s:.2f} s (Pyodide load {cached_load_ms} ms)")

    # Third visit with no server and no network at all.
    server.stop()
    phone.set_offline(True)
    mark = traffic.mark()
    response = page.reload()
    assert response is not None and response.from_service_worker
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.get_by_role("button", name="Start").tap()
    wait_until(page, "() => window.sparecycles.client.pool.ready", timeout=COMPUTE_TIMEOUT_MS)
    expect(status(page)).to_have_text("Offline — computing resumes when the connection is back")
    expect(page.get_by_role("alert")).to_contain_text("You are offline.")
    runtime = [r for r in traffic.finished[mark:] if PYODIDE in r.url]
    assert runtime and all(r.response().from_service_worker for r in runtime)
    # The compute frame is sandboxed (an opaque origin): no service worker serves it, but its
    # versioned, immutable document comes from the HTTP cache — the server is down.
    frame = sw_config_frame(page)
    assert [r.url for r in traffic.network(mark)
            if r.url.startswith(server.url) and r.url != frame] == []
    assert any(r.url == frame for r in traffic.finished[mark:])
    # Pages the service worker does not keep get the offline page.
    page.goto(f"{server.url}/leaderboards/volunteers/")
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()


def test_a_visit_closed_right_after_its_first_result_leaves_the_whole_runtime(
        live_daphne, playwright, browser_type_launch_args, tmp_path):
    """Issue 18: one phone second visit in seven downloaded the stdlib again."""
    bundled_batch_create("mandelbrot", count=10, quorum=ONE_REPLICA)
    profile = tmp_path / "profile"

    def visit() -> list[str]:
        """Open the page, Start, close the browser at the first result; runtime URLs that
        came over the network."""
        context = playwright.chromium.launch_persistent_context(
            str(profile), **browser_type_launch_args, **PHONE)
        try:
            traffic = Traffic(context)
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(f"{live_daphne.url}/")
            expect(page.get_by_role("button", name="Start")).to_be_enabled()
            page.get_by_role("button", name="Start").tap()
            wait_for_done(page, 1)
            return [r.url for r in traffic.network() if PYODIDE in r.url]
        finally:
            context.close()   # at once: no time for anything to finish in the background

    first = visit()
    assert {url.rsplit("/", 1)[1] for url in first} >= {
        "pyodide.asm.wasm", "python_stdlib_core.zip", "python_stdlib_rest.zip"}
    assert visit() == []
    # The stdlib is kept in two parts (the rest after start-up): still nothing downloaded.
    assert visit() == []


def test_result_finished_offline_is_kept_and_delivered_exactly_once(live_daphne, phone):
    batch = slow_batch(seconds=3, count=1)
    page = phone.new_page()
    result_frames: list[str] = []

    def watch(ws):
        ws.on("framesent", lambda payload: result_frames.append(str(payload))
              if '"type":"result"' in str(payload) else None)

    page.on("websocket", watch)
    open_page(page, live_daphne)
    wait_controlled(page)
    page.get_by_role("button", name="Start").tap()
    expect(status(page)).to_contain_text("Computing Busy for a while for Slow",
                                         timeout=COMPUTE_TIMEOUT_MS)

    phone.set_offline(True)
    expect(activity(page)).to_contain_text("went offline")
    expect(page.locator("#count-unsent")).to_have_text("1", timeout=30_000)
    replica = Replica.objects.get(workunit__batch=batch)
    stored = page.evaluate("() => window.sparecycles.outbox.all().then(r => r.map(x => x.task_id))")
    assert stored == [replica.task_id]
    assert replica.received_at is None
    assert result_frames == []
    expect(page.get_by_role("alert")).to_contain_text("You are offline.")

    # Even a reload while offline loses nothing: the result waits in IndexedDB.
    page.reload()
    expect(page.locator("#count-unsent")).to_have_text("1")
    expect(status(page)).to_have_text("Results kept on this device wait for a connection")

    phone.set_offline(False)
    expect(page.locator("#count-unsent")).to_have_text("0", timeout=30_000)
    expect(page.locator("#count-done")).to_have_text("1")
    expect(activity(page)).to_contain_text("Finished a Busy for a while (Slow) task in")
    page.wait_for_timeout(500)
    assert len([f for f in result_frames if replica.task_id in f]) == 1
    assert page.evaluate("() => window.sparecycles.outbox.all().then(r => r.length)") == 0
    replica.refresh_from_db()
    assert replica.outcome == Replica.Outcome.SUCCESS
    wait_for_completed(batch, 1)
    expect(activity(page)).not_to_contain_text("already stored")


def test_task_whose_deadline_passed_while_offline_is_dropped(live_daphne, phone):
    batch = slow_batch(seconds=60, count=1, delay_bound=4)
    page = phone.new_page()
    open_page(page, live_daphne)
    wait_controlled(page)
    page.get_by_role("button", name="Start").tap()
    expect(status(page)).to_contain_text("Computing Busy for a while for Slow",
                                         timeout=COMPUTE_TIMEOUT_MS)
    replica = Replica.objects.get(workunit__batch=batch)

    phone.set_offline(True)
    page.get_by_role("button", name="Pause").tap()
    expect(activity(page)).to_contain_text("will run again on Start")
    wait_s = (replica.deadline.timestamp() - time.time()) + 0.5
    if wait_s > 0:
        page.wait_for_timeout(wait_s * 1000)
    page.get_by_role("button", name="Start").tap()
    expect(activity(page)).to_contain_text(
        "Dropped a Busy for a while (Slow) task: its deadline has passed.")

    phone.set_offline(False)
    expect(activity(page)).to_contain_text("Reconnected as device", timeout=30_000)
    page.wait_for_timeout(1000)
    expect(status(page)).not_to_contain_text("Computing Busy for a while for Slow")
    replica.refresh_from_db()
    assert replica.received_at is None


def busy_share(page: Page, since: float = 0) -> float:
    """Busy time / wall time of the page's worker over whole cycles (a task and the rest
    after it) of the tasks that began after `since`: first start to last start."""
    return page.evaluate("""since => {
        const done = window.sparecycles.client.timeline.filter(e => e.start >= since && e.end);
        const cycles = done.slice(0, -1);
        const busy = cycles.reduce((sum, e) => sum + e.end - e.start, 0);
        return busy / (done[done.length - 1].start - done[0].start);
    }""", since)


def test_cpu_throttle_makes_the_worker_rest_between_tasks(live_daphne, phone):
    slow_batch(seconds=0.5, count=7)
    page = phone.new_page()
    open_page(page, live_daphne)
    open_settings(page)
    page.locator("#set-workers").select_option("1")
    page.locator("#set-duty").fill("100")
    page.get_by_role("button", name="Start").tap()
    wait_for_done(page, 3)
    full = busy_share(page)

    page.locator("#set-duty").fill("25")
    expect(page.locator("#set-duty-value")).to_have_text("25%")
    since = page.evaluate("() => Date.now()")
    expect(status(page)).to_contain_text("Resting (CPU use 25%) — next task in",
                                         timeout=30_000)
    wait_for_done(page, 7, timeout=60_000)
    throttled = busy_share(page, since)
    print(f"\nbusy share at 100%: {full:.2f}; at 25%: {throttled:.2f}")
    assert full > 0.7
    assert 0.18 < throttled < 0.3
    stored = page.evaluate("() => JSON.parse(localStorage.getItem('sparecycles.settings.v1'))")
    assert stored["duty"] == 25 and stored["workers"] == 1
    expect(page.locator("#load-line")).to_contain_text("1 worker at up to 25% CPU")


def test_worker_count_runs_that_many_tasks_at_once(live_daphne, phone):
    cores = phone.new_page()
    if cores.evaluate("() => navigator.hardwareConcurrency") < 2:
        pytest.skip("this machine has one core: a second worker cannot be chosen")
    cores.close()
    project = Project.objects.create(slug="e2e-spin2", title="Spin")
    app = App.objects.create(project=project, name="spin", title="Spins until stopped")
    version = app_version_create(app=app, code=SPIN_CODE)
    batch_create(app_version=version, name="spin", inputs=[{"n": 1}, {"n": 2}],
                 quorum=ONE_REPLICA)
    page = phone.new_page()
    open_page(page, live_daphne)
    open_settings(page)
    page.locator("#set-workers").select_option("2")
    page.get_by_role("button", name="Start").tap()
    expect(status(page)).to_contain_text("Computing Spins until stopped for Spin (+1 more)",
                                         timeout=COMPUTE_TIMEOUT_MS)
    assert Replica.objects.filter(server_state="in_progress").count() == 2
    assert page.evaluate("() => window.sparecycles.client.pool.size") == 2

    # Down to one: the second task goes on until it ends (never, here); no new one starts.
    page.locator("#set-workers").select_option("1")
    assert page.evaluate("() => window.sparecycles.client.pool.size") == 1
    page.get_by_role("button", name="Pause").tap()
    expect(status(page)).to_have_text("Paused")
    assert page.evaluate("() => window.sparecycles.client.pool.started") is False
    assert page.evaluate("() => window.sparecycles.client.pool.slots.length") == 1


def test_charging_setting_holds_the_worker_back_until_plugged_in(live_daphne, phone):
    phone.add_init_script(BATTERY_SEAM)
    spin_batch()
    page = phone.new_page()
    runtime_requests: list[str] = []
    page.on("request", lambda r: runtime_requests.append(r.url) if PYODIDE in r.url else None)
    open_page(page, live_daphne)
    open_settings(page)
    expect(page.locator("#battery-support")).to_have_text(
        "This browser reports the battery, so these settings apply.")
    page.get_by_label("Compute only while charging").check()
    page.locator("#set-battery").fill("50")

    page.get_by_role("button", name="Start").tap()
    expect(status(page)).to_have_text("Waiting — the device is not charging")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.wait_for_timeout(1500)
    assert runtime_requests == [], "the runtime loaded although the device is not charging"
    assert page.evaluate("() => window.sparecycles.client.pool.started") is False
    assert not Replica.objects.filter(server_state="in_progress").exists(), \
        "asked for work it may not compute"

    page.evaluate("() => window.__battery.set(true, 0.8)")   # plugged in
    expect(status(page)).to_contain_text("Computing Spins until stopped for Spin",
                                         timeout=COMPUTE_TIMEOUT_MS)

    page.evaluate("() => window.__battery.set(false, 0.8)")  # unplugged mid-task
    expect(status(page)).to_have_text("Waiting — the device is not charging")
    assert page.evaluate("() => window.sparecycles.client.pool.started") is False
    expect(activity(page)).to_contain_text("will run again later")

    page.evaluate("() => window.__battery.set(true, 0.3)")   # charging, but too low
    expect(status(page)).to_have_text(
        "Waiting — the battery is at 30%, below your 50% limit")
    page.evaluate("() => window.__battery.set(true, 0.9)")
    expect(status(page)).to_contain_text("Computing Spins until stopped for Spin",
                                         timeout=COMPUTE_TIMEOUT_MS)
    assert Replica.objects.filter(server_state="in_progress").count() == 1


def test_without_the_battery_api_the_page_says_so_plainly(live_daphne, phone):
    phone.add_init_script(NO_BATTERY_API)
    page = phone.new_page()
    open_page(page, live_daphne)
    open_settings(page)
    expect(page.locator("#battery-support")).to_contain_text(
        "This browser does not tell web pages about the battery")
    expect(page.get_by_label("Compute only while charging")).to_be_disabled()
    expect(page.locator("#set-battery")).to_be_disabled()


def test_metered_connection_pauses_until_the_setting_or_the_network_allows(live_daphne, phone):
    phone.add_init_script(CONNECTION_SEAM)
    page = phone.new_page()
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").tap()
    expect(status(page)).to_have_text("Waiting — the device is on mobile data")
    assert page.evaluate("() => window.sparecycles.client.pool.started") is False

    page.evaluate("() => window.__connection.set({type: 'wifi', saveData: true})")
    expect(status(page)).to_have_text("Waiting — Data Saver is on")

    open_settings(page)
    page.get_by_label("Pause on mobile data or when Data Saver is on").uncheck()
    expect(status(page)).not_to_contain_text("Waiting")
    assert page.evaluate("() => window.sparecycles.client.pool.started") is True
    page.get_by_role("button", name="Pause").tap()


def test_only_while_visible_pauses_when_the_page_is_hidden(live_daphne, phone):
    phone.add_init_script(VISIBILITY_SEAM)
    page = phone.new_page()
    open_page(page, live_daphne)
    open_settings(page)
    page.get_by_label("Keep computing while this page is in the background").uncheck()
    page.get_by_role("button", name="Start").tap()
    wait_until(page, "() => window.sparecycles.client.pool.started", timeout=10_000)

    page.evaluate("() => window.__setHidden(true)")
    expect(status(page)).to_have_text("Waiting — this page is in the background")
    assert page.evaluate("() => window.sparecycles.client.pool.started") is False

    page.evaluate("() => window.__setHidden(false)")
    expect(status(page)).not_to_contain_text("Waiting")
    assert page.evaluate("() => window.sparecycles.client.pool.started") is True

    page.get_by_label("Keep computing while this page is in the background").check()
    page.evaluate("() => window.__setHidden(true)")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.sparecycles.client.pool.started") is True
    page.get_by_role("button", name="Pause").tap()


def test_screen_wake_lock_is_held_only_while_computing(live_daphne, phone):
    page = phone.new_page()
    open_page(page, live_daphne)
    open_settings(page)
    if page.get_by_label("Keep the screen on while computing").is_disabled():
        pytest.skip("this Chromium has no Screen Wake Lock API")
    page.get_by_label("Keep the screen on while computing").check()
    assert page.evaluate("() => window.sparecycles.client.wakeLock.held") is False
    page.get_by_role("button", name="Start").tap()
    wait_until(page, "() => window.sparecycles.client.wakeLock.held", timeout=10_000)
    page.get_by_role("button", name="Pause").tap()
    wait_until(page, "() => !window.sparecycles.client.wakeLock.held", timeout=10_000)
