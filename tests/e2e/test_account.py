"""The account's email flows and deletion in a real Chromium against a real daphne.

The server writes mail to files (Django's file backend, EMAIL_FILE_PATH): the test reads
the links from there, as a volunteer would from their inbox. A volunteer signs up with an
email, verifies it, changes it (verifying again), forgets the password and resets it, earns
credit in a team and a closed token epoch, then deletes the account: the name is gone from
every public page, the ledger still verifies and the volunteer is marked for user_deleted.
Every page touched is checked by axe-core and photographed at desktop and phone size.
"""

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from sparecycles.credit.models import TeamCredit
from sparecycles.ledger.services import epochs_close_due, ledger_init
from sparecycles.ledger.verify import verify_ledger
from sparecycles.volunteers.identity import cpid
from sparecycles.volunteers.models import Team, Volunteer
from sparecycles.volunteers.services import device_connect, team_create
from tests.e2e.test_accessibility import assert_no_blocking_violations, run_axe

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
NAME = "Zanzibar Quux"
PASSWORD = "first-passphrase-1234"
NEW_PASSWORD = "second-passphrase-5678"
SHOTS = Path("/tmp/acc")


class Inbox:
    """The file backend's messages, oldest first; links are read from the newest."""

    def __init__(self, directory: Path):
        self.directory = directory

    def messages(self) -> list[str]:
        files = sorted(self.directory.glob("*.log"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_text(errors="replace") for p in files]

    def link(self, page: Page, *, to: str, count: int) -> str:
        """The link in the newest message to `to`, once there are `count` messages."""
        for _ in range(100):
            found = self.messages()
            if len(found) >= count:
                break
            page.wait_for_timeout(100)
        assert len(found) >= count, f"{len(found)} messages, expected {count}"
        newest = found[-1]
        assert f"To: {to}" in newest, newest
        return re.search(r"http://127\.0\.0\.1:\d+/\S+", newest).group(0)


@pytest.fixture
def server(live_server_factory, tmp_path):
    mail = tmp_path / "mail"
    mail.mkdir()
    started = live_server_factory(env={
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail)})
    started.inbox = Inbox(mail)
    return started


def check_page(page: Page, name: str, browser: Browser, url: str) -> None:
    """axe on the page as it is, and screenshots of it at desktop and phone size."""
    assert_no_blocking_violations(run_axe(page), name)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
    cookies = page.context.cookies()
    for scheme in ("light", "dark"):
        phone = browser.new_context(**PHONE, color_scheme=scheme)
        try:
            phone.add_cookies(cookies)
            small = phone.new_page()
            small.goto(url)
            assert small.evaluate("() => document.documentElement.scrollWidth "
                                  "<= document.documentElement.clientWidth"), f"{name} overflows"
            assert_no_blocking_violations(run_axe(small), f"{name} (phone, {scheme})")
            small.screenshot(path=str(SHOTS / f"{name}-phone-{scheme}.png"), full_page=True)
        finally:
            phone.close()


def test_verify_change_reset_and_delete(server, browser: Browser, make_batch, earn):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ledger_init(now=timezone.now())
    make_batch(count=3)
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    base = server.url

    # Sign up with an email; the verification link arrives and verifies it.
    page.goto(f"{base}/accounts/signup/")
    check_page(page, "signup", browser, f"{base}/accounts/signup/")
    page.get_by_label("Username").fill("quux")
    page.get_by_label("Email (optional)").fill("quux@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("We sent a link to quux@example.org")).to_be_visible()
    volunteer = Volunteer.objects.get(user__username="quux")
    page.goto(server.inbox.link(page, to="quux@example.org", count=1))
    expect(page.get_by_text("Your email address quux@example.org is verified.")).to_be_visible()
    expect(page.locator("#email-status")).to_contain_text("verified")
    volunteer.refresh_from_db()
    assert volunteer.email_verified_at is not None
    expect(page.locator("#cpid-value")).to_have_text(cpid(volunteer))
    check_page(page, "account", browser, f"{base}/me/account/")

    # Change the email: not verified any more until the new link is opened.
    page.get_by_role("textbox", name="Email", exact=True).fill("quux@example.net")
    page.locator("#email").get_by_label("Your password").fill(PASSWORD)  # a session is not enough
    page.get_by_role("button", name="Change email").click()
    expect(page.locator("#email-status")).to_contain_text("not verified yet")
    volunteer.refresh_from_db()
    assert volunteer.email_verified_at is None
    expect(page.locator("#cpid-value")).to_have_text(cpid(volunteer))
    page.goto(server.inbox.link(page, to="quux@example.net", count=2))
    expect(page.get_by_text("Your email address quux@example.net is verified.")).to_be_visible()

    # Forget the password: reset it by email, then log in with the new one.
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{base}/accounts/login/")
    check_page(page, "login", browser, f"{base}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    check_page(page, "reset-form", browser, f"{base}/accounts/password/reset/")
    page.get_by_label("Your account’s email").fill("quux@example.net")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    check_page(page, "reset-sent", browser, f"{base}/accounts/password/reset/sent/")
    page.goto(server.inbox.link(page, to="quux@example.net", count=3))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    check_page(page, "reset-confirm", browser, page.url)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("quux")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/me/")

    # A name, a team it founded, credit, and tokens paid in a closed epoch.
    page.goto(f"{base}/me/account/")
    page.get_by_label("Display name").fill(NAME)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your settings are saved.")).to_be_visible()
    volunteer.refresh_from_db()
    team = team_create(founder=volunteer, name="Quux Crunchers")

    def earn_and_close_epoch():  # in a thread: its socket pushes use async_to_sync, which
        # refuses to run beside Playwright's event loop in this one
        try:
            earn(device_connect(token=None, user=volunteer.user,
                                capabilities={"runtimes": ["pyodide"]}).device)
            epochs_close_due(now=timezone.now() + dt.timedelta(days=2))
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(earn_and_close_epoch).result()
    team_credit = TeamCredit.objects.get(pk=team.pk).credit_micro
    assert team_credit > 0
    public = [f"{base}/leaderboards/volunteers/", f"{base}/leaderboards/teams/",
              f"{base}/teams/{team.slug}/", f"{base}/volunteers/{volunteer.pk}/",
              f"{base}/projects/squares/", f"{base}/leaderboards/projects/squares/",
              f"{base}/ledger/volunteers/{volunteer.pk}/", f"{base}/ledger/epochs/0/"]
    visitor = browser.new_page()
    seen = []
    for url in public:
        visitor.goto(url)
        seen.append(NAME in visitor.content())
    assert any(seen), "the name should be public before the deletion"

    # Delete the account: the password is asked for; a wrong one changes nothing.
    page.goto(f"{base}/me/account/")
    page.get_by_role("link", name="Delete my account…").click()
    check_page(page, "delete", browser, f"{base}/me/account/delete/")
    page.get_by_label("Your password").fill("not-the-password")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("That is not your password.")).to_be_visible()
    assert Volunteer.objects.get(pk=volunteer.pk).deleted_at is None
    page.get_by_label("Your password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    check_page(page, "deleted", browser, f"{base}/accounts/deleted/")

    # The name appears nowhere public; the credit stays; the books still balance.
    for url in public:
        visitor.goto(url)
        assert visitor.title() and NAME not in visitor.content(), url
        assert "quux@example" not in visitor.content(), url
    visitor.goto(f"{base}/teams/{team.slug}/")
    expect(visitor.get_by_role("heading", name="Quux Crunchers")).to_be_visible()
    assert TeamCredit.objects.get(pk=team.pk).credit_micro == team_credit
    assert Team.objects.get(pk=team.pk).founder_id is None
    assert verify_ledger().ok
    call_command("verify_ledger")
    gone = Volunteer.objects.get(pk=volunteer.pk)
    assert gone.deleted_at is not None and gone.user_id is None  # listed in user_deleted
    # The old login is refused.
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("quux")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errorlist")).to_be_visible()
    visitor.close()
    context.close()
