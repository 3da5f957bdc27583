import pytest

from sparecycles.volunteers.models import Device, Volunteer
from sparecycles.volunteers.services import device_connect

pytestmark = pytest.mark.django_db


def test_first_contact_enrols_an_anonymous_volunteer():
    session = device_connect(token=None, client_name="web", capabilities={"cores": 4})
    assert session.new_token
    assert session.device.token_hash == Device.hash_token(session.new_token)
    assert session.device.volunteer.name.startswith("Volunteer ")
    assert session.device.volunteer.user is None


def test_known_token_keeps_the_device():
    first = device_connect(token=None)
    again = device_connect(token=first.new_token, client_version="2.0")
    assert again.device.pk == first.device.pk and again.new_token is None
    assert again.device.client_version == "2.0"


def test_revoked_token_gets_a_new_device():
    first = device_connect(token=None)
    Device.objects.filter(pk=first.device.pk).update(revoked=True)
    again = device_connect(token=first.new_token)
    assert again.device.pk != first.device.pk and again.new_token


def test_logged_in_user_ties_new_devices_to_one_volunteer(owner):
    a = device_connect(token=None, user=owner).device
    b = device_connect(token=None, user=owner).device
    assert a.volunteer == b.volunteer == Volunteer.objects.get(user=owner)
