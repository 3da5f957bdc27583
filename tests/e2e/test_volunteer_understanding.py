"""Issue 19, the volunteer's side, in a real Chromium (desktop and phone): what the device
is doing in human terms with a progress bar that moves, earnings this visit and all time,
breaks, a daily schedule, battery hysteresis and Compute Pressure, settings that follow an
account, and a claim code before the first Start."""

import datetime as dt
import json
import os
import re
import threading
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from sparecycles.accounts.services import account_create
from sparecycles.projects.models import App, Project
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Device, Volunteer
from sparecycles.volunteers.services import device_connect
from tests.conftest import approved
from tests.e2e.test_accessibility import assert_no_blocking_violations, run_axe
from tests.e2e.test_pwa import BATTERY_SEAM, PHONE, open_settings
from tests.e2e.test_volunteer_page import COMPUTE_TIMEOUT_MS, open_page, wait_until
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
# The committed screenshots (docs/screenshots/, linked from the README) are rewritten only
# when asked (SPARECYCLES_DOCS_SCREENSHOTS=1): a test run never dirties the checkout.
DOCS_SCREENSHOTS = REPO / ("docs" if os.environ.get("SPARECYCLES_DOCS_SCREENSHOTS") == "1"
                           else "var") / "screenshots"
SETTINGS_KEY = "sparecycles.settings.v1"
TOKEN_KEY = "sparecycles.deviceToken"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "service_workers": "allow"}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
# Busy for input["seconds"], reporting progress twenty times: a task a person can watch.
SHEEP_CODE = b'''import time

def main(input, progress=None):
    seconds = input["seconds"]
    for step in range(20):
        end = time.time() + seconds / 20
        while time.time() < end:
            pass
        if progress is not None:
            progress((step + 1) / 20)
    return {"n": input["n"]}
'''
# A fake Compute Pressure API: the test decides the state.
PRESSURE_SEAM = """
(() => {
  const observers = [];
  window.__pressure = {
    set(state) {
      for (const callback of observers) callback([{ source: "cpu", state, time: Date.now() }]);
    },
  };
  window.PressureObserver = class {
    constructor(callback) { this.callback = callback; }
    async observe() { observers.push(this.callback); }
    disconnect() {}
  };
})();
"""


def sheep_batch(*, seconds: float = 4.0, count: int = 1):
    project = Project.objects.create(slug="sheep", title="Counting sheep",
                                     description="How many sheep does it take to fall asleep?")
    app = App.objects.create(project=project, name="sheep", title="Sheep counter",
                             description="Counts imaginary sheep, one fence at a time.")
    version = approved(app_version_create(app=app, code=SHEEP_CODE, flops_per_unit=432e9))
    return batch_create(app_version=version, name="sheep",
                        inputs=[{"n": i, "seconds": seconds} for i in range(count)],
                        quorum=QuorumParams(min_quorum=1, target_nresults=1,
                                            delay_bound=3600))


def real_now() -> dt.datetime:
    """The page's clock starts at the real time (to the second): the server's deadlines are
    real, and a task whose deadline the page's clock has passed is dropped unrun."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def hhmm(moment: dt.datetime) -> str:
    return moment.strftime("%H:%M")


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request):
    return request.param


@pytest.fixture
def context(browser, viewport):
    """A browser context at the viewport, in UTC, on mains power (the phone defaults
    compute only while charging)."""
    context = browser.new_context(**VIEWPORTS[viewport], timezone_id="UTC")
    context.add_init_script(BATTERY_SEAM)
    context.add_init_script("window.addEventListener('DOMContentLoaded', () => "
                            "window.__battery && window.__battery.set(true, 0.8));")
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


def status(page: Page):
    return page.locator("#status")


def credit_of(page: Page, counter: str) -> float:
    return float(page.locator(f"#count-{counter}").text_content().replace(",", ""))


def nothing_handed_out() -> bool:
    return not Replica.objects.filter(server_state="in_progress").exists()


def start(page: Page) -> None:
    page.get_by_role("button", name="Start").click()


def test_the_current_task_in_human_terms_with_progress_that_moves(live_daphne, page, viewport):
    batch = sheep_batch(seconds=6)
    sent: list[dict] = []
    page.on("websocket", lambda ws: ws.on(
        "framesent", lambda payload: sent.append(json.loads(payload))))
    open_page(page, live_daphne)
    expect(page.locator("#now-empty")).to_be_visible()
    start(page)

    task = page.locator("#now-tasks li")
    expect(task).to_have_count(1, timeout=COMPUTE_TIMEOUT_MS)
    expect(status(page)).to_have_text("Computing Sheep counter for Counting sheep")
    expect(task.get_by_role("link", name="Counting sheep")).to_have_attribute(
        "href", "/projects/sheep/")
    expect(task).to_contain_text("Counting sheep — Sheep counter")
    expect(task).to_contain_text("Counts imaginary sheep, one fence at a time.")
    expect(page.locator("#now-empty")).to_be_hidden()
    expect(task).to_contain_text("Running for 0:0")

    bar = task.get_by_role("progressbar", name="Progress of Sheep counter")
    expect(bar).to_be_visible(timeout=COMPUTE_TIMEOUT_MS)
    first = float(bar.get_attribute("value"))
    wait_until(page, "([v]) => Number(document.querySelector('#now-tasks progress').value) > v",
               [first + 0.2], timeout=20_000)
    expect(task).to_contain_text("% done")
    if viewport == "desktop":
        save_screenshot(page, "volunteer-mid-task-desktop.png")
    else:
        save_screenshot(page, "volunteer-mid-task-phone.png")
    assert_no_blocking_violations(run_axe(page), f"volunteer page mid-task ({viewport})")

    expect(page.locator("#count-done")).to_have_text("1", timeout=COMPUTE_TIMEOUT_MS)
    expect(page.locator("#now-tasks li")).to_have_count(0)
    expect(page.locator("#activity")).to_contain_text(
        "Finished a Sheep counter (Counting sheep) task in")
    progress = [frame for frame in sent if frame["type"] == "progress"]
    assert progress and all(0 < frame["fraction"] <= 1 for frame in progress)
    # Rate-limited: one frame per five seconds of a six-second task, not twenty.
    assert len(progress) <= 3
    wait_for_completed(batch, 1)


def test_earnings_this_visit_and_all_time_side_by_side(live_daphne, page, viewport):
    batch = sheep_batch(seconds=0.5, count=2)
    open_page(page, live_daphne)
    expect(page.locator("#count-visit-credit")).to_have_text("0.000000")
    start(page)
    expect(page.locator("#count-done")).to_have_text("2", timeout=COMPUTE_TIMEOUT_MS)
    wait_for_completed(batch, 2)
    # Two tasks of 432 GFLOP each: 1 credit each, six decimals always.
    expect(page.locator("#count-visit-credit")).to_have_text("2.000000", timeout=30_000)
    expect(page.locator("#count-credit")).to_have_text("2.000000")
    expect(page.locator("#count-valid")).to_have_text("2", timeout=30_000)
    expect(page.locator("#count-rank")).to_have_text("#1")
    expect(page.locator("#count-pending")).to_have_text("0.000000")
    tokens = page.locator("#tokens-line")
    expect(tokens).to_contain_text("Tokens: 0.000000 paid to you so far.")
    expect(tokens).to_contain_text("more estimated for reward epoch")
    expect(tokens).to_contain_text("paid when it closes at")
    expect(tokens.get_by_role("link", name="How the split works")).to_have_attribute(
        "href", "/ledger/#policy-title")
    estimated = float(tokens.text_content().split("About ")[1].split(" ")[0].replace(",", ""))
    assert estimated > 0   # alone in the epoch: the whole emission so far

    # A new visit: this visit starts at zero, all time keeps what was earned.
    page.reload()
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    expect(page.locator("#count-credit")).to_have_text("2.000000", timeout=30_000)
    expect(page.locator("#count-done")).to_have_text("0")
    expect(page.locator("#count-visit-credit")).to_have_text("0.000000")
    expect(page.locator("#count-valid")).to_have_text("2")


def test_a_break_holds_work_until_it_ends_and_is_remembered(live_daphne, page):
    sheep_batch(seconds=0.2)
    now = real_now()
    page.clock.install(time=now)
    open_page(page, live_daphne)
    page.get_by_role("button", name="1 hour").click()
    start(page)
    until = hhmm(page_time(page) + dt.timedelta(hours=1))
    expect(status(page)).to_have_text(f"Waiting — you paused computing until {until}")
    expect(page.get_by_role("button", name=f"Resume now (paused until {until})")).to_be_visible()
    page.wait_for_timeout(1000)
    assert nothing_handed_out(), "asked for work during a break"
    # Remembered in this browser: a reload is still on a break.
    page.reload()
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    stored = page.evaluate(f"() => JSON.parse(localStorage.getItem('{SETTINGS_KEY}'))")
    hour_later = (now + dt.timedelta(hours=1)).timestamp() * 1000
    assert hour_later <= stored["pauseUntil"] < hour_later + 120_000   # an hour after the click
    start(page)
    expect(status(page)).to_have_text(f"Waiting — you paused computing until {until}")
    page.get_by_role("button", name="Until tomorrow").click()
    expect(status(page)).to_have_text("Waiting — you paused computing until 00:00")
    page.get_by_role("button", name="Resume now (paused until 00:00)").click()
    expect(page.locator("#count-done")).to_have_text("1", timeout=COMPUTE_TIMEOUT_MS)


def page_time(page: Page) -> dt.datetime:
    return dt.datetime.fromtimestamp(page.evaluate("() => Date.now()") / 1000, dt.UTC)


def advance(page: Page, minutes: float) -> None:
    """Move the page's clock on in half-minute steps, so the socket's heartbeat keeps up."""
    for _ in range(round(minutes * 2)):
        page.clock.fast_forward(30_000)
        page.wait_for_timeout(150)


def advance_until_not(page: Page, text: str, *, minutes: float) -> None:
    """Move the page's clock on until the status no longer says `text`, and no further: a
    clock racing on while the runtime loads would fire the page's load timeout."""
    for _ in range(round(minutes * 2)):
        page.clock.fast_forward(30_000)
        page.wait_for_timeout(300)
        if text not in status(page).text_content():
            break
    expect(status(page)).not_to_contain_text(text)


def test_the_daily_schedule_holds_work_outside_its_window(live_daphne, page, viewport):
    sheep_batch(seconds=0.2)
    page.clock.install(time=real_now())
    open_page(page, live_daphne)
    # A window that opens in two minutes and lasts six hours.
    begin = hhmm(page_time(page) + dt.timedelta(minutes=2))
    end = hhmm(page_time(page) + dt.timedelta(hours=6))
    open_settings(page)
    page.get_by_label("Compute only at these times").check()
    page.get_by_label("From").fill(begin)
    page.get_by_label("to", exact=True).fill(end)
    expect(page.locator("#settings-summary")).to_contain_text(f"daily {begin}–{end}")
    start(page)
    expect(status(page)).to_have_text(
        f"Waiting — your daily schedule computes from {begin} to {end}")
    page.wait_for_timeout(1000)
    assert nothing_handed_out(), "asked for work outside the schedule"
    advance_until_not(page, "daily schedule", minutes=4)
    expect(page.locator("#count-done")).to_have_text("1", timeout=COMPUTE_TIMEOUT_MS)
    stored = page.evaluate(f"() => JSON.parse(localStorage.getItem('{SETTINGS_KEY}'))")
    assert (stored["scheduleOn"], stored["scheduleFrom"], stored["scheduleTo"]) == (
        True, begin, end)


def test_battery_hysteresis_holds_until_the_charge_stays_up_or_is_plugged_in(
        live_daphne, page, viewport):
    # One task now and one for the second half: with two queued, the page may finish both
    # before "1 done" is seen.
    first = sheep_batch(seconds=0.2, count=1)
    page.clock.install(time=real_now())
    open_page(page, live_daphne)
    open_settings(page)
    page.locator("#set-workers").select_option("1")   # one task at a time
    page.get_by_label("Compute only while charging").uncheck()
    page.locator("#set-battery").fill("20")
    page.locator("#set-battery-hold").fill("10")
    expect(page.locator("#set-battery-hold-value")).to_have_text("10 min")
    page.evaluate("() => window.__battery.set(false, 0.15)")
    start(page)
    expect(status(page)).to_have_text("Waiting — the battery is at 15%, below your 20% limit")

    # Back above the limit: it holds for ten minutes rather than flapping.
    page.evaluate("() => window.__battery.set(false, 0.21)")
    resume = page_time(page) + dt.timedelta(minutes=10)
    expect(status(page)).to_have_text(re.compile(
        "Waiting — the battery is back above 20%; computing resumes at "
        f"({hhmm(resume)}|{hhmm(resume + dt.timedelta(minutes=1))}), or at once when plugged in"))
    advance(page, 5)
    expect(status(page)).to_contain_text("the battery is back above 20%")
    assert nothing_handed_out(), "computed during the hold"
    advance_until_not(page, "the battery is back above", minutes=6)
    expect(page.locator("#count-done")).to_have_text("1", timeout=COMPUTE_TIMEOUT_MS)

    # Low again, then plugged in: no wait at all.
    page.get_by_role("button", name="Pause").click()
    batch_create(app_version=first.app_version, name="sheep 2",
                 inputs=[{"n": 1, "seconds": 0.2}],
                 quorum=QuorumParams(min_quorum=1, target_nresults=1, delay_bound=3600))
    page.evaluate("() => window.__battery.set(false, 0.1)")
    start(page)
    expect(status(page)).to_have_text("Waiting — the battery is at 10%, below your 20% limit")
    page.evaluate("() => window.__battery.set(false, 0.2)")
    expect(status(page)).to_contain_text("the battery is back above 20%")
    page.evaluate("() => window.__battery.set(true, 0.2)")
    expect(page.locator("#count-done")).to_have_text("2", timeout=COMPUTE_TIMEOUT_MS)


def test_compute_pressure_throttles_where_the_browser_reports_it(live_daphne, context, viewport):
    sheep_batch(seconds=60)
    context.add_init_script(PRESSURE_SEAM)
    page = context.new_page()
    open_page(page, live_daphne)
    open_settings(page)
    expect(page.locator("#pressure-support")).to_contain_text("20% under critical pressure")
    page.get_by_label("Slow down when the processor is under pressure").check()
    start(page)
    expect(page.locator("#now-tasks li")).to_have_count(1, timeout=COMPUTE_TIMEOUT_MS)
    load = page.locator("#load-line")
    expect(load).to_contain_text("at up to 100% CPU;")
    page.evaluate("() => window.__pressure.set('critical')")
    expect(load).to_contain_text(
        "at up to 20% CPU (lowered: the processor reports critical pressure)")
    page.evaluate("() => window.__pressure.set('serious')")
    expect(load).to_contain_text("at up to 50% CPU (lowered: the processor reports serious")
    page.evaluate("() => window.__pressure.set('nominal')")
    expect(load).to_contain_text("at up to 100% CPU;")


def test_without_compute_pressure_the_page_says_so(live_daphne, context):
    context.add_init_script("delete window.PressureObserver;")
    page = context.new_page()
    open_page(page, live_daphne)
    open_settings(page)
    expect(page.locator("#pressure-support")).to_contain_text("has no Compute Pressure API")
    expect(page.get_by_label("Slow down when the processor is under pressure")).to_be_disabled()


def test_a_claim_code_before_the_first_start_creates_the_device(live_daphne, page, viewport):
    sheep_batch(seconds=0.2)
    open_page(page, live_daphne)
    assert page.evaluate(f"() => localStorage.getItem('{TOKEN_KEY}')") is None
    page.get_by_role("button", name="Show a claim code").click()
    output = page.locator("[data-claim-code-output]")
    expect(output).to_contain_text("Your code: ")
    code = output.locator(".claim-code-value").text_content()
    assert len(code) == 9 and code[4] == "-"
    device = Device.objects.get()
    expect(page.locator("#device-id")).to_have_text(device.public_id)
    token = page.evaluate(f"() => localStorage.getItem('{TOKEN_KEY}')")
    assert device.token_hash == Device.hash_token(token)
    # Start speaks for that device: no second one.
    start(page)
    expect(page.locator("#count-done")).to_have_text("1", timeout=COMPUTE_TIMEOUT_MS)
    assert Device.objects.count() == 1 and Volunteer.objects.count() == 1
    assert Replica.objects.get().device_id == device.pk


def log_in(context, live_daphne, username: str) -> Volunteer:
    volunteer = Volunteer.objects.filter(user__username=username).first() or account_create(
        username=username, password="pass-phrase-123456")
    client = Client()
    client.force_login(volunteer.user)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                          "url": live_daphne.url}])
    return volunteer


def test_settings_follow_a_logged_in_volunteer_to_a_new_browser(live_daphne, browser, viewport):
    first = browser.new_context(**VIEWPORTS[viewport], timezone_id="UTC")
    second = browser.new_context(**VIEWPORTS[viewport], timezone_id="UTC")
    try:
        volunteer = log_in(first, live_daphne, "walker")
        page = first.new_page()
        open_page(page, live_daphne)
        open_settings(page)
        expect(page.locator("#settings-sync")).to_have_text(
            "Also kept with your account, for your other browsers.")
        page.get_by_label("Compute only at these times").check()
        page.get_by_label("From").fill("23:15")
        page.locator("#set-duty").fill("40")
        wait_until(page, "() => true", timeout=1000)

        def stored():
            volunteer.refresh_from_db()
            return volunteer.compute_settings

        for _ in range(50):
            if stored().get("scheduleFrom") == "23:15" and stored().get("duty") == 40:
                break
            page.wait_for_timeout(200)
        assert stored()["scheduleOn"] is True and stored()["duty"] == 40

        log_in(second, live_daphne, "walker")
        other = second.new_page()
        open_page(other, live_daphne)
        open_settings(other)
        expect(other.get_by_label("Compute only at these times")).to_be_checked()
        expect(other.get_by_label("From")).to_have_value("23:15")
        expect(other.locator("#set-duty-value")).to_have_text("40%")
        expect(other.locator("#activity")).to_contain_text(
            "Applied the settings kept with your account.")
    finally:
        first.close()
        second.close()


def test_dashboard_screenshots(live_daphne, browser, viewport):
    """The dashboard a volunteer reaches from the page (linked in the README)."""
    context = browser.new_context(**VIEWPORTS[viewport], timezone_id="UTC")
    try:
        volunteer = log_in(context, live_daphne, "dashboard-volunteer")
        sheep_batch(seconds=0.1, count=3)

        def compute_two():
            # In a thread of its own: validation pushes socket events, which may not run
            # in the thread of Playwright's event loop.
            device = device_connect(token=None, user=volunteer.user,
                                    capabilities={"runtimes": ["pyodide"]}).device
            for replica in tasks_dispatch(device=device, slots=2).replicas:
                replica_report(device=device, task_id=replica.task_id, ok=True,
                               output={"n": replica.workunit.input["n"]}, elapsed_ms=3000)

        worker = threading.Thread(target=compute_two)
        worker.start()
        worker.join()
        page = context.new_page()
        page.goto(f"{live_daphne.url}/me/")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        save_screenshot(page, f"dashboard-{viewport}.png", full_page=viewport == "desktop")
    finally:
        context.close()


def save_screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """docs/screenshots/<name> when asked, else var/screenshots/: PNG, kept small."""
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_SCREENSHOTS / name), full_page=full_page)
