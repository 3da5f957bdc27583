"""The wasm runtime in real Chromium: a volunteer page runs the bundled WebAssembly module
(no Pyodide involved in the task), outputs are bit-identical to the Python app, a tampered
module is refused, and the public project page paints the validated tiles."""

import time

import pytest
from playwright.sync_api import Page, expect

from sparecycles.projects.catalogue import bundled_app_read, bundled_batch_create
from sparecycles.projects.models import WorkUnit
from sparecycles.projects.services import QuorumParams
from sparecycles.scheduler.models import Replica
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ONE_REPLICA = QuorumParams(min_quorum=1, target_nresults=1)
TIMEOUT_S = 120


def start_volunteering(page: Page, server) -> None:
    page.goto(f"{server.url}/")
    start = page.get_by_role("button", name="Start")
    expect(start).to_be_enabled()
    start.click()


def test_volunteer_runs_wasm_tiles_identical_to_python(live_daphne, page):
    batch = bundled_batch_create("mandelbrot-wasm", count=6, quorum=ONE_REPLICA)
    start_volunteering(page, live_daphne)
    wait_for_completed(batch, 6)

    main = bundled_app_read("mandelbrot").module("main").main
    for unit in WorkUnit.objects.filter(batch=batch):
        assert unit.canonical_output == main(unit.input), f"tile {unit.seq} differs from Python"
    replicas = Replica.objects.filter(workunit__batch=batch, outcome="success")
    assert replicas.count() == 6
    # The worker fetched the module (and the runtime) from us; module workers' requests
    # may be answered by the PWA's service worker, so read the server's own log.
    log = live_daphne.log_path.read_text()
    assert '"GET /apps/mandelbrot-wasm/1/code" 200' in log
    assert '"GET /static/volunteer/wasm-runtime.js" 200' in log
    elapsed = sorted(r.elapsed_ms for r in replicas)
    print(f"\nwasm tile times in Chromium (ms): {elapsed}")


def test_a_tampered_module_is_not_run(live_daphne, page):
    batch = bundled_batch_create("mandelbrot-wasm", count=1, quorum=ONE_REPLICA)
    page.context.route("**/apps/mandelbrot-wasm/*/code",
                       lambda route: route.fulfill(status=200, content_type="application/wasm",
                                                   body=b"\0asm\x01\0\0\0"))
    start_volunteering(page, live_daphne)
    expect(page.get_by_role("alert")).to_contain_text("failed its integrity check",
                                                      timeout=TIMEOUT_S * 1000)
    deadline = time.monotonic() + 30
    while not Replica.objects.filter(workunit__batch=batch, outcome="client_error").exists():
        assert time.monotonic() < deadline, "the failure was not reported"
        time.sleep(0.2)
    replica = Replica.objects.get(workunit__batch=batch, outcome="client_error")
    assert replica.error_message == "code hash mismatch" and replica.output is None


def test_project_page_paints_the_validated_picture(live_daphne, page, browser, screenshots_dir):
    batch = bundled_batch_create("mandelbrot-wasm", count=64, quorum=ONE_REPLICA)
    project = batch.app_version.app.project
    volunteer = browser.new_context()
    try:
        start_volunteering(volunteer.new_page(), live_daphne)
        wait_for_completed(batch, 64)
    finally:
        volunteer.close()

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_daphne.url}/projects/{project.slug}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(project.title)
    canvas = page.locator("canvas.pj-canvas")
    expect(canvas).to_have_attribute("data-painted", "64", timeout=30_000)
    expect(page.locator(".pj-mosaic-status")).to_contain_text("64 of 64 tiles validated")
    expect(page.locator("#pj-completed")).to_have_text("64")
    # The picture really is there: the centre pixel of the set is black, a corner is not.
    inside, outside = page.evaluate("""() => {
        const c = document.querySelector("canvas.pj-canvas").getContext("2d");
        return [Array.from(c.getImageData(330, 256, 1, 1).data),
                Array.from(c.getImageData(2, 2, 1, 1).data)];
    }""")
    assert inside[:3] == [0, 0, 0] and inside[3] == 255
    assert outside[:3] != [0, 0, 0]
    page.screenshot(path=str(screenshots_dir / "project-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshots_dir / "project-phone.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
