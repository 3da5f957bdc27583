"""Issue 18, the per-task path: a runtime keeps an app version's loaded module warm between
its tasks, and nothing of it reaches another app or version (docs/isolation.md, "Between
tasks").

The worker executes an app version's code once and keeps its entry function (and whether
it takes `progress`) between tasks; a short task sends no progress message at all. These
tests check the results stay right and accepted, that the warm module is the app's own
(a hostile app that plants a forged module for another app under the runner's cache keys
forges nothing, because another app never runs in its runtime), and that progress still
reaches the page and the server for a task long enough to show it.
"""

import json

import pytest
from playwright.sync_api import expect

from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.models import WorkUnit
from sparecycles.projects.services import QuorumParams, batch_create
from tests.e2e.test_cross_app_isolation import owned_app
from tests.e2e.test_volunteer_page import native_outputs, open_page, wait_for_done, wait_until
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ONE = QuorumParams(min_quorum=1, target_nresults=1)

# Counts how often its module is executed and what earlier tasks left in its globals.
WARM_CODE = b"""import sys

LOADS = sys.modules.setdefault("warm_loads", [])
LOADS.append(1)
SEEN = []

def main(input, progress=None):
    seen = list(SEEN)
    SEEN.append(input["n"])
    return {"n": input["n"], "loads": len(LOADS), "seen_before": seen}
"""

# Red team: on its task it leaves marks everywhere a later app could look, and plants a
# forged module for the victim app under the keys the worker's runner caches modules and
# entry functions by, hoping the victim's next task in this runtime runs the forgery.
PLANTER_CODE = b"""import builtins, json, os, sys
import __main__

def forged(input, progress=None):
    return {"n": input["n"], "sq": -1, "forged": True}

def main(input):
    builtins.planted = "planter was here"
    json.planted = "planter was here"
    os.environ["PLANTED"] = "planter was here"
    sys.modules["planted"] = sys
    with open("/tmp/planted", "w") as handle:
        handle.write("planter was here")
    ns = {"main": forged, "__name__": "sparecycles_app"}
    for version in range(1, 4):
        key = f"victim/{version}"
        getattr(__main__, "_namespaces", {})[key] = ns
        getattr(__main__, "_entries", {})[(key, "main")] = (forged, True)
    return {"planted": sorted(k for k in dir(__main__) if k.startswith("_")
                              and k in ("_namespaces", "_entries"))}
"""

VICTIM_CODE = b"""import builtins, json, os, sys

def main(input):
    marks = {
        "builtins": getattr(builtins, "planted", None),
        "json": getattr(json, "planted", None),
        "environ": os.environ.get("PLANTED"),
        "module": "planted" in sys.modules,
        "file": os.path.exists("/tmp/planted"),
    }
    return {"n": input["n"], "sq": input["n"] ** 2, "marks": marks}
"""

# Long enough to show progress (about 1.2 s), reporting it 40 times.
SLOW_CODE = b"""import time

def main(input, progress=None):
    for step in range(40):
        end = time.time() + 0.03
        while time.time() < end:
            pass
        if progress is not None:
            progress((step + 1) / 40)
    return {"n": input["n"]}
"""


def one_worker(page, server, sent: list) -> None:
    page.on("websocket", lambda ws: ws.on(
        "framesent", lambda payload: sent.append(json.loads(payload))))
    open_page(page, server)
    page.locator("#set-workers").select_option("1")


def test_an_apps_tasks_share_its_warm_module_and_results_stay_right(live_daphne, page):
    sent: list[dict] = []
    one_worker(page, live_daphne, sent)
    tiles = bundled_batch_create("mandelbrot", count=4, quorum=ONE)
    page.get_by_role("button", name="Start").click()
    wait_for_done(page, 4)
    wait_for_completed(tiles, 4)

    expected = native_outputs(tiles)
    for wu in WorkUnit.objects.filter(batch=tiles):
        assert wu.state == WorkUnit.State.COMPLETED
        assert wu.canonical_output == expected[wu.pk], f"tile {wu.seq} differs from CPython"
    # Short tasks send no progress: the first report would leave a quarter second in.
    assert [frame for frame in sent if frame["type"] == "progress"] == []

    warm = batch_create(app_version=owned_app("owner-w", "warm", WARM_CODE), name="warm",
                        inputs=[{"n": n} for n in range(3)], quorum=ONE)
    wait_for_done(page, 7)
    wait_for_completed(warm, 3)
    outputs = sorted((wu.canonical_output for wu in WorkUnit.objects.filter(batch=warm)),
                     key=lambda output: len(output["seen_before"]))
    # One runtime, the module executed once, its globals kept from task to task.
    assert [output["loads"] for output in outputs] == [1, 1, 1]
    assert [len(output["seen_before"]) for output in outputs] == [0, 1, 2]
    assert page.locator("#count-failed").text_content() == "0"


def test_nothing_of_one_app_reaches_the_next_apps_tasks(live_daphne, page):
    sent: list[dict] = []
    one_worker(page, live_daphne, sent)
    planter = batch_create(app_version=owned_app("owner-p", "planter", PLANTER_CODE),
                           name="plant", inputs=[{"stage": "plant"}], quorum=ONE)
    page.get_by_role("button", name="Start").click()
    wait_for_done(page, 1)
    wait_for_completed(planter, 1)
    # The plant took in its own runtime: the runner's caches are where it looked.
    assert WorkUnit.objects.get(batch=planter).canonical_output == {
        "planted": ["_entries", "_namespaces"]}

    victim = batch_create(app_version=owned_app("owner-v", "victim", VICTIM_CODE),
                          name="honest", inputs=[{"n": n} for n in (3, 4)], quorum=ONE)
    wait_for_done(page, 3)
    wait_for_completed(victim, 2)
    clean = {"builtins": None, "json": None, "environ": None, "module": False, "file": False}
    outputs = {wu.input["n"]: wu.canonical_output for wu in WorkUnit.objects.filter(batch=victim)}
    assert outputs == {3: {"n": 3, "sq": 9, "marks": clean}, 4: {"n": 4, "sq": 16, "marks": clean}}
    expect(page.locator("#activity")).to_contain_text("restarts for")


def test_progress_still_reaches_the_page_and_the_server(live_daphne, page):
    sent: list[dict] = []
    one_worker(page, live_daphne, sent)
    slow = batch_create(app_version=owned_app("owner-s", "slow", SLOW_CODE), name="slow",
                        inputs=[{"n": 1}], quorum=ONE)
    page.get_by_role("button", name="Start").click()
    # The page shows the app's progress while the task runs.
    wait_until(page, "() => Number(document.querySelector('#now-tasks progress')?.value) > 0")
    wait_for_done(page, 1)
    wait_for_completed(slow, 1)
    progress = [frame for frame in sent if frame["type"] == "progress"]
    assert len(progress) == 1 and 0 < progress[0]["fraction"] <= 1
