"""Account services: email change, the mail throttle and account deletion that keeps the books
balanced (credit totals, the token ledger, teams) while the name leaves every public page."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from sparecycles.accounts import services
from sparecycles.accounts.services import (
    AccountNotDeletable,
    account_create,
    account_delete,
    account_email_change,
    mail_allowed,
)
from sparecycles.credit.models import ProjectCredit, TeamCredit, VolunteerCredit
from sparecycles.ledger.selectors import volunteer_balance_micro
from sparecycles.ledger.services import epochs_close_due, ledger_init
from sparecycles.ledger.verify import verify_ledger
from sparecycles.volunteers.identity import cpid
from sparecycles.volunteers.models import Device, DeviceClaimCode, Team, Volunteer
from sparecycles.volunteers.services import (
    DELETED_NAME,
    device_connect,
    team_create,
    team_join,
    volunteer_anonymise,
    volunteer_email_verified,
)

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
NAME = "Zanzibar Quux"  # a name that appears nowhere else on any page


# --- email -------------------------------------------------------------------------------------
def test_account_create_keeps_an_optional_normalised_email(db):
    assert account_create(username="a", password=PASSWORD).user.email == ""
    volunteer = account_create(username="b", password=PASSWORD, email=" b@EXAMPLE.org ")
    assert volunteer.user.email == "b@example.org" and volunteer.email_verified_at is None


def test_changing_the_email_clears_its_verification(member):
    account_email_change(user=member.user, email="ada@example.org")
    assert volunteer_email_verified(volunteer=member, email="ada@example.org")
    member.refresh_from_db()
    verified_cpid = cpid(member)
    assert member.email_verified_at is not None
    assert not account_email_change(user=member.user, email="ADA@example.org")  # the same
    member.refresh_from_db()
    assert member.email_verified_at is not None
    assert account_email_change(user=member.user, email="lovelace@example.org")
    member.refresh_from_db()
    assert member.email_verified_at is None and member.user.email == "lovelace@example.org"
    assert cpid(member) != verified_cpid
    # The old address's link verifies nothing now.
    assert not volunteer_email_verified(volunteer=member, email="ada@example.org")
    member.refresh_from_db()
    assert member.email_verified_at is None
    assert account_email_change(user=member.user, email="")
    assert get_user_model().objects.get(pk=member.user_id).email == ""


def test_mail_throttle_per_recipient_and_per_address(db, monkeypatch):
    monkeypatch.setattr(services, "MAIL_PER_RECIPIENT", 2)
    monkeypatch.setattr(services, "MAIL_PER_ADDRESS", 3)
    assert mail_allowed(client_address="10.0.0.1", recipient="x@example.org")
    assert mail_allowed(client_address="10.0.0.2", recipient="X@example.org")
    assert not mail_allowed(client_address="10.0.0.3", recipient="x@example.org")
    assert mail_allowed(client_address="10.0.0.1", recipient="y@example.org")
    assert mail_allowed(client_address="10.0.0.1", recipient="z@example.org")  # 3rd
    assert not mail_allowed(client_address="10.0.0.1", recipient="w@example.org")  # 4th


def test_mail_throttle_counts_an_ipv6_64_as_one_address(db, monkeypatch):
    """Red team: a fresh IPv6 address of the same /64 per request escaped the limit."""
    monkeypatch.setattr(services, "MAIL_PER_ADDRESS", 2)
    answers = [mail_allowed(client_address=f"2001:db8::{n}", recipient=f"r{n}@example.org")
               for n in range(1, 5)]
    assert answers == [True, True, False, False]


# --- deletion -----------------------------------------------------------------------------------
@pytest.fixture
def world(make_batch, earn):
    """ada (founder of a team with grace in it) earned credit paid out in a closed epoch."""
    ledger_init(now=timezone.now())
    make_batch(count=4)
    ada = account_create(username="ada", password=PASSWORD, email="ada@example.org")
    volunteer_email_verified(volunteer=ada, email="ada@example.org")
    grace = account_create(username="grace", password=PASSWORD)
    ada.name = NAME
    ada.save()
    team = team_create(founder=ada, name="Prime Hunters")
    team_join(volunteer=grace, team=team)
    session = device_connect(token=None, user=ada.user, capabilities={"runtimes": ["pyodide"]})
    device = session.device
    device.name = f"{NAME}'s laptop"
    device.save()
    earn(device)
    earn(device_connect(token=None, user=grace.user,
                        capabilities={"runtimes": ["pyodide"]}).device)
    epochs_close_due(now=timezone.now() + dt.timedelta(days=2))
    DeviceClaimCode.objects.create(device=device, code="ABCD2345",
                                   expires_at=timezone.now() + dt.timedelta(minutes=5))
    ada.refresh_from_db()
    return {"ada": ada, "grace": grace, "team": team, "device": device,
            "token": session.new_token}


PUBLIC_PAGES = ["/leaderboards/volunteers/", "/leaderboards/volunteers/?order=rac",
                "/leaderboards/api/volunteers", "/leaderboards/teams/",
                "/leaderboards/projects/squares/", "/leaderboards/api/projects/squares",
                "/projects/squares/", "/teams/", "/teams/prime-hunters/", "/ledger/",
                "/ledger/epochs/0/", "/ledger/api/epochs/0"]


def public_text(volunteer_id: int) -> str:
    client = Client()
    pages = PUBLIC_PAGES + [f"/volunteers/{volunteer_id}/", f"/ledger/volunteers/{volunteer_id}/",
                            f"/ledger/api/accounts/volunteer-{volunteer_id}"]
    text = []
    for url in pages:
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        text.append(response.content.decode())
    return "\n".join(text)


def test_deleting_an_account_keeps_the_books_and_removes_the_name(world):
    ada, team = world["ada"], world["team"]
    assert NAME in public_text(ada.pk)
    before = {
        "volunteer": VolunteerCredit.objects.get(pk=ada.pk).credit_micro,
        "team": TeamCredit.objects.get(pk=team.pk).credit_micro,
        "projects": sorted(ProjectCredit.objects.values_list("pk", "credit_micro")),
        "tokens": volunteer_balance_micro(ada.pk),
        "cross_project_id": ada.cross_project_id,
    }
    assert before["tokens"] > 0 and before["volunteer"] > 0
    user_id = ada.user_id

    deleted = account_delete(user=ada.user)

    assert not get_user_model().objects.filter(pk=user_id).exists()
    ada = Volunteer.objects.get(pk=ada.pk)
    assert ada.user is None and ada.deleted_at is not None
    assert (ada.name, ada.public_name, ada.team_id) == (DELETED_NAME, "Anonymous", None)
    assert ada.email_verified_at is None and deleted.pk == ada.pk
    assert ada.cross_project_id == before["cross_project_id"]  # never changes
    # Credit stays in every total; the ledger keeps the account and its tokens.
    assert VolunteerCredit.objects.get(pk=ada.pk).credit_micro == before["volunteer"]
    assert TeamCredit.objects.get(pk=team.pk).credit_micro == before["team"]
    assert sorted(ProjectCredit.objects.values_list("pk", "credit_micro")) == before["projects"]
    assert volunteer_balance_micro(ada.pk) == before["tokens"]
    assert verify_ledger().ok
    call_command("verify_ledger")  # the command exits non-zero on a broken ledger
    # The founder's team stays, without a founder, one member fewer.
    team.refresh_from_db()
    assert (team.founder_id, team.member_count) == (None, 1)
    # Devices are revoked (their tokens stop working), their claim codes gone.
    device = Device.objects.get(pk=world["device"].pk)
    assert device.revoked and device.name == ""
    assert not DeviceClaimCode.objects.filter(device=device).exists()
    # The name appears nowhere public.
    text = public_text(ada.pk)
    assert NAME not in text and "ada@example.org" not in text
    assert "Anonymous" in text and "Prime Hunters" in text


def test_deleting_twice_changes_nothing_more(world):
    ada = world["ada"]
    user = ada.user
    account_delete(user=user)
    first = Volunteer.objects.get(pk=ada.pk).deleted_at
    with pytest.raises(get_user_model().DoesNotExist):
        account_delete(user=user)            # the login is gone
    volunteer_anonymise(volunteer=ada)        # the identity step again: idempotent
    again = Volunteer.objects.get(pk=ada.pk)
    assert again.deleted_at == first
    assert Team.objects.get(pk=world["team"].pk).member_count == 1
    assert verify_ledger().ok


def test_staff_accounts_are_not_deleted_here(owner):
    owner.is_staff = True
    owner.save()
    with pytest.raises(AccountNotDeletable):
        account_delete(user=owner)
    assert get_user_model().objects.filter(pk=owner.pk).exists()


def test_a_deleted_volunteers_device_token_no_longer_works(world):
    ada, device, token = world["ada"], world["device"], world["token"]
    assert device_connect(token=token).device.pk == device.pk
    account_delete(user=ada.user)
    fresh = device_connect(token=token)
    assert fresh.device.pk != device.pk and fresh.device.volunteer_id != ada.pk
    assert fresh.new_token and Volunteer.objects.get(pk=ada.pk).devices.count() == 1


def test_a_deleted_account_keeps_the_cpid_stats_sites_knew(member, tmp_path):
    """user_deleted names the cpid the exports gave the account (BOINC's
    user_deleted.public_cross_project_id), though the email that made it is gone."""
    from sparecycles.credit.stats_export import user_deleted_rows

    account_email_change(user=member.user, email="ada@example.org")
    assert volunteer_email_verified(volunteer=member, email="ada@example.org")
    member.refresh_from_db()
    known = cpid(member)
    assert known != cpid(Volunteer(cross_project_id=member.cross_project_id))
    account_delete(user=member.user)
    member.refresh_from_db()
    assert member.user_id is None and member.deleted_cpid == known
    assert {"id": member.pk, "cpid": known} in list(user_deleted_rows())
