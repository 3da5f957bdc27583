"""Issue 19, the owners' and the site's side, in a real Chromium against a real daphne, on a
desktop and a phone viewport: what a person sees.

The project page's counters and the batch page's status change while volunteers compute,
without a reload (each asserts the document stayed the same); the batch page says in words
why it is stalled, that it is completed when it is, warns of the default workload and
hands out a CSV whose columns tell inputs from outputs; a failed upload keeps the other
fields; badge cards, the team credit note, new teams, the 404 page and the phone menu read
as intended. axe-core finds nothing serious or critical on each of these pages.
"""

import csv
import io
import time

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from sparecycles.credit.models import MICRO, TeamCredit, VolunteerCredit
from sparecycles.projects.catalogue import bundled_batch_create
from sparecycles.projects.models import App, Batch, Project, WorkUnit
from sparecycles.projects.services import (
    QuorumParams,
    app_version_create,
    batch_create,
    project_owner_add,
)
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Volunteer
from sparecycles.volunteers.services import team_create
from tests.e2e.test_accessibility import assert_no_blocking_violations, run_axe
from tests.waiting import wait_for_completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
COMPUTE_TIMEOUT_MS = 120_000
PASSWORD = "pw-owner-e2e-123"
ONE_REPLICA = QuorumParams(min_quorum=1, target_nresults=1)
# One input of three always fails: the batch stalls on it, then fails it.
PICKY = (b"def main(input):\n"
         b"    if input['n'] == 2:\n"
         b"        raise ValueError('n must not be 2')\n"
         b"    return {'n': input['n'], 'square': input['n'] ** 2}\n")


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    return request.param


@pytest.fixture
def person(browser: Browser, viewport):
    """The page of the person looking (an owner, a visitor), at the viewport's size."""
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    yield context.new_page()
    context.close()


def start_volunteer(browser: Browser, server):
    """Another browser presses Start on the volunteer page; returns its context."""
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.goto(f"{server.url}/")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    return context


def same_document(page: Page) -> None:
    page.evaluate("() => { window.__sameDocument = true; }")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"


def wait_for(condition, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def admin_login(page: Page, server, username: str) -> None:
    page.goto(f"{server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()


def owner_with_picky_app(name: str = "olga"):
    owner = get_user_model().objects.create_user(name, f"{name}@example.org", PASSWORD)
    project = Project.objects.create(slug="picky", title="Picky squares", is_public=True)
    project_owner_add(project=project, user=owner)
    app = App.objects.create(project=project, name="picky", title="Picky squares")
    return owner, app_version_create(app=app, code=PICKY)  # the default workload: warned


# --- the project page ------------------------------------------------------------------------

def test_project_page_counters_and_chart_follow_validation_live(live_daphne, browser, person,
                                                                viewport, screenshots_dir):
    batch = bundled_batch_create("mandelbrot", count=3, quorum=ONE_REPLICA)
    project = batch.app_version.app.project
    person.goto(f"{live_daphne.url}/projects/{project.slug}/")
    expect(person.locator("#pj-live")).to_have_attribute("data-state", "on")
    expect(person.locator("#pj-completed")).to_have_text("0")
    expect(person.locator("#pj-open")).to_have_text("3")
    expect(person.locator("#pj-top-body")).to_contain_text("Nobody yet")
    same_document(person)
    volunteer = start_volunteer(browser, live_daphne)
    try:
        expect(person.locator("#pj-completed")).to_have_text("3", timeout=COMPUTE_TIMEOUT_MS)
        expect(person.locator("#pj-open")).to_have_text("0")
    finally:
        volunteer.close()
    assert_not_reloaded(person)
    expect(person.locator(".pj-progress")).to_contain_text("100.0% validated")
    expect(person.locator("#pj-top-body .pj-table tbody tr")).to_have_count(1)
    expect(person.locator("#pj-chart-desc")).to_contain_text("3 of 3 work units validated")
    assert int(person.locator("#pj-live").get_attribute("data-updates")) >= 1
    assert person.evaluate("() => document.documentElement.scrollWidth "
                           "<= document.documentElement.clientWidth"), "wider than the screen"
    person.wait_for_timeout(1500)  # the mosaic's next poll paints the last tiles
    person.screenshot(path=str(screenshots_dir / f"project-page-{viewport}.png"),
                      full_page=viewport == "desktop")
    assert_no_blocking_violations(run_axe(person), f"project page ({viewport})")


# --- the batch page ----------------------------------------------------------------------------

def test_batch_page_explains_the_stall_live_then_reads_completed(live_daphne, browser, person,
                                                                 viewport, screenshots_dir,
                                                                 tmp_path):
    owner, version = owner_with_picky_app()
    batch = batch_create(app_version=version, name="three squares",
                         inputs=[{"n": 1}, {"n": 2}, {"n": 3}],
                         quorum=QuorumParams(min_quorum=1, target_nresults=1,
                                             max_error_results=2))
    admin_login(person, live_daphne, owner.username)
    person.goto(f"{live_daphne.url}/admin/projects/batch/{batch.pk}/change/")
    expect(person.locator("#batch-live")).to_have_attribute("data-state", "on")
    expect(person.locator("#batch-state")).to_have_text("Open")
    expect(person.locator("#batch-explanations")).to_contain_text(
        "3 work units wait for their first volunteer.")
    expect(person.locator(".batch-warning")).to_contain_text(
        "declares the default workload (1e9 operations per work unit)")
    same_document(person)

    # One volunteer: two squares validate, n=2 fails and must go to someone else.
    first = start_volunteer(browser, live_daphne)
    try:
        wait_for_completed(batch, 2)
        wait_for(lambda: Replica.objects.filter(workunit__batch=batch,
                                                outcome=Replica.Outcome.CLIENT_ERROR).exists(),
                 "the error report")
        explanations = person.locator("#batch-explanations")
        expect(explanations).to_contain_text(
            "1 work unit waits for a different volunteer: a copy of it ended in an error or "
            "timed out, and the retry must go to someone else.", timeout=30_000)
        expect(person.locator("#batch-counts")).to_have_text("2 of 3 completed, 0 failed")
        expect(person.locator(".batch-reasons")).to_contain_text("n must not be 2")
        assert_not_reloaded(person)
        person.screenshot(path=str(screenshots_dir / f"batch-stalled-{viewport}.png"),
                          full_page=True)
        assert_no_blocking_violations(run_axe(person), f"stalled batch page ({viewport})")
    finally:
        first.close()

    # A second volunteer fails it again: the batch is over, and says so.
    second = start_volunteer(browser, live_daphne)
    try:
        wait_for(lambda: WorkUnit.objects.filter(batch=batch, state="failed").exists(),
                 "the failed work unit")
        expect(person.locator("#batch-state")).to_have_text("Completed", timeout=30_000)
    finally:
        second.close()
    expect(person.locator("#batch-explanations")).to_contain_text(
        "Completed: 2 of 3 work units have a validated result; 1 failed: Too many errors")
    assert_not_reloaded(person)
    assert Batch.objects.get(pk=batch.pk).state == Batch.State.OPEN  # the owner's, untouched

    # The results download keeps inputs and outputs apart.
    with person.expect_download() as download:
        person.locator(".field-downloads a", has_text="CSV").click()
    target = tmp_path / "results.csv"
    download.value.save_as(target)
    table = list(csv.reader(io.StringIO(target.read_text())))
    assert table[0] == ["seq", "input.n", "output.n", "output.square", "revalidated"]
    assert table[1:] == [["1", "1", "1", "1", "false"], ["3", "3", "3", "9", "false"]]


def test_a_failed_upload_keeps_the_other_fields(live_daphne, person, viewport):
    owner, _ = owner_with_picky_app()
    admin_login(person, live_daphne, owner.username)
    person.goto(f"{live_daphne.url}/admin/projects/batch/add/")
    person.select_option("#id_app_version", label="picky v1")
    person.fill("#id_name", "first try")
    person.fill("#id_delay_bound", "900")
    person.set_input_files("#id_inputs_file", files=[
        {"name": "inputs.jsonl", "mimeType": "application/jsonl",
         "buffer": b'{"n": 1}\n{"n": \n[3]\n'}])
    person.locator("input[name=_save]").click()
    errors = person.locator(".field-inputs_file .errorlist")
    expect(errors).to_contain_text("Line 2: not valid JSON")
    expect(errors).to_contain_text("Line 3: each line must be a JSON object")
    expect(errors).to_contain_text("choose the corrected file again; the other fields are kept")
    expect(person.locator("#id_name")).to_have_value("first try")
    expect(person.locator("#id_delay_bound")).to_have_value("900")
    expect(person.locator("#id_app_version option:checked")).to_have_text("picky v1")
    assert not Batch.objects.exists()


# --- polish: badges, teams, 404, the phone menu --------------------------------------------------

def test_badges_and_team_credit_read_naturally(live_daphne, person, viewport):
    volunteer = Volunteer.objects.create(name="Ada")
    VolunteerCredit.objects.create(volunteer=volunteer, credit_micro=MICRO // 20)  # 0.05
    team = team_create(founder=volunteer, name="Night Owls")
    TeamCredit.objects.get_or_create(team=team)
    person.goto(f"{live_daphne.url}/volunteers/{volunteer.pk}/")
    card = person.locator(".badge", has_text="1,000 credit")
    expect(card).to_contain_text("Not earned yet: 0.050000 of 1,000 so far.")
    expect(card.locator("progress")).to_have_attribute("value", "0.05")
    expect(person.locator(".badges")).not_to_contain_text("Not yet: 1,000 credit earned.")
    assert_no_blocking_violations(run_axe(person), f"profile ({viewport})")

    person.goto(f"{live_daphne.url}/teams/{team.slug}/")
    expect(person.locator("#team-credit-note")).to_contain_text(
        "The team's credit counts only what members earned while in the team.")
    assert_no_blocking_violations(run_axe(person), f"team page ({viewport})")

    person.goto(f"{live_daphne.url}/leaderboards/teams/")
    expect(person.locator("#new-teams")).to_contain_text("Night Owls")
    expect(person.locator(".lb-new-teams")).to_contain_text(
        "A team's credit is what its members earn while in it")
    assert_no_blocking_violations(run_axe(person), f"team board ({viewport})")


def test_a_missing_page_is_a_page_of_the_site(live_daphne, person, viewport):
    response = person.goto(f"{live_daphne.url}/no/such/page/")
    assert response.status == 404
    expect(person.get_by_role("heading", level=1)).to_have_text("This page isn't here")
    expect(person.locator(".site-header .brand")).to_be_visible()
    expect(person.get_by_role("link", name="Go to the volunteer page")).to_be_visible()
    assert_no_blocking_violations(run_axe(person), f"404 page ({viewport})")


def box(page: Page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("width", [360, 390, 412])
def test_the_phone_menu_fits_on_one_line(live_daphne, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 780})
    page = context.new_page()
    try:
        page.goto(f"{live_daphne.url}/leaderboards/")
        toggle = page.get_by_role("button", name="Menu")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        brand, button = box(page, ".brand"), box(page, ".nav-toggle")
        # The name and the Menu button share one line, inside the screen.
        assert abs((brand["y"] + brand["height"] / 2) - (button["y"] + button["height"] / 2)) < 4
        assert button["x"] + button["width"] <= width and button["x"] > brand["x"] + brand["width"]
        assert box(page, ".site-header")["height"] < 70
        expect(page.get_by_role("navigation", name="Main")).to_be_hidden()

        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        links = page.get_by_role("navigation", name="Main").get_by_role("link")
        expect(links.first).to_be_visible()
        names = links.all_inner_texts()
        assert names[:4] == ["Volunteer", "Leaderboards", "Teams", "Ledger"]
        for i in range(links.count()):
            link = links.nth(i).bounding_box()
            assert link["x"] >= 0 and link["x"] + link["width"] <= width
        assert_no_blocking_violations(run_axe(page), f"open phone menu ({width} px)")
        page.keyboard.press("Escape")
        expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
        expect(toggle).to_be_focused()
    finally:
        context.close()


def test_the_desktop_menu_is_one_line_without_a_button(live_daphne, browser):
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    try:
        page.goto(f"{live_daphne.url}/leaderboards/")
        expect(page.locator(".nav-toggle")).to_be_hidden()
        tops = {round(page.locator(".nav a").nth(i).bounding_box()["y"])
                for i in range(page.locator(".nav a").count())}
        assert len(tops) == 1, f"the menu wraps: {tops}"
    finally:
        context.close()
