"""Live leaderboards, accounts and the dashboard in a real Chromium against a real daphne.

Two browser contexts are two volunteers' browsers. A computes, then watches the
volunteers board while B computes: B's row appears and climbs past A without A's
page reloading. Then A signs up (claiming its browser), claims B's device by the code
B shows, and every page fits a phone screen.
"""

import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from sparecycles.credit.models import MICRO, TeamCredit, VolunteerCredit
from sparecycles.credit.selectors import volunteer_credit_micro
from sparecycles.credit.templatetags.credit_format import format_credit
from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.services import QuorumParams
from sparecycles.volunteers.models import Device, Volunteer
from sparecycles.volunteers.services import team_create
from tests.conftest import approved
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ONE_REPLICA = QuorumParams(min_quorum=1, target_nresults=1)
COMPUTE_TIMEOUT_MS = 120_000   # Pyodide cold start is 3-5 s; leave room for a slow CI box
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
TOKEN_KEY = "sparecycles.deviceToken"


def wait_until(page: Page, expression: str, arg=None, timeout: int = COMPUTE_TIMEOUT_MS):
    """Poll a JS function until it returns something truthy (page.wait_for_function would
    eval() inside the page, which our CSP forbids; page.evaluate is not subject to it)."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} ms waiting for {expression}")
        page.wait_for_timeout(100)


def start_computing(page: Page, server) -> None:
    page.goto(f"{server.url}/")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()


def wait_for_done(page: Page, at_least: int) -> None:
    wait_until(page, "(n) => Number(document.getElementById('count-done').textContent) >= n",
               at_least)


def volunteer_of(page: Page) -> int:
    """The volunteer behind the device token this browser holds."""
    token = wait_until(page, f"() => localStorage.getItem('{TOKEN_KEY}')", timeout=30_000)
    return Device.objects.get(token_hash=Device.hash_token(token)).volunteer_id


def fits_width(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth "
                         "<= document.documentElement.clientWidth")


@pytest.fixture
def two_browsers(browser: Browser):
    a = browser.new_context(viewport=DESKTOP)
    b = browser.new_context(viewport=DESKTOP)
    yield a, b
    a.close()
    b.close()


def test_a_board_sees_another_volunteer_climb_without_reloading(live_daphne, two_browsers,
                                                                 screenshots_dir):
    context_a, context_b = two_browsers
    first = bundled_batch_create("mandelbrot", count=2, quorum=ONE_REPLICA)
    # Every tile earns the same declared credit (approved), so three tiles beat two
    # whatever the browser's timings (measured credit would vary with them).
    approved(first.app_version)
    volunteer_a = context_a.new_page()
    start_computing(volunteer_a, live_daphne)
    wait_for_done(volunteer_a, 2)
    volunteer_a.get_by_role("button", name="Pause").click()
    a_id = volunteer_of(volunteer_a)

    board = context_a.new_page()
    board.goto(f"{live_daphne.url}/leaderboards/volunteers/")
    expect(board.locator("#lb-live")).to_have_attribute("data-state", "on")
    # claim.js told the session whose device this browser holds: A's own row is marked.
    expect(board.locator("tr.is-you")).to_have_attribute("id", f"row-{a_id}")
    expect(board.locator("#lb-you")).to_contain_text("You are #1 of 1")
    board.evaluate("() => { window.__sameDocument = true; }")

    # One tile first, then two more: B's results may be validated together (validation
    # gathers briefly), so B's climb is paced by the work there is, not by timing.
    bundled_batch_create("mandelbrot", count=1, quorum=ONE_REPLICA)
    volunteer_b = context_b.new_page()
    start_computing(volunteer_b, live_daphne)
    b_id = volunteer_of(volunteer_b)
    row_b = board.locator(f"#row-{b_id}")
    # B's first result puts B on the board behind A...
    expect(row_b.locator(".col-rank")).to_have_text("2", timeout=COMPUTE_TIMEOUT_MS)
    expect(row_b).not_to_have_class("is-you")
    bundled_batch_create("mandelbrot", count=2, quorum=ONE_REPLICA)
    # ...and B's third overtakes A's two: B is first, A second, announced to A.
    expect(row_b.locator(".col-rank")).to_have_text("1", timeout=COMPUTE_TIMEOUT_MS)
    expect(board.locator(f"#row-{a_id} .col-rank")).to_have_text("2")
    expect(board.locator("#lb-you")).to_contain_text("You are #2 of 2")
    expect(board.locator("#lb-announce")).to_have_text("You are now number 2.")
    assert board.evaluate("() => window.__sameDocument === true"), "the board reloaded"
    assert int(board.locator("#board").get_attribute("data-updates")) >= 2
    credit_b = VolunteerCredit.objects.get(pk=b_id).credit_micro / MICRO
    expect(row_b.locator("td.num").first).to_have_text(format_credit(credit_b))
    board.screenshot(path=str(screenshots_dir / "leaderboard-live-desktop.png"), full_page=True)


def test_accounts_claims_and_phone_layouts(live_daphne, two_browsers, screenshots_dir):
    context_a, context_b = two_browsers
    for i in range(60):   # enough rows for a second page, and names that wrap
        VolunteerCredit.objects.create(
            volunteer=Volunteer.objects.create(
                name=f"Volunteer with a rather long display name {i}"),
            credit_micro=(i + 1) * 3 * MICRO, rac=i + 1.0, rac_time=time.time(),
            rac_key=float(i))
    team = team_create(founder=Volunteer.objects.first(), name="The Extraordinarily "
                       "Long-Named Mandelbrot Enthusiasts of the Northern Hemisphere",
                       description="We compute tiles.\n\nAnd we talk about them.")
    TeamCredit.objects.create(team=team, credit_micro=42 * MICRO, rac=3.0,
                              rac_time=time.time(), rac_key=1.0)

    # B computes anonymously and shows a claim code.
    batch_b = bundled_batch_create("mandelbrot", count=1, quorum=ONE_REPLICA)
    volunteer_b = context_b.new_page()
    start_computing(volunteer_b, live_daphne)
    wait_for_done(volunteer_b, 1)
    wait_for_completed(batch_b, 1)   # credited: validation follows the ack
    volunteer_b.get_by_role("button", name="Pause").click()
    b_device = Device.objects.get(pk=volunteer_b.locator("#device-id").text_content()[1:])
    volunteer_b.get_by_role("button", name="Show a claim code").click()
    code = volunteer_b.locator(".claim-code-value")
    expect(code).to_have_text(re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}$"))
    volunteer_b.set_viewport_size(PHONE)
    volunteer_b.screenshot(path=str(screenshots_dir / "volunteer-claim-code-phone.png"),
                           full_page=True)

    # A computes, then signs up: the sign-up form offers to bring this browser's credit.
    batch_a = bundled_batch_create("mandelbrot", count=1, seed=1, quorum=ONE_REPLICA)
    volunteer_a = context_a.new_page()
    start_computing(volunteer_a, live_daphne)
    wait_for_done(volunteer_a, 1)
    wait_for_completed(batch_a, 1)
    volunteer_a.get_by_role("button", name="Pause").click()
    page = context_a.new_page()
    page.set_viewport_size(PHONE)
    page.goto(f"{live_daphne.url}/accounts/signup/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password", exact=True).fill("correct-horse-battery-staple")
    page.get_by_label("Password confirmation").fill("correct-horse-battery-staple")
    expect(page.get_by_label("Add this browser’s device")).to_be_checked()
    page.screenshot(path=str(screenshots_dir / "signup-phone.png"), full_page=True)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{live_daphne.url}/me/")
    expect(page.locator(".notices")).to_contain_text("its credit are now part of your account")
    expect(page.locator("[data-claim-result]")).to_contain_text(
        "This browser is one of your devices")
    expect(page.get_by_role("button", name="Claim this browser")).to_be_hidden()
    ada = Volunteer.objects.get(user__username="ada")
    assert volunteer_credit_micro(volunteer_id=ada.pk) > 0 and ada.devices.count() == 1

    # ...and claims B's device by its code; B's credit comes along.
    before = volunteer_credit_micro(volunteer_id=ada.pk)
    page.get_by_label("Claim code").fill(code.text_content())
    page.get_by_role("button", name="Claim by code").click()
    expect(page.locator(".notices")).to_contain_text("are now part of your account")
    expect(page.locator(".device-row")).to_have_count(2)
    ada.refresh_from_db()
    assert Device.objects.get(pk=b_device.pk).volunteer_id == ada.pk
    assert volunteer_credit_micro(volunteer_id=ada.pk) > before

    pages = {
        "dashboard": "/me/",
        "leaderboard-volunteers": "/leaderboards/volunteers/",
        "leaderboard-volunteers-rac": "/leaderboards/volunteers/?order=rac&page=2",
        "leaderboard-teams": "/leaderboards/teams/",
        "leaderboard-projects": "/leaderboards/projects/",
        "leaderboard-project": "/leaderboards/projects/spare-cycles-demo/",
        "teams": "/teams/",
        "team": f"/teams/{team.slug}/",
        "profile": f"/volunteers/{ada.pk}/",
        "account": "/me/account/",
        "stats": "/stats/",
    }
    for viewport_name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        for name, path in pages.items():
            response = page.goto(f"{live_daphne.url}{path}")
            assert response.status == 200, path
            if viewport_name == "phone":
                assert fits_width(page), f"{path} scrolls sideways at {viewport['width']} px"
            page.screenshot(path=str(screenshots_dir / f"{name}-{viewport_name}.png"),
                            full_page=True)
            if viewport_name == "phone":  # the first screen, as a phone shows it
                page.screenshot(path=str(screenshots_dir / f"{name}-{viewport_name}-top.png"))
    page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/me/", "/leaderboards/volunteers/", "/teams/"):
        page.goto(f"{live_daphne.url}{path}")
        assert fits_width(page), f"{path} scrolls sideways at 360 px"

    # The dashboard's numbers are the volunteer's own.
    page.goto(f"{live_daphne.url}/me/")
    expect(page.locator(".tile").first).to_contain_text(format_credit(
        volunteer_credit_micro(volunteer_id=ada.pk) / MICRO))
    expect(page.locator("svg.chart")).to_be_visible()
    expect(page.get_by_role("heading", name="Your devices")).to_be_visible()
