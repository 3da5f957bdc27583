"""Red team for issue 19's and 20's new surfaces: attacks that held (see README.md)."""

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from sparecycles.asgi import application
from sparecycles.volunteers.models import Device

HELLO = {"type": "hello", "protocol": 1, "device_token": None,
         "client": {"name": "test", "version": "1.0"}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/projects/squares/", "/ws/batches/1/"])
async def test_a_foreign_site_can_not_open_the_live_feeds(path, project):
    """Cross-site WebSocket hijacking: a page elsewhere opens the feed with the visitor's
    cookies. The Origin check refuses it before any consumer runs."""
    communicator = WebsocketCommunicator(application, path,
                                         headers=[(b"origin", b"https://evil.example"),
                                                  (b"host", b"localhost")])
    connected, _ = await communicator.connect()
    assert not connected
    if path.startswith("/ws/projects/"):  # the same request from the site itself is let in
        ours = WebsocketCommunicator(application, path, headers=[
            (b"origin", b"http://localhost"), (b"host", b"localhost")])
        assert (await ours.connect())[0]
        await ours.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("host", [{"os_name": "\ud800"}, {"p_model": "x" * 129},
                                  {"p_fpops": float("inf")}, {"timezone": "UTC"},
                                  {"os_name": ["Linux"]}, {"p_fpops": -1}, "Linux"])
async def test_a_hostile_host_object_makes_no_device(host):
    communicator = WebsocketCommunicator(application, "/ws/volunteer/")
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data=json.dumps({**HELLO, "host": host}))
    message = await communicator.receive_output(timeout=3)
    assert message["type"] == "websocket.close" and message["code"] == 4401
    assert not await Device.objects.aexists()


@pytest.mark.django_db
def test_a_host_outside_allowed_hosts_gets_no_reset_mail(client, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "a@example.org"},
                           HTTP_HOST="evil.example")
    assert response.status_code == 400 and mailoutbox == []


@pytest.mark.django_db
def test_a_claim_code_before_start_needs_the_csrf_token():
    """Another site can not make a visitor's browser mint devices (the claim code before the
    first Start creates one)."""
    response = Client(enforce_csrf_checks=True).post("/devices/claim-code/", {})
    assert response.status_code == 403 and not Device.objects.exists()


@pytest.mark.django_db
def test_server_status_counts_once_a_minute_whoever_asks(client, django_assert_num_queries):
    assert client.get("/server_status.json").status_code == 200
    with django_assert_num_queries(0):
        for path in ("/server_status.json", "/server_status.xml", "/server_status.php"):
            assert client.get(path).status_code == 200
