"""A hostile app in a real Chromium (issue 14): owners' code must reach nothing but its
input and its output.

The app (tests/e2e/hostile/main.py) runs for a logged-in volunteer and tries every escape:
the worker's real global scope (setTimeout + capture_this), fetch / XHR / sendBeacon /
pyodide.http.pyfetch with the volunteer's cookies, a CSRF post that renames the volunteer,
a volunteer WebSocket of its own (a new device, forged results), importScripts, eval, a
nested worker, IndexedDB, Cache Storage, localStorage, popups, navigation, and messages to
the page that pretend to be results for another device's task or a runtime out of turn.
It also patches json.dumps to forge the outputs of other owners' apps that might run later
in its runtime. A second task of the same app reports what worked; the server's rows say
the rest.

On the code before the compute frame (a worker on the site's origin) the fetches read the
account page, the CSRF post renames the volunteer, and the socket adds a device: this test
fails there.
"""

import json

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect
from websockets.sync.client import connect

from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.models import App, Project
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Device
from sparecycles.volunteers.services import volunteer_for_user
from tests.e2e.test_volunteer_page import ONE_REPLICA, wait_for_done, wait_until
from tests.live_server import REPO
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HOSTILE_CODE = (REPO / "tests" / "e2e" / "hostile" / "main.py").read_bytes()
PASSWORD = "pw-vera-12345"
MAX_OUTPUT_BYTES = 64 * 1024   # a Mandelbrot tile is ~8 KiB
# Attacks whose answer comes later: they must have been answered before the report.
ASYNC = ["fetch /me/account/", "fetch /api/v1/apps/", "csrf post without a token",
         "websocket", "pyodide.http.pyfetch", "EventSource", "caches.open"]


def hostile_batch(version, inputs):
    return batch_create(app_version=version, name="hostile", inputs=inputs,
                        quorum=QuorumParams(min_quorum=1, target_nresults=1))


def victim_task(server) -> tuple[str, object]:
    """Another volunteer's device takes a task and keeps it: the app will claim it."""
    batch = hostile_batch(victim_task.version, [{"stage": "victim"}])
    ws = connect(server.ws_url, legacy=True)
    ws.send(json.dumps({"type": "hello", "protocol": 1, "device_token": None,
                        "client": {"name": "victim", "version": "1"},
                        "capabilities": {"runtimes": ["pyodide"], "cores": 1,
                                         "memory_mb": 512, "mobile": False}}))
    assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
    ws.send(json.dumps({"type": "request", "slots": 1}))
    [task] = json.loads(ws.recv(timeout=10))["tasks"]
    assert Replica.objects.get(task_id=task["task_id"]).workunit.batch == batch
    return task["task_id"], ws


@pytest.fixture
def server(live_server_factory):
    return live_server_factory(env={"SPARECYCLES_RETRY_AFTER_S": "1",
                                    "SPARECYCLES_MAX_OUTPUT_BYTES": str(MAX_OUTPUT_BYTES)})


def test_a_hostile_app_reaches_nothing_and_honest_work_goes_on(server, page):
    user = get_user_model().objects.create_user("vera", password=PASSWORD)
    volunteer = volunteer_for_user(user=user)
    volunteer.name = "Vera"
    volunteer.save(update_fields=["name"])
    # Vera owns a project too: the API must not hand its apps to code in her browser.
    mine = Project.objects.create(slug="veras", title="Vera's project")
    mine.owners.add(user)
    project = Project.objects.create(slug="hostile", title="Hostile")
    app = App.objects.create(project=project, name="hostile", title="Tries everything")
    version = app_version_create(app=app, code=HOSTILE_CODE)
    victim_task.version = version
    victim_id, victim_socket = victim_task(server)

    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", "vera")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{server.url}/")
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.locator("#set-workers").select_option("1")   # one worker: one namespace for the report

    given = {"base": server.url, "ws_url": server.ws_url, "victim_task": victim_id}
    attack = hostile_batch(version, [{"stage": "attack", **given}])
    page.get_by_role("button", name="Start").click()
    wait_for_done(page, 1)
    wait_for_completed(attack, 1)
    device = Device.objects.get(pk=int(page.evaluate(
        "() => window.sparecycles.client.deviceId").removeprefix("d")))
    assert device.volunteer_id == volunteer.pk   # the page's device is Vera's

    # Let the asynchronous attempts be answered (the worker idles between tasks), then ask.
    page.wait_for_timeout(4_000)
    report = hostile_batch(version, [{"stage": "report", **given}])
    wait_for_completed(report, 1)
    results = Replica.objects.get(workunit__batch=report).output["results"]
    print("\n" + "\n".join(f"  {name}: {outcome}" for name, outcome in sorted(results.items())))

    # The escape into the worker's global scope still happens; from there nothing works.
    assert results.pop("reach the global scope").startswith("ok")
    for name in ASYNC:
        assert name in results, f"{name} was never tried"
    succeeded = {name: outcome for name, outcome in results.items()
                 if not outcome.startswith("blocked") and not name.startswith("info: ")}
    assert succeeded == {}

    # The page drops what the frame posts about other tasks; too much output is an error.
    big = hostile_batch(version, [{"stage": "big", "bytes": MAX_OUTPUT_BYTES * 2}])
    wait_for_counter_failed(page)
    replica = Replica.objects.filter(workunit__batch=big).exclude(received_at=None).first()
    assert replica.outcome == Replica.Outcome.CLIENT_ERROR
    assert "output too large" in replica.error_message

    # Honest work goes on in the same page, in a runtime of its own: the hostile app patched
    # json.dumps in its runtime to forge Mandelbrot outputs.
    honest = bundled_batch_create("mandelbrot", count=2, quorum=ONE_REPLICA)
    wait_for_completed(honest, 2)
    expect(page.locator("#alert")).to_be_empty()
    for replica in Replica.objects.filter(workunit__batch=honest).exclude(received_at=None):
        assert "forged" not in replica.output and len(replica.output["iterations"]) == 64

    volunteer.refresh_from_db()
    assert volunteer.name == "Vera"
    assert list(Device.objects.filter(volunteer=volunteer)) == [device]
    assert Device.objects.count() == 2                       # the page's and the victim's
    victim = Replica.objects.get(task_id=victim_id)
    assert victim.received_at is None and victim.output is None
    assert not Replica.objects.filter(output__forged=True).exists()
    assert set(Replica.objects.exclude(received_at=None).values_list("device", flat=True)) == {
        device.pk}
    # Still logged in, and the page never showed what the frame sent as text.
    account = page.evaluate("() => fetch('/me/account/').then(r => r.url)")
    assert account.endswith("/me/account/")
    expect(page.locator("#runtime-info")).not_to_contain_text("<img")
    expect(page.locator("#runtime-info")).to_contain_text("Python 3.")
    victim_socket.close()


def wait_for_counter_failed(page):
    wait_until(page, "() => Number(document.getElementById('count-failed').textContent) >= 1")
