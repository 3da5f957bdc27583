"""Accessibility and phone layout: axe-core (from npm, run in the page, offline) on the
volunteer, offline, dashboard and leaderboard pages in light and dark mode; keyboard
use of the volunteer page; and screenshots at 360x740, 390x844 and desktop."""

from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from sparecycles.accounts.services import account_create
from tests.e2e.test_pwa import BATTERY_SEAM, PHONE, open_settings
from tests.e2e.test_volunteer_page import open_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
PAGES = {
    "volunteer": "/",
    "offline": "/offline/",
    "dashboard": "/me/",
    "leaderboard": "/leaderboards/volunteers/",
}
BLOCKING = ("serious", "critical")


def run_axe(page: Page) -> list[dict]:
    """axe's violations on the page as it is now: [{id, impact, help, nodes}]."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (axe-core is a devDependency).",
                    pytrace=False)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Through the debugger protocol, so the page's CSP (no inline script) still holds.
        page.evaluate(AXE.read_text())
    return page.evaluate("""() => axe.run(document, { resultTypes: ["violations"] })
        .then(result => result.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " +
                (n.failureSummary || "").split("\\n").slice(1).join(" ")),
        })))""")


def assert_no_blocking_violations(violations: list[dict], where: str) -> None:
    print(f"\naxe on {where}: " + (", ".join(f"{v['impact']} {v['id']}" for v in violations)
                                   or "no violations"))
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    report = "\n".join(f"- {v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"])
                       for v in blocking)
    assert not blocking, f"axe found on {where}:\n{report}"


def log_in(context, live_daphne) -> None:
    """A volunteer account with a session cookie in the browser."""
    volunteer = account_create(username="axe-volunteer", password="axe-pass-123456")
    client = Client()
    client.force_login(volunteer.user)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                          "url": live_daphne.url}])


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_or_critical_accessibility_violations(live_daphne, browser, name, scheme):
    context = browser.new_context(**PHONE, color_scheme=scheme)
    try:
        context.add_init_script(BATTERY_SEAM)
        if name == "dashboard":
            log_in(context, live_daphne)
        page = context.new_page()
        response = page.goto(f"{live_daphne.url}{PAGES[name]}")
        if response.status == 404:
            pytest.skip(f"{PAGES[name]} answers 404: the {name} page does not exist yet")
        assert response.ok, f"{PAGES[name]} answered {response.status}"
        assert page.url == f"{live_daphne.url}{PAGES[name]}", "redirected (to the login page?)"
        page.wait_for_load_state("networkidle")
        assert_no_blocking_violations(run_axe(page), f"{name} ({scheme})")
        if name != "volunteer":
            return
        # The volunteer page's other states: settings open, waiting for a charger, offline.
        expect(page.get_by_role("button", name="Start")).to_be_enabled()
        open_settings(page)
        page.get_by_label("Compute only while charging").check()
        page.get_by_role("button", name="Start").tap()
        expect(page.locator("#status")).to_have_text("Waiting — the device is not charging")
        context.set_offline(True)
        expect(page.get_by_role("alert")).to_contain_text("You are offline.")
        assert_no_blocking_violations(run_axe(page), f"{name} ({scheme}, running, offline)")
    finally:
        context.close()


def test_volunteer_page_works_by_keyboard(live_daphne, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, service_workers="allow")
    try:
        context.add_init_script(BATTERY_SEAM)
        page = context.new_page()
        open_page(page, live_daphne)
        page.evaluate("() => window.sparecycles.panel.details.open = false")
        # The skip link comes first and lands on the content.
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        for _ in range(15):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.id") == "toggle":
                break
        expect(page.get_by_role("button", name="Start")).to_be_focused()

        # Then the breaks (1 hour, 4 hours, until tomorrow) and the ledger's split policy.
        for name in ("1 hour", "4 hours", "Until tomorrow"):
            page.keyboard.press("Tab")
            expect(page.get_by_role("button", name=name)).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="How the split works")).to_be_focused()
        # Settings: open the disclosure with Enter, move through it with Tab.
        page.keyboard.press("Tab")
        expect(page.locator("#settings-panel > summary")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#settings-panel")).to_have_attribute("open", "")
        page.keyboard.press("Tab")
        expect(page.get_by_label("Workers")).to_be_focused()
        page.keyboard.press("Tab")
        duty = page.locator("#set-duty")
        expect(duty).to_be_focused()
        page.keyboard.press("ArrowLeft")
        expect(duty).to_have_attribute("aria-valuetext", "95 percent")
        page.keyboard.press("Tab")
        background = page.get_by_label("Keep computing while this page is in the background")
        expect(background).to_be_focused()
        was = background.is_checked()
        page.keyboard.press("Space")
        expect(background).to_be_checked(checked=not was)
        stored = page.evaluate("() => JSON.parse(localStorage.getItem('sparecycles.settings.v1'))")
        assert stored["duty"] == 95 and stored["background"] is (not was)

        # Charging only, then Start with the keyboard: it waits, and says why.
        page.get_by_label("Compute only while charging").focus()
        page.keyboard.press("Space")
        page.get_by_role("button", name="Start").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Pause")).to_be_focused()
        expect(page.locator("#status")).to_have_text("Waiting — the device is not charging")
        # The announcer (role=status) repeats the status once it has held for a moment.
        expect(page.get_by_role("status").filter(has_text="Waiting")).to_have_count(1)
        page.keyboard.press("Space")
        expect(page.get_by_role("button", name="Start")).to_be_focused()
        expect(page.locator("#status")).to_have_text("Paused")
    finally:
        context.close()


@pytest.mark.parametrize("width, height", [(360, 740), (390, 844), (1280, 800)])
def test_volunteer_page_layout_and_screenshots(live_daphne, browser, screenshots_dir,
                                               width, height):
    phone = width < 600
    options = {**PHONE, "viewport": {"width": width, "height": height}} if phone else {
        "viewport": {"width": width, "height": height}, "service_workers": "allow"}
    context = browser.new_context(**options)
    try:
        context.add_init_script(BATTERY_SEAM)
        page = context.new_page()
        open_page(page, live_daphne)
        page.screenshot(path=str(screenshots_dir / f"pwa-volunteer-{width}x{height}.png"))
        open_settings(page)
        page.get_by_label("Compute only while charging").check()
        page.get_by_role("button", name="Start").click()
        expect(page.locator("#status")).to_have_text("Waiting — the device is not charging")
        page.screenshot(path=str(screenshots_dir / f"pwa-volunteer-{width}x{height}-settings.png"),
                        full_page=True)
        page.emulate_media(color_scheme="dark")
        page.screenshot(path=str(screenshots_dir / f"pwa-volunteer-{width}x{height}-dark.png"))
        page.emulate_media(color_scheme="light")

        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        button = page.get_by_role("button", name="Pause").bounding_box()
        assert button["height"] >= 48 and button["width"] >= min(width - 80, 280)
        # Touch targets: every control of the settings is at least 24 px tall (WCAG 2.5.8),
        # and each checkbox's label (which toggles it too) at least 44 px wide.
        for control in page.locator("#settings select, #settings input").all():
            box = control.bounding_box()
            assert box["height"] >= 24, control.get_attribute("id")
        if phone:
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{live_daphne.url}/offline/")
            page.screenshot(path=str(screenshots_dir / f"pwa-offline-{width}x{height}.png"),
                            full_page=True)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    finally:
        context.close()
