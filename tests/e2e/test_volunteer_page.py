"""The volunteer page in a real Chromium against a real daphne: Pyodide computes, the
server stores, and the page copes with a slow runtime, dropped sockets and lost acks."""

import json
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect
from websockets.sync.client import connect

from sparecycles.projects.catalogue import bundled_app_read, bundled_batch_create
from sparecycles.projects.models import App, Project, WorkUnit
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ONE_REPLICA = QuorumParams(min_quorum=1, target_nresults=1)
COMPUTE_TIMEOUT_MS = 120_000   # Pyodide cold start is 3-5 s; leave room for a slow CI box
TOKEN_KEY = "sparecycles.deviceToken"
# An app whose one task never ends on its own: only terminating the worker stops it.
SPIN_CODE = b"def main(input):\n    while True:\n        pass\n"


def foreign_requests(urls: list[str], host: str) -> list[str]:
    """URLs that did not go to `host` (data: and blob: URLs never leave the browser)."""
    return [url for url in urls
            if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != host]


def open_page(page: Page, server, query: str = "") -> None:
    page.goto(f"{server.url}/{query}")
    expect(page.get_by_role("button", name="Start")).to_be_enabled()


def counter(page: Page, name: str) -> int:
    return int(page.locator(f"#count-{name}").text_content())


def wait_until(page: Page, expression: str, arg=None, timeout: int = COMPUTE_TIMEOUT_MS):
    """Poll a JS function until it returns something truthy.

    page.wait_for_function would eval() the predicate inside the page, which our
    CSP (no 'unsafe-eval') rightly forbids; page.evaluate goes through the
    debugger protocol and is not subject to it.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} ms waiting for {expression}")
        page.wait_for_timeout(100)


def wait_for_counter(page: Page, name: str, at_least: int,
                     timeout: int = COMPUTE_TIMEOUT_MS) -> None:
    wait_until(page,
               "([name, n]) => Number(document.getElementById(`count-${name}`).textContent) >= n",
               [name, at_least], timeout)


def wait_for_done(page: Page, at_least: int, timeout: int = COMPUTE_TIMEOUT_MS) -> None:
    wait_for_counter(page, "done", at_least, timeout)


def native_outputs(batch) -> dict[int, object]:
    main = bundled_app_read("mandelbrot").module("main").main
    return {wu.pk: main(wu.input) for wu in WorkUnit.objects.filter(batch=batch)}


def test_volunteer_computes_tiles_that_match_native_python(live_daphne, page, request_log,
                                                           screenshots_dir):
    batch = bundled_batch_create("mandelbrot", count=3, quorum=ONE_REPLICA)
    page.set_viewport_size({"width": 1280, "height": 800})
    open_page(page, live_daphne)

    started = time.monotonic()
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    wait_until(page, "() => window.sparecycles.client.pool.ready")
    runtime_ready_s = time.monotonic() - started
    wait_for_done(page, 1)
    first_result_s = time.monotonic() - started
    wait_for_done(page, 3)
    all_done_s = time.monotonic() - started
    load_ms = page.evaluate("() => window.sparecycles.client.pool.slots[0].loadMs")
    print(f"\nPyodide load (worker-measured) {load_ms} ms; runtime ready after "
          f"{runtime_ready_s:.1f} s; first result acked after {first_result_s:.1f} s; "
          f"3 results after {all_done_s:.1f} s")

    expect(page.locator("#status")).to_contain_text("Idle — no work available, asking again in")
    assert counter(page, "failed") == 0
    expect(page.locator("#alert")).to_be_empty()
    expect(page.locator("#activity li")).not_to_have_count(0)

    wait_for_completed(batch, 3)
    expected = native_outputs(batch)
    workunits = list(WorkUnit.objects.filter(batch=batch))
    assert [wu.state for wu in workunits] == [WorkUnit.State.COMPLETED] * 3
    for wu in workunits:
        assert wu.canonical_output == expected[wu.pk], f"work unit {wu.seq} differs from CPython"

    # Everything, including the worker's Pyodide files and the app code, came from us.
    assert any(url.endswith("/pyodide.asm.wasm") and "/static/pyodide/" in url
               for url in request_log)
    assert any("/apps/mandelbrot/" in url for url in request_log)
    assert any(url.startswith("ws://") for url in request_log)
    assert foreign_requests(request_log, live_daphne.host) == []

    page.screenshot(path=str(screenshots_dir / "volunteer-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshots_dir / "volunteer-phone.png"), full_page=True)
    # Nothing sideways-scrolls on a phone (360 px is the narrowest we support).
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360


def test_runtime_that_never_loads_shows_what_to_do(live_daphne, page):
    # The wasm download hangs: loadPyodide neither resolves nor fails.
    hung = []
    page.context.route("**/pyodide.asm.wasm", lambda route: hung.append(route))
    open_page(page, live_daphne, "?runtime_timeout_ms=1500")

    page.get_by_role("button", name="Start").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The Python runtime failed to load within 1.5 s", timeout=15_000)
    expect(alert).to_contain_text("press Start to try again")
    expect(page.get_by_role("button", name="Start")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Stopped — the Python runtime did not load")
    assert hung, "the wasm request from the worker was not intercepted"
    for route in hung:   # let the stalled request end so nothing dangles at teardown
        route.abort()


def test_dropped_socket_shows_reconnecting_then_carries_on(live_daphne, page):
    batch = bundled_batch_create("mandelbrot", count=6, quorum=ONE_REPLICA)
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()
    wait_for_done(page, 1)

    page.evaluate("() => window.sparecycles.client.dropConnection()")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Connection lost — reconnecting")
    expect(page.locator("#activity")).to_contain_text("Reconnected as device", timeout=40_000)
    expect(alert).to_be_empty()
    wait_for_done(page, 6)
    wait_for_completed(batch, 6)
    assert Device.objects.count() == 1


def test_device_token_survives_a_reload(live_daphne, page):
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()
    device = page.locator("#device-id")
    expect(device).not_to_have_text("not registered yet", timeout=30_000)
    first_id = device.text_content()
    token = page.evaluate("key => localStorage.getItem(key)", TOKEN_KEY)
    assert token

    page.reload()
    expect(device).to_have_text("not registered yet")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#activity")).to_contain_text(f"Connected as device {first_id}.")
    expect(device).to_have_text(first_id)

    assert page.evaluate("key => localStorage.getItem(key)", TOKEN_KEY) == token
    assert Device.objects.count() == 1
    device_row = Device.objects.get()
    assert device_row.public_id == first_id
    assert device_row.client_name == "web"
    assert device_row.capabilities["runtimes"] == ["pyodide", "wasm"]   # wasm-runtime.js runs wasm
    assert device_row.capabilities["cores"] >= 1


def test_result_whose_ack_was_lost_is_resent_and_counted_once(live_daphne, page):
    batch = bundled_batch_create("mandelbrot", count=2, quorum=ONE_REPLICA)
    connections: list[WebSocketRoute] = []
    dropped: list[str] = []

    def relay(ws: WebSocketRoute) -> None:
        connections.append(ws)
        server = ws.connect_to_server()

        def to_page(message):
            # An `ack`, or the `acks` of a results frame (the batch extension).
            if not dropped and '"type":"ack' in str(message):
                # Lose the first ack and the connection with it, as if the network died
                # just after the server stored the result.
                dropped.append(str(message))
                ws.close(code=4000, reason="test: connection lost")
                server.close()
                return
            ws.send(message)

        server.on_message(to_page)
        ws.on_message(lambda message: server.send(message))

    page.route_web_socket("**/ws/volunteer/", relay)
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()

    wait_for_done(page, 2)
    expect(page.locator("#activity")).to_contain_text("already stored")
    assert len(connections) >= 2 and dropped
    page.wait_for_timeout(500)
    assert counter(page, "done") == 2
    assert counter(page, "failed") == 0
    wait_for_completed(batch, 2)
    assert WorkUnit.objects.filter(batch=batch, state=WorkUnit.State.COMPLETED).count() == 2
    assert Replica.objects.filter(workunit__batch=batch, outcome="success").count() == 2


def test_code_that_fails_its_hash_check_is_not_run(live_daphne, page):
    batch = bundled_batch_create("mandelbrot", count=1, quorum=ONE_REPLICA)
    page.context.route(
        "**/apps/mandelbrot/*/code",
        lambda route: route.fulfill(status=200, content_type="text/x-python",
                                    body="def main(input):\n    return 'tampered'\n"),
    )
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("failed its integrity check", timeout=COMPUTE_TIMEOUT_MS)
    wait_for_counter(page, "failed", 1)
    replica = Replica.objects.get(workunit__batch=batch, outcome=Replica.Outcome.CLIENT_ERROR)
    assert replica.error_message == "code hash mismatch"
    assert replica.output is None
    assert not Replica.objects.filter(workunit__batch=batch, outcome=Replica.Outcome.SUCCESS)


def spin_batch(*, target_nresults: int = 1):
    project = Project.objects.create(slug="e2e-spin", title="Spin")
    app = App.objects.create(project=project, name="spin", title="Spins until stopped")
    version = app_version_create(app=app, code=SPIN_CODE)
    return batch_create(app_version=version, name="spin", inputs=[{"n": 1}],
                        quorum=QuorumParams(min_quorum=1, target_nresults=target_nresults))


def receive(ws, kind: str) -> dict:
    while True:
        frame = json.loads(ws.recv(timeout=15))
        if frame["type"] == kind:
            return frame


def report_first_as_another_volunteer(server) -> None:
    """A native protocol client takes the other replica of the spin unit and reports it."""
    with connect(f"ws://{server.host}/ws/volunteer/") as ws:
        ws.send(json.dumps({"type": "hello", "protocol": 1, "device_token": None,
                            "client": {"name": "e2e-native", "version": "1"},
                            "capabilities": {"runtimes": ["pyodide"], "cores": 1}}))
        receive(ws, "welcome")
        ws.send(json.dumps({"type": "request", "slots": 1}))
        tasks = receive(ws, "tasks")["tasks"]
        assert [task["app"]["name"] for task in tasks] == ["spin"]
        ws.send(json.dumps({"type": "result", "task_id": tasks[0]["task_id"], "status": "ok",
                            "output": {"spun": True}, "elapsed_ms": 5}))
        assert receive(ws, "ack")["accepted"] is True


def test_server_cancel_stops_the_task_and_a_fresh_worker_carries_on(live_daphne, page):
    spin = spin_batch(target_nresults=2)
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status")).to_contain_text("Computing Spins until stopped for Spin",
                                                    timeout=COMPUTE_TIMEOUT_MS)
    mine = Replica.objects.get(workunit__batch=spin, server_state="in_progress")

    # Quorum 1 is reached elsewhere: the server cancels the browser's replica. (The tile is
    # made only now: dispatch is random, so the other volunteer would otherwise get it.)
    report_first_as_another_volunteer(live_daphne)
    tiles = bundled_batch_create("mandelbrot", count=1, quorum=ONE_REPLICA)

    expect(page.locator("#activity")).to_contain_text(
        "The server cancelled the Spins until stopped (Spin) task (another volunteer's result "
        "completed it); restarting the worker.")
    wait_for_done(page, 1)   # the restarted worker goes on to the Mandelbrot tile
    assert counter(page, "failed") == 0
    wait_for_completed(tiles, 1)
    mine.refresh_from_db()
    assert mine.outcome == Replica.Outcome.DIDNT_NEED
    assert mine.received_at is None   # the browser never reported the cancelled task


def test_pause_stops_the_worker_and_start_runs_the_task_again(live_daphne, page):
    spin_batch()
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()
    status = page.locator("#status")
    expect(status).to_contain_text("Computing Spins until stopped for Spin",
                                   timeout=COMPUTE_TIMEOUT_MS)
    computing = status.text_content()

    page.get_by_role("button", name="Pause").click()
    expect(status).to_have_text("Paused")
    assert page.evaluate("() => window.sparecycles.client.pool.ready") is False
    expect(page.locator("#activity")).to_contain_text("will run again on Start")

    page.get_by_role("button", name="Start").click()
    expect(status).to_have_text(computing, timeout=COMPUTE_TIMEOUT_MS)
    assert Replica.objects.filter(server_state="in_progress").count() == 1


PROBE_CODE = b'''
def main(input):
    if input["fail"]:
        raise ValueError("bad input " + str(input["n"]))
    import js
    return {"n": input["n"], "big": 2 ** 70, "app_sees_fetch": hasattr(js, "fetch")}
'''


def test_outputs_cross_as_python_json_and_exceptions_as_their_last_line(live_daphne, page):
    project = Project.objects.create(slug="e2e-probe", title="Probe")
    app = App.objects.create(project=project, name="probe", title="Probe")
    version = app_version_create(app=app, code=PROBE_CODE)
    batch = batch_create(app_version=version, name="probe",
                         inputs=[{"n": 1, "fail": False}, {"n": 2, "fail": True}],
                         quorum=ONE_REPLICA)
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()
    wait_for_done(page, 1)
    wait_for_counter(page, "failed", 1)
    wait_for_completed(batch, 1)

    ok, failing = WorkUnit.objects.filter(batch=batch).order_by("seq")
    # 2**70 survives exactly (no float, no BigInt); app code gets no fetch() from `import js`.
    assert ok.canonical_output == {"n": 1, "big": 2**70, "app_sees_fetch": False}
    error = Replica.objects.get(workunit=failing, outcome=Replica.Outcome.CLIENT_ERROR)
    assert error.error_message == "ValueError: bad input 2"
    expect(page.locator("#activity")).to_contain_text("failed after")


def test_hello_reports_what_the_browser_honestly_knows(live_daphne, page):
    """The stats exports' host fields come from hello's host object (host-info.js)."""
    open_page(page, live_daphne)
    page.wait_for_timeout(500)  # the page gathers them once, right after it loads
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#device-id")).not_to_have_text("not registered yet", timeout=30_000)
    device = Device.objects.get()
    assert device.os_name == "Linux"
    assert "Chrom" in device.p_model
    assert device.p_fpops and 1e5 < device.p_fpops <= 1e13
    offset = page.evaluate("() => -new Date().getTimezoneOffset() * 60")
    assert device.timezone == offset
    assert len(device.host_cpid) == 32


def test_a_result_acked_rate_limited_is_sent_again_not_dropped(live_daphne, page):
    """Red team (batch extension): the page took every refusal as final, `rate_limited` too
    (README: "send the result again later"), so a result the server had not stored left the
    outbox for good; a backlog sent in `results` frames after a reconnect meets the rate
    limit per result. Here the relay answers the first result as the rate limit would."""
    batch = bundled_batch_create("mandelbrot", count=1, quorum=ONE_REPLICA)
    limited: list[str] = []

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_server(message):
            if limited or '"type":"result' not in str(message):
                server.send(message)
                return
            frame = json.loads(message)
            items = frame["results"] if frame["type"] == "results" else [frame]
            limited.extend(item["task_id"] for item in items)
            acks = [{"task_id": item["task_id"], "accepted": False, "reason": "rate_limited"}
                    for item in items]
            if frame["type"] == "result":
                ws.send(json.dumps({"type": "ack", **acks[0]}))
                return
            ws.send(json.dumps({"type": "acks", "acks": acks}))
            if frame.get("slots") is not None:  # the request that rode along still goes
                server.send(json.dumps({"type": "request", "slots": frame["slots"]}))

        server.on_message(lambda message: ws.send(message))
        ws.on_message(to_server)

    page.route_web_socket("**/ws/volunteer/", relay)
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()

    wait_until(page, "() => Number(document.getElementById('count-done').textContent)"
                     " + Number(document.getElementById('count-failed').textContent) >= 1")
    assert limited
    assert counter(page, "failed") == 0
    wait_for_done(page, 1)
    wait_for_completed(batch, 1)
    assert Replica.objects.get(task_id=limited[0]).outcome == "success"


def test_a_dropped_results_frame_is_sent_again_without_a_reconnect(live_daphne, page):
    """Red team (batch extension): a `results` frame the server drops with a frame-level
    `rate_limited` error gets no acks and no tasks; the page used to wait for a reconnect,
    its request outstanding for ever. Here the relay drops the first results frame as the
    server's frame rate limit does; the page sends it again on the same socket."""
    batch = bundled_batch_create("mandelbrot", count=2, quorum=ONE_REPLICA)
    dropped: list[str] = []
    sockets: list[WebSocketRoute] = []

    def relay(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        server = ws.connect_to_server()

        def to_server(message):
            if dropped or '"type":"results"' not in str(message):
                server.send(message)
                return
            dropped.extend(item["task_id"] for item in json.loads(message)["results"])
            ws.send(json.dumps({"type": "error", "code": "rate_limited",
                                "message": "too many frames: this one was dropped"}))

        server.on_message(lambda message: ws.send(message))
        ws.on_message(to_server)

    page.route_web_socket("**/ws/volunteer/", relay)
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()

    wait_for_done(page, 2)
    wait_for_completed(batch, 2)
    assert dropped
    assert len(sockets) == 1   # no reconnect was needed
    assert counter(page, "failed") == 0
    assert Replica.objects.get(task_id=dropped[0]).outcome == "success"


def test_the_page_sends_plain_v1_frames_when_welcome_offers_no_extension(live_daphne, page):
    """A server without the batch extension (its welcome lists none) gets `request` and one
    `result` per task from the page, never a `results` frame."""
    batch = bundled_batch_create("mandelbrot", count=2, quorum=ONE_REPLICA)
    sent: list[str] = []

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message):
            frame = json.loads(message)
            if frame.get("type") == "welcome":
                frame.pop("extensions", None)
                frame.pop("max_batch", None)
                message = json.dumps(frame)
            ws.send(message)

        def to_server(message):
            sent.append(json.loads(message).get("type"))
            server.send(message)

        server.on_message(to_page)
        ws.on_message(to_server)

    page.route_web_socket("**/ws/volunteer/", relay)
    open_page(page, live_daphne)
    page.get_by_role("button", name="Start").click()

    wait_for_done(page, 2)
    wait_for_completed(batch, 2)
    assert "results" not in sent
    assert sent.count("result") >= 2 and "request" in sent
