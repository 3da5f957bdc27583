"""Warm starts from Pyodide's memory snapshot (issue 18), in a real Chromium.

The first frame of a page that has no snapshot makes one right after loading Pyodide,
before it runs any task; the page keeps it (Cache Storage, with its SHA-256; before the
first result goes out) and the next
visit's frames restore it instead of initialising Python. These tests check that a second
visit starts from it, that a damaged or unloadable snapshot falls back to a normal start
(and is replaced), and that a snapshot carries no app's state into another app's task.
"""

import pytest
from playwright.sync_api import expect

from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.services import QuorumParams, batch_create
from sparecycles.scheduler.models import Replica
from tests.e2e.test_cross_app_isolation import owned_app
from tests.e2e.test_volunteer_page import wait_for_done, wait_until
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ONE = QuorumParams(min_quorum=1, target_nresults=1)
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "service_workers": "allow"}
READY = """() => {
  const found = performance.getEntriesByName("sparecycles:ready");
  return found.length ? found[0].detail : null;
}"""
KEPT = "() => performance.getEntriesByName('sparecycles:snapshot-kept').length > 0"
# The kept snapshot as the page stored it: its URL, size and the hash beside it.
SNAPSHOT = """async () => {
  const cache = await caches.open(window.sparecycles.config.runtimeCache);
  for (const request of await cache.keys()) {
    if (!request.url.includes("/memory-snapshot/")) continue;
    const response = await cache.match(request);
    const bytes = await response.arrayBuffer();
    return { url: request.url, size: bytes.byteLength,
             hash: response.headers.get("X-Snapshot-SHA256") };
  }
  return null;
}"""
# Damage the kept snapshot. "bytes": flip bytes in the middle of Python's memory, keep the
# old hash (a corrupted or tampered entry). "header": break the magic number and store the
# matching hash (an entry that passes the check but is no snapshot Pyodide can load).
DAMAGE = """async (how) => {
  const cache = await caches.open(window.sparecycles.config.runtimeCache);
  for (const request of await cache.keys()) {
    if (!request.url.includes("/memory-snapshot/")) continue;
    const response = await cache.match(request);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let hash = response.headers.get("X-Snapshot-SHA256");
    if (how === "bytes") {
      for (let i = 0; i < 4096; i++) bytes[(bytes.length >> 1) + i] ^= 0x5a;
    } else {
      bytes[0] ^= 0xff;
      const digest = await crypto.subtle.digest("SHA-256", bytes);
      hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    }
    await cache.put(request, new Response(bytes, { headers: { "X-Snapshot-SHA256": hash } }));
    return true;
  }
  return false;
}"""


@pytest.fixture
def visit(live_daphne, playwright, browser_type_launch_args, tmp_path):
    """Open the page in one browser profile (kept between visits), Start, wait for `results`,
    run `then(page)` and close the browser; returns the worker's start-up as the page saw it
    and whatever `then` returned."""
    profile = tmp_path / "profile"

    def run(results: int = 1, then=None):
        context = playwright.chromium.launch_persistent_context(
            str(profile), **browser_type_launch_args, **DESKTOP)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(f"{live_daphne.url}/")
            expect(page.get_by_role("button", name="Start")).to_be_enabled()
            page.locator("#set-workers").select_option("1")
            page.get_by_role("button", name="Start").click()
            wait_for_done(page, results)
            startup = wait_until(page, READY)
            return startup, (then(page) if then else None)
        finally:
            context.close()

    return run


def kept(page):
    wait_until(page, KEPT)
    return page.evaluate(SNAPSHOT)


def test_a_second_visit_starts_from_the_snapshot_the_first_one_made(visit):
    bundled_batch_create("mandelbrot", count=40, quorum=ONE)
    first, snapshot = visit(then=kept)
    assert first["fromSnapshot"] is False
    assert "snapshot" in first["timings"]
    assert snapshot["size"] > 1_000_000 and len(snapshot["hash"]) == 64

    prepared = "() => performance.getEntriesByName('sparecycles:prepared').length"
    second, before_start = visit(then=lambda page: page.evaluate(prepared))
    assert second["fromSnapshot"] is True
    assert "snapshot" not in second["timings"]
    assert before_start == 1   # runtime and snapshot were on the device: read before Start
    print(f"\nstart-up: first visit {first['timings']}, second visit {second['timings']} "
          f"(snapshot {snapshot['size'] / 1e6:.1f} MB)")


def test_a_visit_closed_right_after_its_first_result_leaves_its_snapshot(visit):
    """The page stores the snapshot before it lets the first result out (issue 18)."""
    bundled_batch_create("mandelbrot", count=40, quorum=ONE)
    first, _ = visit()   # closed at once after the first result
    assert first["fromSnapshot"] is False and "snapshot" in first["timings"]
    second, _ = visit()
    assert second["fromSnapshot"] is True


@pytest.mark.parametrize("how", ["bytes", "header"])
def test_a_damaged_snapshot_falls_back_to_a_normal_start_and_is_replaced(visit, how):
    bundled_batch_create("mandelbrot", count=40, quorum=ONE)
    _, before = visit(then=kept)
    _, damaged = visit(then=lambda page: page.evaluate(DAMAGE, how))
    assert damaged is True

    startup, after = visit(then=kept)
    assert startup["fromSnapshot"] is False   # and it still computed a result
    assert after["url"] == before["url"]   # a fresh one, kept where the damaged one was

    again, _ = visit()
    assert again["fromSnapshot"] is True


LEAVER = b'''import builtins, json, sys

def main(input):
    builtins.sparecycles_leak = "from the leaver"
    sys.modules["json"].leaked = True
    with open("/tmp/leak.txt", "w") as f:
        f.write("secret")
    return {"left": True}
'''
LOOKER = b'''import builtins, json, os

def main(input):
    return {"builtins": getattr(builtins, "sparecycles_leak", None),
            "json": getattr(json, "leaked", False),
            "file": os.path.exists("/tmp/leak.txt")}
'''


def test_a_snapshot_carries_no_apps_state_into_another_apps_task(visit):
    leaver = owned_app("owner-a", "leaver", LEAVER)
    looker = owned_app("owner-b", "looker", LOOKER)
    left = batch_create(app_version=leaver, name="leave", inputs=[{"n": 1}], quorum=ONE)
    first, snapshot = visit(then=kept)
    wait_for_completed(left, 1)
    assert first["fromSnapshot"] is False and snapshot is not None

    looked = batch_create(app_version=looker, name="look", inputs=[{"n": 1}], quorum=ONE)
    second, _ = visit()
    wait_for_completed(looked, 1)
    assert second["fromSnapshot"] is True
    output = Replica.objects.get(workunit__batch=looked).output
    assert output == {"builtins": None, "json": False, "file": False}


# Modules outside the stdlib's start-up core (web/split_stdlib.mjs): from the rest,
# which the worker mounts after start-up, and a submodule of a core package (encodings).
STDLIB_USER = b'''from fractions import Fraction
import decimal, statistics, encodings.cp1252

def main(input):
    return {"fraction": str(Fraction(1, 3) + Fraction(1, 6)),
            "decimal": str(decimal.Decimal("1.10") + decimal.Decimal("2.20")),
            "mean": statistics.mean([1, 2, 3, 4]),
            "cp1252": "\\u00e9".encode("cp1252").hex()}
'''
STDLIB_OUTPUT = {"fraction": "1/2", "decimal": "3.30", "mean": 2.5, "cp1252": "e9"}


def test_an_app_importing_stdlib_modules_outside_the_core_works_first_and_warm(visit):
    app = owned_app("owner-s", "stdlib-user", STDLIB_USER)
    cold = batch_create(app_version=app, name="cold", inputs=[{"n": 1}], quorum=ONE)
    first, snapshot = visit(then=kept)
    wait_for_completed(cold, 1)
    assert first["fromSnapshot"] is False and snapshot is not None
    assert "stdlib" in first["timings"]   # the rest was mounted
    assert Replica.objects.get(workunit__batch=cold).output == STDLIB_OUTPUT

    warm = batch_create(app_version=app, name="warm", inputs=[{"n": 2}], quorum=ONE)
    second, _ = visit()
    wait_for_completed(warm, 1)
    assert second["fromSnapshot"] is True and "stdlib" in second["timings"]
    assert Replica.objects.get(workunit__batch=warm).output == STDLIB_OUTPUT
