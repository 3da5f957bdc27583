"""The token ledger in a real Chromium: a volunteer opens their history, finds an epoch
payout, and the page checks its Merkle proof with crypto.subtle and says so."""

import datetime as dt
import json

import pytest
from playwright.sync_api import Page, expect

from sparecycles.credit.models import CreditGrant
from sparecycles.housekeeping import runner as housekeeping
from sparecycles.ledger.policy import DEFAULT_PARAMS
from sparecycles.ledger.services import epochs_close_due, ledger_init, tokens_transfer
from sparecycles.ledger.units import MICRO
from sparecycles.projects.models import App, Batch, Project, WorkUnit
from sparecycles.projects.services import app_version_create
from sparecycles.scheduler.models import Replica
from sparecycles.volunteers.models import Volunteer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def books(monkeypatch):
    """Five daily epochs of the published policy, paid to six volunteers; one transfer."""
    # An earlier test's live server started the embedded housekeeping thread in this
    # process; it closes due epochs too, and must not close these half-made.
    monkeypatch.setattr(housekeeping, "housekeeping_pass", lambda: {})
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    genesis = today - dt.timedelta(days=5)
    ledger_init(params=DEFAULT_PARAMS, genesis=genesis, now=genesis)
    project = Project.objects.create(slug="mandel", title="Mandelbrot")
    app = App.objects.create(project=project, name="mandel", title="Mandelbrot")
    version = app_version_create(app=app, code=b"def main(input):\n    return input\n")
    batch = Batch.objects.create(app_version=version, name="tiles")
    volunteers = [Volunteer.objects.create(name=name) for name in
                  ["Ada", "Grace", "Linus", "Margaret", "Katherine", "Dennis"]]
    seq = 0
    for day in range(5):
        for i, volunteer in enumerate(volunteers):
            for _ in range((i + day) % 4 + 1):
                seq += 1
                workunit = WorkUnit.objects.create(batch=batch, app_version=version, seq=seq,
                                                   input={"tile": seq})
                replica = Replica.objects.create(
                    workunit=workunit, volunteer=volunteer, server_state="over",
                    outcome="success", validate_state="valid")
                CreditGrant.objects.create(
                    replica=replica, workunit=workunit, project=project, volunteer=volunteer,
                    amount_micro=(i + 1) * 1_250_000 + day * 17,
                    granted_at=genesis + dt.timedelta(days=day, hours=i + 1))
    closed = epochs_close_due(now=today + dt.timedelta(minutes=1))
    assert [e.index for e in closed] == [0, 1, 2, 3, 4]
    tokens_transfer(source=f"volunteer-{volunteers[0].pk}",
                    destination=f"volunteer-{volunteers[1].pk}", amount_micro=25 * MICRO,
                    memo="Thanks for the help", now=today + dt.timedelta(minutes=2))
    return volunteers


def open_account(page: Page, server, volunteer) -> None:
    page.goto(f"{server.url}/ledger/volunteers/{volunteer.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(volunteer.name)
    expect(page.locator("html")).to_have_attribute("data-ledger-ready", "true")


def test_a_volunteer_checks_a_payout_proof_in_the_browser(page: Page, live_daphne, books,
                                                          screenshots_dir):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size(DESKTOP)
    volunteer = books[2]
    open_account(page, live_daphne, volunteer)

    row = page.locator("tr[data-epoch-row='3']")
    expect(row).to_contain_text("Epoch 3 payout")
    amount = int(row.get_by_role("button", name="Check proof").get_attribute("data-amount"))
    assert amount > 0
    row.get_by_role("button", name="Check proof").click()
    status = row.get_by_role("status")
    expect(status).to_contain_text("Proof verified in your browser")
    expect(status).to_contain_text("included in epoch 3's Merkle root")
    expect(status).to_have_attribute("data-state", "ok")
    page.screenshot(path=screenshots_dir / "ledger-account-desktop.png", full_page=True)
    assert errors == []


def test_a_forged_proof_is_caught(page: Page, live_daphne, books):
    """The server (or anyone between) lies about the amount: the browser refuses it."""
    volunteer = books[4]

    def forge(route):
        response = route.fetch()
        proof = response.json()
        proof["audit_path"][0] = proof["audit_path"][0][::-1]
        route.fulfill(response=response, body=json.dumps(proof))

    page.route("**/ledger/api/epochs/1/proofs/*", forge)
    open_account(page, live_daphne, volunteer)
    row = page.locator("tr[data-epoch-row='1']")
    row.get_by_role("button", name="Check proof").click()
    expect(row.get_by_role("status")).to_contain_text("Proof check FAILED")
    expect(row.get_by_role("status")).to_have_attribute("data-state", "bad")


def test_the_whole_chain_and_one_entry_verify_in_the_browser(page: Page, live_daphne, books,
                                                             screenshots_dir):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_daphne.url}/ledger/verify/")
    expect(page.get_by_role("heading", name="The ledger verifies")).to_be_visible()
    page.get_by_role("button", name="Check the hash chain here").click()
    expect(page.locator("#journal-check")).to_contain_text(
        "Hash chain verified in your browser: 7 entries")
    page.goto(f"{live_daphne.url}/ledger/entries/4/")
    page.get_by_role("button", name="Check this hash in my browser").click()
    expect(page.locator("#entry-check")).to_contain_text("Verified in your browser")


def test_screenshots_desktop_and_phone(page: Page, live_daphne, books, screenshots_dir):
    """The pages at desktop and phone width, for a person to look at."""
    pages = {"overview": "/ledger/", "epoch": "/ledger/epochs/4/",
             "account": f"/ledger/accounts/volunteer-{books[2].pk}/", "verify": "/ledger/verify/"}
    for viewport_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        for name, path in pages.items():
            response = page.goto(f"{live_daphne.url}{path}")
            assert response.status == 200
            # Nothing may be wider than the screen (wide tables scroll inside their box).
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} overflows the {viewport_name} viewport by {overflow}px"
            if name == "account":
                page.locator("tr[data-epoch-row='4']").get_by_role(
                    "button", name="Check proof").click()
                expect(page.locator("tr[data-epoch-row='4']").get_by_role("status")).to_contain_text(
                    "Proof verified")
            page.screenshot(path=screenshots_dir / f"ledger-{name}-{viewport_name}.png",
                            full_page=True)
