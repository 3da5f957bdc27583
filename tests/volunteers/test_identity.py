"""The one cpid function: BOINC's md5(cross_project_id + email) with a verified email, else
md5(cross_project_id); stable and unique per volunteer."""

import hashlib

import pytest
from django.utils import timezone

from sparecycles.accounts.services import account_create
from sparecycles.volunteers.identity import cpid, cpid_from
from sparecycles.volunteers.models import Volunteer

pytestmark = pytest.mark.django_db


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_cpid_is_boincs_md5_of_cross_project_id_and_verified_email():
    volunteer = account_create(username="ada", password="pw-ada-123456",
                               email="Ada@Example.org")
    xpid = volunteer.cross_project_id
    assert len(xpid) == 32 and int(xpid, 16) >= 0
    assert cpid(volunteer) == md5(xpid)                       # not verified yet
    volunteer.email_verified_at = timezone.now()
    assert cpid(volunteer) == md5(xpid + "ada@example.org")   # lower-cased, as BOINC stores it
    assert cpid_from(cross_project_id=xpid, verified_email="ada@example.org") == cpid(volunteer)
    volunteer.user.email = ""
    assert cpid(volunteer) == md5(xpid)                       # verified, but no address left


def test_cpids_are_stable_and_unique_without_email():
    volunteers = [Volunteer.objects.create(name=f"v{i}") for i in range(50)]
    ids = [cpid(v) for v in volunteers]
    assert len(set(ids)) == 50 and all(len(i) == 32 for i in ids)
    assert [cpid(Volunteer.objects.get(pk=v.pk)) for v in volunteers] == ids
