"""The volunteer page's JSON endpoints in accounts: a claim code before the first Start
(it creates the device), the earnings panel, and the settings that follow an account."""

import json
import re

import pytest

from sparecycles.accounts import services
from sparecycles.volunteers.models import Device, DeviceClaimCode, Volunteer

pytestmark = pytest.mark.django_db

SETTINGS = {"workers": 2, "duty": 60, "background": False, "chargingOnly": True,
            "minBattery": 40, "pauseOnMetered": True, "wakeLock": False, "pauseUntil": 0,
            "scheduleOn": True, "scheduleFrom": "22:00", "scheduleTo": "06:30",
            "batteryHoldMin": 15, "pressure": True}


def test_a_browser_without_a_device_gets_one_with_its_claim_code(client):
    response = client.post("/devices/claim-code/", {})
    data = response.json()
    assert response.status_code == 200
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", data["code"])
    device = Device.objects.get()
    assert data["device_id"] == device.public_id
    assert device.token_hash == Device.hash_token(data["device_token"])
    assert DeviceClaimCode.objects.get().device == device
    # The page keeps the token: asking again shows a code for the same device, no new one.
    again = client.post("/devices/claim-code/", {"token": data["device_token"]}).json()
    assert "device_token" not in again and again["device_id"] == device.public_id
    assert Device.objects.count() == 1


def test_a_logged_in_browser_s_new_device_is_the_account_s(client, member):
    client.force_login(member.user)
    data = client.post("/devices/claim-code/", {}).json()
    device = Device.objects.get(token_hash=Device.hash_token(data["device_token"]))
    assert device.volunteer == member


def test_new_devices_per_address_are_limited(client, monkeypatch):
    monkeypatch.setattr(services, "ENROLS_PER_ADDRESS_PER_HOUR", 3)
    answers = [client.post("/devices/claim-code/", {}, REMOTE_ADDR="203.0.113.9")
               for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert Device.objects.count() == 3 and Volunteer.objects.count() == 3
    # Another address is not held back by that one.
    assert client.post("/devices/claim-code/", {}, REMOTE_ADDR="198.51.100.7").status_code == 200


def test_new_devices_per_ipv6_subscriber_are_limited_whatever_address_of_its_64(client,
                                                                                 monkeypatch):
    """Red team: the limit keyed on the exact address, and an IPv6 subscriber holds a /64
    (2**64 addresses): one new address per request minted devices without end."""
    monkeypatch.setattr(services, "ENROLS_PER_ADDRESS_PER_HOUR", 3)
    answers = [client.post("/devices/claim-code/", {}, REMOTE_ADDR=f"2001:db8:1:2::{n:x}")
               for n in range(1, 6)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert client.post("/devices/claim-code/", {},
                       REMOTE_ADDR="2001:db8:1:3::1").status_code == 200  # another /64


def test_earnings_of_a_device_that_computed(client, anonymous_browser):
    token, device = anonymous_browser
    data = client.get("/devices/earnings/", HTTP_X_DEVICE_TOKEN=token).json()
    assert data["credit_micro"] == 1_000_000          # one square task: 1 credit
    assert data["results_valid"] == 1 and data["rank"] == 1
    assert data["pending_credit_micro"] == 0 and data["tokens_micro"] == 0
    epoch = data["epoch"]
    assert epoch["index"] >= 0 and epoch["closes_at"]
    # Alone in the epoch so far: the whole emission is this volunteer's estimate.
    assert epoch["estimated_tokens_micro"] == epoch["emission_micro"] > 0


@pytest.mark.parametrize("headers", [{}, {"HTTP_X_DEVICE_TOKEN": "nope"},
                                     {"HTTP_X_DEVICE_TOKEN": "x" * 5000}])
def test_earnings_need_a_known_device(client, headers):
    response = client.get("/devices/earnings/", **headers)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_earnings_refuse_other_methods(client):
    assert client.post("/devices/earnings/").status_code == 405


def put(client, body, **extra):
    return client.put("/me/compute-settings/", body if isinstance(body, (str, bytes))
                      else json.dumps(body), content_type="application/json", **extra)


def test_settings_are_kept_with_the_account(client, member):
    client.force_login(member.user)
    assert client.get("/me/compute-settings/").json() == {"settings": None}
    saved = put(client, SETTINGS)
    assert saved.status_code == 200 and saved.json() == {"settings": SETTINGS}
    member.refresh_from_db()
    assert member.compute_settings == SETTINGS
    assert client.get("/me/compute-settings/").json() == {"settings": SETTINGS}


def test_settings_need_a_login(client):
    assert client.get("/me/compute-settings/").status_code == 401
    assert put(client, SETTINGS).status_code == 401


@pytest.mark.parametrize("change, field", [
    ({"duty": 7}, "duty"),
    ({"duty": 55.5}, "duty"),
    ({"workers": 0}, "workers"),
    ({"workers": "2"}, "workers"),
    ({"background": "yes"}, "background"),
    ({"minBattery": 100}, "minBattery"),
    ({"scheduleFrom": "25:00"}, "scheduleFrom"),
    ({"scheduleTo": "7am"}, "scheduleTo"),
    ({"scheduleTo": "<script>"}, "scheduleTo"),
    ({"scheduleTo": "07:00\n"}, "scheduleTo"),  # red team: "$" matched before a final newline
    ({"batteryHoldMin": 61}, "batteryHoldMin"),
    ({"pauseUntil": -1}, "pauseUntil"),
    ({"pauseUntil": 10**20}, "pauseUntil"),
    ({"evil": True}, "evil"),
])
def test_hostile_settings_are_refused_field_by_field(client, member, change, field):
    client.force_login(member.user)
    response = put(client, {**SETTINGS, **change})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"] and field in body["detail"]
    member.refresh_from_db()
    assert member.compute_settings == {}


def test_a_pause_beyond_a_week_is_refused(client, member):
    client.force_login(member.user)
    response = put(client, {**SETTINGS, "pauseUntil": 2**52})
    assert response.status_code == 400 and "pauseUntil" in response.json()["fields"]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "null", "[" * 3000, b"\xff\xfe"])
def test_bodies_that_are_not_a_settings_object_are_refused(client, member, body):
    client.force_login(member.user)
    response = put(client, body)
    assert response.status_code == 400 and response.json()["detail"]


def test_oversized_settings_are_refused(client, member):
    client.force_login(member.user)
    response = put(client, {**SETTINGS, "pad": "x" * 5000})
    assert response.status_code == 413


def test_settings_put_needs_the_csrf_token(member):
    from django.test import Client
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member.user)
    assert put(browser, SETTINGS).status_code == 403
    member.refresh_from_db()
    assert member.compute_settings == {}
