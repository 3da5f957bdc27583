"""Sign-up, log-in, settings, the dashboard, device claims, profiles and team pages."""

import re

import pytest
from django.contrib.auth import get_user_model

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
    assert page.context["form"].initial == {"name": "ada", "show_anonymous": False}
    response = member_client.post("/me/account/", {"name": "  Ada   Lovelace ",
                                                   "show_anonymous": "on"}, follow=True)
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
