"""Sign-up, log-in, settings, the dashboard, device claims, profiles and team pages."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from sparecycles.accounts.services import account_create, claim_code_issue
from sparecycles.credit.models import MICRO, CreditGrant
from sparecycles.credit.selectors import volunteer_credit_micro
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import tasks_dispatch
from sparecycles.volunteers.models import Device, DeviceClaimCode, Team, Volunteer
from sparecycles.volunteers.services import device_connect, team_create, team_join

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- sign-up and log-in ------------------------------------------------------------------
def test_signup_logs_in_and_claims_this_browser_with_its_credit(client, anonymous_browser):
    token, device = anonymous_browser
    anonymous_id = device.volunteer_id
    response = client.post("/accounts/signup/", {
        "username": "grace", "password1": PASSWORD, "password2": PASSWORD,
        "claim_device": "on", "device_token": token}, follow=True)
    assert response.redirect_chain == [("/me/", 302)]
    volunteer = Volunteer.objects.get(user__username="grace")
    assert response.context["user"].username == "grace"
    assert volunteer_credit_micro(volunteer_id=volunteer.pk) == MICRO
    assert Device.objects.get(pk=device.pk).volunteer == volunteer
    assert Volunteer.objects.get(pk=anonymous_id).merged_into == volunteer
    assert any("its credit are now part of your account" in m for m in messages_of(response))


def test_signup_without_the_checkbox_leaves_the_device_alone(client, anonymous_browser):
    token, device = anonymous_browser
    client.post("/accounts/signup/", {"username": "grace", "password1": PASSWORD,
                                      "password2": PASSWORD, "device_token": token})
    assert Device.objects.get(pk=device.pk).volunteer.user is None


def test_signup_errors_are_shown_and_nothing_is_created(client):
    response = client.post("/accounts/signup/", {"username": "grace", "password1": PASSWORD,
                                                 "password2": "something-else-entirely"})
    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.content.decode()
    assert not get_user_model().objects.exists()


def test_signup_and_login_pages_render_with_the_claim_choice_hidden(client):
    for url in ("/accounts/signup/", "/accounts/login/"):
        html = client.get(url).content.decode()
        assert "data-claim-choice hidden" in html
        assert 'name="device_token"' in html and "volunteers/claim.js" in html


def test_login_claims_this_browser(client, member, anonymous_browser):
    token, device = anonymous_browser
    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD,
                                                "claim_device": "on", "device_token": token},
                           follow=True)
    assert response.redirect_chain[-1] == ("/me/", 302)
    assert Device.objects.get(pk=device.pk).volunteer == member


def test_login_with_a_device_of_another_account_warns(client, member):
    other = account_create(username="bob", password=PASSWORD)
    session = device_connect(token=None, user=other.user)
    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD,
                                                "claim_device": "on",
                                                "device_token": session.new_token},
                           follow=True)
    assert ["This browser’s device was not added: That device already belongs to another "
            "account."] == messages_of(response)
    assert Device.objects.get(pk=session.device.pk).volunteer == other


def test_login_failure_says_so(client, member):
    response = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_login_keeps_next_but_not_foreign_sites(client, member):
    ok = client.post("/accounts/login/?next=/teams/", {"username": "ada", "password": PASSWORD})
    assert ok["Location"] == "/teams/"
    client.logout()
    evil = client.post("/accounts/login/?next=https://evil.example/",
                       {"username": "ada", "password": PASSWORD})
    assert evil["Location"] == "/me/"


def test_logout_is_a_post(member_client):
    assert member_client.get("/accounts/logout/").status_code == 405
    response = member_client.post("/accounts/logout/")
    assert "You are logged out" in response.content.decode()
    assert member_client.get("/me/").status_code == 302


# --- settings -----------------------------------------------------------------------------
def test_account_settings_change_name_and_anonymity(member_client, member):
    page = member_client.get("/me/account/")
    assert page.context["form"].initial == {"name": "ada", "show_anonymous": False,
                                            "in_stats_exports": True}
    response = member_client.post("/me/account/", {"name": "  Ada   Lovelace ",
                                                   "show_anonymous": "on",
                                                   "in_stats_exports": "on"}, follow=True)
    assert messages_of(response) == ["Your settings are saved."]
    member.refresh_from_db()
    assert (member.name, member.show_anonymous, member.public_name) == (
        "Ada Lovelace", True, "Anonymous")


def test_account_settings_reject_a_blank_name(member_client, member):
    response = member_client.post("/me/account/", {"name": "   "})
    assert response.status_code == 200 and response.context["form"].errors["name"]
    member.refresh_from_db()
    assert member.name == "ada"


def test_pages_for_members_send_visitors_to_log_in(client):
    for url in ("/me/", "/me/account/", "/teams/new/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


# --- the dashboard ------------------------------------------------------------------------
def test_dashboard_shows_devices_results_pending_and_running(member_client, member, make_batch,
                                                             earn):
    make_batch(count=2)                                     # quorum 1: valid at once, 1 credit
    mine = device_connect(token=None, user=member.user,
                          capabilities={"runtimes": ["pyodide"]}).device
    earn(mine), earn(mine)                                  # the two quorum-1 units
    # Made after them: dispatch is random within the window of unsent work.
    make_batch(count=2, min_quorum=2, target_nresults=2)    # waits for a second volunteer
    earn(mine)                                              # one of the quorum-2 units: pending
    tasks_dispatch(device=mine, slots=1)                    # the other: running now
    response = member_client.get("/me/")
    context = response.context
    assert context["granted_credit"] == 2.0
    assert context["pending_credit"] == 1.0
    assert context["pending_share"] == 33 and context["granted_share"] == 67
    assert context["rank_url"] == f"/leaderboards/volunteers/?order=credit&page=1#row-{member.pk}"
    assert dict(context["results"]) == {"valid": 2, "pending validation": 1, "in progress": 1}
    [row] = context["devices"]
    assert (row.device, row.credit, row.results, row.valid) == (mine, 2.0, 3, 2)
    assert row.rac > 0
    [running] = context["in_progress"]
    assert running.server_state == Replica.ServerState.IN_PROGRESS
    html = response.content.decode()
    assert '<svg class="chart"' in html and "chart-bar" in html
    assert "First valid result" in html
    assert "Claim this browser" in html and 'name="code"' in html


def test_dashboard_of_a_new_account_offers_to_add_devices(member_client):
    html = member_client.get("/me/").content.decode()
    assert "No devices yet." in html and "No credit in the last 30 days" in html


def test_dashboard_of_an_account_without_a_volunteer(client, django_user_model):
    user = django_user_model.objects.create_user("staff", password=PASSWORD)
    client.force_login(user)
    response = client.get("/me/")
    assert response.status_code == 200 and response.context["volunteer"] is None
    assert not Volunteer.objects.exists()  # looking creates nothing


def test_dashboard_credit_is_only_the_volunteers_own(member_client, member, make_batch, earn):
    make_batch(count=2)
    earn(device_connect(token=None).device)  # someone else
    assert member_client.get("/me/").context["granted_credit"] == 0


# --- claiming devices ---------------------------------------------------------------------
def test_claim_this_browser_endpoint(member_client, member, anonymous_browser):
    token, device = anonymous_browser
    response = member_client.post("/me/devices/claim/", {"token": token})
    assert response.status_code == 200
    assert response.json() == {"device_id": device.public_id, "label": device.label,
                               "volunteer_id": member.pk}
    member.refresh_from_db()
    assert volunteer_credit_micro(volunteer_id=member.pk) == MICRO
    assert CreditGrant.objects.get().volunteer == member
    assert member.reputation == pytest.approx(2 / 3)  # the device's valid result counts now


def test_the_dashboard_learns_whether_this_browser_is_already_yours(member_client, member,
                                                                   anonymous_browser):
    token, device = anonymous_browser
    before = member_client.post("/devices/identify/", {"token": token}).json()
    assert before == {"volunteer_id": member.pk, "device_id": device.public_id,
                      "device_volunteer_id": device.volunteer_id}
    member_client.post("/me/devices/claim/", {"token": token})
    after = member_client.post("/devices/identify/", {"token": token}).json()
    assert after["device_volunteer_id"] == member.pk
    html = member_client.get("/me/").content.decode()
    assert f'data-volunteer-id="{member.pk}"' in html
    assert 'data-identify-url="/devices/identify/"' in html


def test_claim_this_browser_errors(client, member, anonymous_browser):
    token, _ = anonymous_browser
    assert client.post("/me/devices/claim/", {"token": token}).status_code == 401
    client.force_login(member.user)
    unknown = client.post("/me/devices/claim/", {"token": "no-such-token"})
    assert unknown.status_code == 409
    assert unknown.json() == {"detail": "This browser's device is unknown; press Start once first.",
                              "code": "conflict"}   # the one JSON error shape (errors.py)
    assert client.get("/me/devices/claim/").status_code == 405


def test_claim_this_browser_needs_the_csrf_token(member, anonymous_browser):
    from django.test import Client

    token, device = anonymous_browser
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    assert client.post("/me/devices/claim/", {"token": token}).status_code == 403
    assert Device.objects.get(pk=device.pk).volunteer != member
    html = client.get("/me/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert client.post("/me/devices/claim/", {"token": token,
                                              "csrfmiddlewaretoken": csrf}).status_code == 200


def test_a_device_shows_a_code_and_is_claimed_by_it(client, member, anonymous_browser):
    token, device = anonymous_browser
    response = client.post("/devices/claim-code/", {"token": token})
    data = response.json()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", data["code"])
    assert 890 <= data["ttl_s"] <= 900
    client.force_login(member.user)
    claimed = client.post("/me/devices/claim-code/", {"code": data["code"].lower()}, follow=True)
    assert claimed.redirect_chain == [("/me/#devices", 302)]
    assert Device.objects.get(pk=device.pk).volunteer == member
    assert messages_of(claimed) == [f"{device.label} and its credit are now part of your "
                                    "account."]
    again = client.post("/me/devices/claim-code/", {"code": data["code"]}, follow=True)
    assert messages_of(again) == ["That code is unknown or expired; get a new one on the device."]


def test_claim_code_errors(client, member):
    unknown = client.post("/devices/claim-code/", {"token": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found" and "press Start once" in unknown.json()["detail"]
    client.force_login(member.user)
    response = client.post("/me/devices/claim-code/", {"code": "x"}, follow=True)
    assert "A claim code has 8 letters and digits" in messages_of(response)[0]


def test_a_code_of_a_device_with_an_account_cannot_be_claimed_by_another(client, member):
    other = account_create(username="bob", password=PASSWORD)
    device = device_connect(token=None, user=other.user).device
    code = claim_code_issue(device=device).code
    client.force_login(member.user)
    response = client.post("/me/devices/claim-code/", {"code": code}, follow=True)
    assert messages_of(response) == ["That device already belongs to another account."]
    assert DeviceClaimCode.objects.get().used_at is None  # refused: the code is not spent


# --- profiles -----------------------------------------------------------------------------
def test_public_profile(client, member, anonymous_browser, make_batch):
    token, device = anonymous_browser
    volunteer = device.volunteer
    team = team_create(founder=volunteer, name="Prime Hunters")
    html = client.get(f"/volunteers/{volunteer.pk}/").content.decode()
    assert f"<h1>{volunteer.name}</h1>" in html
    assert "First valid result" in html and "Not yet: 1,000 credit earned." not in html
    assert "Not earned yet: 1.000000 of 1,000 so far." in html
    assert f'href="/teams/{team.slug}/"' in html
    assert "<dt>Rank by credit</dt><dd>#1</dd>" in html
    # One valid result on a Beta(1, 1) prior: reputation 2/3.
    assert "<meter" in html and "67%" in html


def test_an_anonymous_profile_hides_name_and_team(client, member):
    team_join(volunteer=member, team=team_create(founder=member, name="Visible Team"))
    member.show_anonymous = True
    member.save()
    html = client.get(f"/volunteers/{member.pk}/").content.decode()
    assert "<h1>Anonymous</h1>" in html
    assert "ada" not in html and "Visible Team" not in html


def test_profile_says_when_it_is_you(member_client, member):
    assert member_client.get(f"/volunteers/{member.pk}/").context["is_you"]


def test_unknown_profile(client, db):
    assert client.get("/volunteers/999/").status_code == 404


# --- teams --------------------------------------------------------------------------------
def test_found_a_team(member_client, member):
    response = member_client.post("/teams/new/", {"name": "Prime Hunters",
                                                  "description": "We sieve."}, follow=True)
    assert response.redirect_chain == [("/teams/prime-hunters/", 302)]
    team = Team.objects.get()
    assert (team.founder, team.member_count) == (member, 1)
    assert response.context["is_founder"] and response.context["is_member"]
    assert "We sieve." in response.content.decode()


@pytest.mark.parametrize("name, error", [
    ("Prime Hunters", "There is already a team called “Prime Hunters”."),
    ("New", "That name is reserved; choose another."),
    ("x", "Ensure this value has at least 2 characters (it has 1)."),
])
def test_team_names_that_are_refused(member_client, member, name, error):
    team_create(founder=account_create(username="bob", password=PASSWORD),
                name="Prime Hunters")
    response = member_client.post("/teams/new/", {"name": name})
    assert response.status_code == 200
    assert error in response.context["form"].errors["name"]


def test_join_and_leave(member_client, member):
    team = team_create(founder=account_create(username="bob", password=PASSWORD), name="Sievers")
    response = member_client.post("/teams/sievers/join/", follow=True)
    assert response.context["is_member"]
    assert Team.objects.get(pk=team.pk).member_count == 2
    response = member_client.post("/teams/sievers/leave/", follow=True)
    assert not response.context["is_member"]
    assert Team.objects.get(pk=team.pk).member_count == 1
    assert member_client.get("/teams/sievers/join/").status_code == 405


def test_only_the_founder_edits_the_description(client, member):
    founder = account_create(username="bob", password=PASSWORD)
    team_create(founder=founder, name="Sievers", description="Old.")
    client.force_login(member.user)
    assert client.get("/teams/sievers/edit/").status_code == 403
    assert client.post("/teams/sievers/edit/", {"description": "Hijacked"}).status_code == 403
    client.force_login(founder.user)
    response = client.post("/teams/sievers/edit/", {"description": "New <b>text</b>."},
                           follow=True)
    assert response.redirect_chain == [("/teams/sievers/", 302)]
    html = response.content.decode()
    assert "New &lt;b&gt;text&lt;/b&gt;." in html  # escaped, never markup


def test_team_page_lists_members_by_credit(client, anonymous_browser, member):
    _, device = anonymous_browser
    team = team_create(founder=device.volunteer, name="Sievers")
    team_join(volunteer=member, team=team)
    response = client.get("/teams/sievers/")
    board = response.context["board"]
    assert [row.id for row in board.rows] == [device.volunteer_id]
    assert response.context["without_credit"] == 1
    assert "And 1 member without credit yet." in response.content.decode()
    assert client.get("/teams/nope/").status_code == 404


def test_team_directory_search_and_pages(client, member):
    for i in range(55):
        Team.objects.create(name=f"Team {i:02d}", slug=f"team-{i:02d}")
    Team.objects.create(name="Sieve & Co", slug="sieve-co")
    first = client.get("/teams/")
    assert len(first.context["teams"]) == 50 and first.context["pages"] == 2
    found = client.get("/teams/", {"q": "sieve &"})
    assert [t.name for t in found.context["teams"]] == ["Sieve & Co"]
    assert found.context["base_query"] == "q=sieve+%26&"


# --- email: verification, change, reset -----------------------------------------------------------
def _link(message, pattern=r"http://testserver(/\S+)") -> str:
    return re.search(pattern, message.body).group(1)


def test_signup_with_an_email_sends_a_link_that_verifies_it(client, mailoutbox):
    from sparecycles.volunteers.identity import cpid

    client.post("/accounts/signup/", {"username": "grace", "password1": PASSWORD,
                                      "password2": PASSWORD, "email": "grace@example.org"})
    volunteer = Volunteer.objects.get(user__username="grace")
    assert volunteer.user.email == "grace@example.org" and volunteer.email_verified_at is None
    assert [m.to for m in mailoutbox] == [["grace@example.org"]]
    page = client.get("/me/account/").content.decode()
    assert "not verified yet" in page and cpid(volunteer) in page
    response = client.get(_link(mailoutbox[0]), follow=True)
    assert "Your email address grace@example.org is verified." in messages_of(response)
    volunteer.refresh_from_db()
    assert volunteer.email_verified_at is not None
    page = client.get("/me/account/").content.decode()
    assert "<strong>verified</strong>" in page and cpid(volunteer) in page


def test_signup_refuses_a_bad_email(client, mailoutbox):
    response = client.post("/accounts/signup/", {"username": "grace", "password1": PASSWORD,
                                                 "password2": PASSWORD, "email": "not-an-email"})
    assert response.status_code == 200 and response.context["form"].errors["email"]
    assert not get_user_model().objects.exists() and not mailoutbox


def test_verification_links_refuse_forgery_expiry_other_accounts_and_old_addresses(
        client, member, mailoutbox, monkeypatch):
    from django.core import signing

    from sparecycles.accounts.emails import VERIFY_MAX_AGE_S, verify_token

    client.force_login(member.user)
    client.post("/me/account/email/", {"email": "ada@example.org", "password": PASSWORD})
    link = _link(mailoutbox[-1])
    token = link.rstrip("/").rsplit("/", 1)[1]

    def refused(url: str, text: str) -> None:
        response = client.get(url)
        assert response.status_code == 400 and text in response.content.decode(), url
        member.refresh_from_db()
        assert member.email_verified_at is None

    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    refused(f"/me/account/email/verify/{forged}/", "not valid")
    refused("/me/account/email/verify/garbage/", "not valid")
    # A token signed by us but for another salt's purpose, or with a bad payload.
    other = signing.dumps({"v": member.pk, "e": "ada@example.org"}, salt="elsewhere")
    refused(f"/me/account/email/verify/{other}/", "not valid")
    with monkeypatch.context() as patch:
        now = signing.time.time()
        patch.setattr(signing.time, "time", lambda: now - VERIFY_MAX_AGE_S - 60)
        old = verify_token(volunteer_id=member.pk, email="ada@example.org")
    refused(f"/me/account/email/verify/{old}/", "expired")
    # Someone else's link: grace, logged in, opens ada's.
    grace = account_create(username="grace", password=PASSWORD)
    other_client = Client()
    other_client.force_login(grace.user)
    response = other_client.get(link)
    assert response.status_code == 400 and "another account" in response.content.decode()
    # A link for the address before a change verifies nothing.
    client.post("/me/account/email/", {"email": "lovelace@example.org", "password": PASSWORD})
    refused(link, "no longer")
    # Logged out: the login page first, then back to the link.
    response = Client().get(link)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # The right link works once the address is the account's.
    assert client.get(_link(mailoutbox[-1])).status_code == 302
    member.refresh_from_db()
    assert member.email_verified_at is not None


def test_changing_the_email_unverifies_and_sends_a_new_link(member_client, member, mailoutbox):
    from sparecycles.volunteers.services import volunteer_email_verified

    member_client.post("/me/account/email/", {"email": "ada@example.org", "password": PASSWORD})
    volunteer_email_verified(volunteer=member, email="ada@example.org")
    response = member_client.post("/me/account/email/",
                                  {"email": "new@example.org", "password": PASSWORD},
                                  follow=True)
    assert any("new@example.org" in m for m in messages_of(response))
    member.refresh_from_db()
    assert member.email_verified_at is None and member.user.email == "new@example.org"
    assert mailoutbox[-1].to == ["new@example.org"]
    response = member_client.post("/me/account/email/",
                                  {"email": "bad address", "password": PASSWORD})
    assert response.status_code == 200 and response.context["email_form"].errors["email"]
    member_client.post("/me/account/email/resend/")
    assert len(mailoutbox) == 3
    member_client.post("/me/account/email/", {"email": "", "password": PASSWORD})
    member.user.refresh_from_db()
    assert member.user.email == ""


def _verified(volunteer, email):
    from sparecycles.accounts.services import account_email_change
    from sparecycles.volunteers.services import volunteer_email_verified

    account_email_change(user=volunteer.user, email=email)
    volunteer_email_verified(volunteer=volunteer, email=email)


def test_password_reset_by_email(client, member, mailoutbox):
    _verified(member, "ada@example.org")
    Token.objects.create(user=member.user)  # the CLI's log-in, made with the old password
    response = client.post("/accounts/password/reset/", {"email": "ADA@example.org"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    assert [m.to for m in mailoutbox] == [["ada@example.org"]]
    assert "Spare Cycles" in mailoutbox[0].subject and "ada" in mailoutbox[0].body
    link = _link(mailoutbox[0])
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    response = client.post(form_page.redirect_chain[-1][0], {
        "new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/complete/"
    assert client.login(username="ada", password="a-brand-new-passphrase")
    assert not Token.objects.filter(user=member.user).exists()  # the API log-in ended too
    # The link works once.
    assert not Client().get(link, follow=True).context["validlink"]


def test_password_reset_never_says_whether_an_address_exists(client, member, mailoutbox):
    member.user.email = "unverified@example.org"
    member.user.save()
    answers = set()
    for email in ("nobody@example.org", "unverified@example.org"):
        response = client.post("/accounts/password/reset/", {"email": email})
        answers.add((response.status_code, response["Location"]))
    assert answers == {(302, "/accounts/password/reset/sent/")}
    assert mailoutbox == []  # unknown, and unverified (it may be someone else's), get nothing
    page = client.get("/accounts/password/reset/sent/").content.decode()
    assert "If an account has that verified address" in page


def test_password_reset_mail_is_throttled_per_recipient(client, member, mailoutbox):
    _verified(member, "ada@example.org")
    for _ in range(6):
        response = client.post("/accounts/password/reset/", {"email": "ada@example.org"})
        assert response["Location"] == "/accounts/password/reset/sent/"
    assert len(mailoutbox) == 3


@pytest.mark.parametrize("host", ["compute.example-usercontent.org", "spare.example.org"])
def test_reset_and_verification_links_point_at_site_origin_whatever_the_host_header(
        client, member, mailoutbox, settings, host):
    """Red team: the reset link took its domain from the request's Host header, which any
    host in ALLOWED_HOSTS passes (the compute origin's host is one in production): a
    forged Host made the reset link of a victim's mail point at another origin."""
    settings.SITE_ORIGIN = "https://spare.example.org"
    settings.ALLOWED_HOSTS = ["spare.example.org", "compute.example-usercontent.org"]
    _verified(member, "ada@example.org")
    client.post("/accounts/password/reset/", {"email": "ada@example.org"}, HTTP_HOST=host)
    client.force_login(member.user)
    client.post("/me/account/email/", {"email": "new@example.org", "password": PASSWORD},
                HTTP_HOST=host)
    assert len(mailoutbox) == 2
    for message in mailoutbox:
        links = re.findall(r"\w+://[^/\s]+/", message.body)
        assert links == ["https://spare.example.org/"], message.body


def test_changing_the_email_needs_the_password(member_client, member, mailoutbox):
    """Red team: a borrowed or stolen session alone put its holder's address on the account,
    verified it and reset the password: the account was theirs for good."""
    for password in (None, "", "not-the-password"):
        data = {"email": "thief@example.org"} | ({} if password is None
                                                 else {"password": password})
        response = member_client.post("/me/account/email/", data)
        assert response.status_code == 200
        assert response.context["email_form"].errors["password"]
    member.user.refresh_from_db()
    assert member.user.email == "" and mailoutbox == []


def test_forged_reset_links_do_not_work(client, member):
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(member.user.pk))
    page = client.get(f"/accounts/password/reset/{uid}/set-password/", follow=True)
    assert page.status_code == 200 and not page.context["validlink"]
    page = client.get(f"/accounts/password/reset/{uid}/abc-123456/", follow=True)
    assert not page.context["validlink"] and "does not work" in page.content.decode()


# --- privacy and deletion -----------------------------------------------------------------------
def test_the_export_choice_is_saved(member_client, member):
    member_client.post("/me/account/", {"name": "ada"})
    member.refresh_from_db()
    assert member.in_stats_exports is False
    assert "You are left out" in member_client.get("/me/account/").content.decode()
    member_client.post("/me/account/", {"name": "ada", "in_stats_exports": "on"})
    member.refresh_from_db()
    assert member.in_stats_exports is True


def test_deletion_asks_for_the_password(member_client, member):
    page = member_client.get("/me/account/delete/")
    assert page.status_code == 200 and "cannot be undone" in page.content.decode()
    for data in ({}, {"password": ""}, {"password": "wrong-password"}):
        response = member_client.post("/me/account/delete/", data)
        assert response.status_code == 400 and response.context["form"].errors["password"]
    assert get_user_model().objects.filter(username="ada").exists()
    assert Volunteer.objects.get(pk=member.pk).deleted_at is None


def test_deletion_with_the_password_logs_out_and_deleting_twice_does_nothing(
        member_client, member):
    team = team_create(founder=member, name="Founders")
    response = member_client.post("/me/account/delete/", {"password": PASSWORD}, follow=True)
    assert response.redirect_chain == [("/accounts/deleted/", 302)]
    assert "Your account is deleted" in response.content.decode()
    assert not response.context["user"].is_authenticated
    assert not get_user_model().objects.filter(username="ada").exists()
    volunteer = Volunteer.objects.get(pk=member.pk)
    assert volunteer.deleted_at is not None and volunteer.user_id is None
    team.refresh_from_db()
    assert team.founder_id is None and team.member_count == 0
    response = member_client.post("/me/account/delete/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Volunteer.objects.get(pk=member.pk).deleted_at == volunteer.deleted_at
    assert not Client().login(username="ada", password=PASSWORD)


def test_deletion_password_guesses_are_throttled_like_log_ins(member_client, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "LOGIN_FAILURES_PER_USERNAME": 3}
    for _ in range(3):
        member_client.post("/me/account/delete/", {"password": "guess"})
    response = member_client.post("/me/account/delete/", {"password": PASSWORD})
    assert response.status_code == 400
    assert "Too many failed log-ins" in response.content.decode()
    assert get_user_model().objects.filter(username="ada").exists()


def test_staff_cannot_delete_themselves_here(client, owner):
    owner.is_staff = True
    owner.save()
    client.force_login(owner)
    response = client.post("/me/account/delete/", {"password": "pw-owner-123"})
    assert response.status_code == 400 and "administrator" in response.content.decode()
    assert get_user_model().objects.filter(pk=owner.pk).exists()
