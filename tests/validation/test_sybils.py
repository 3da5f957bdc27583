"""Sybils count as one: devices of one volunteer, or behind one network, never settle a
quorum together, whatever they claim (issue 16, Build 1).

The network is the client address resolved at the edge (web/forwarded.py: forwarded
headers only from TRUSTED_PROXIES), grouped by scheduler.services.network_of.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import IntegrityError, transaction

from sparecycles.asgi import application
from sparecycles.projects.models import WorkUnit
from sparecycles.scheduler.models import Replica
from sparecycles.scheduler.services import network_of, tasks_dispatch
from sparecycles.validation.services import replica_report
from sparecycles.volunteers.models import Device
from sparecycles.web.forwarded import ForwardedHeadersMiddleware

V = Replica.ValidateState
HELLO = {"type": "hello", "protocol": 1, "device_token": None,
         "client": {"name": "sybil", "version": "1"},
         "capabilities": {"runtimes": ["pyodide"], "cores": 1, "memory_mb": 1024}}


def wrong(replica):
    return {"n": replica.workunit.input["n"], "square": -1}


def take(device, network=""):
    return tasks_dispatch(device=device, slots=1, network=network).replicas


@pytest.mark.django_db
def test_two_devices_of_one_volunteer_cannot_form_a_quorum(make_batch, make_device, establish):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    # The volunteer's first device is even established: its second still can't agree with it.
    veteran = establish(make_device().device)
    second = make_device().device
    Device.objects.filter(pk=second.pk).update(volunteer=veteran.volunteer)
    second.refresh_from_db()
    [replica] = take(veteran)
    replica_report(device=veteran, task_id=replica.task_id, ok=True, output=wrong(replica))
    for _ in range(3):
        assert take(second) == []     # asking again and again changes nothing
    # Nor can it be forced into the books: the database refuses a second replica.
    with pytest.raises(IntegrityError), transaction.atomic():
        Replica.objects.filter(server_state=Replica.ServerState.UNSENT).update(
            device=second, volunteer=second.volunteer, server_state="in_progress")
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN and workunit.canonical_output is None


@pytest.mark.django_db
@pytest.mark.parametrize("addresses", [("198.51.100.10", "198.51.100.77"),
                                       ("2001:db8:5:1::7", "2001:db8:5:2::9")])
def test_two_volunteers_behind_one_network_cannot_form_a_quorum(make_batch, make_device,
                                                                establish, addresses):
    make_batch(count=1, min_quorum=2, target_nresults=2)
    veteran, neighbour = establish(make_device().device), make_device().device
    assert veteran.volunteer_id != neighbour.volunteer_id
    here, there = (network_of(a) for a in addresses)
    assert here == there != ""
    [replica] = take(veteran, here)
    replica_report(device=veteran, task_id=replica.task_id, ok=True, output=wrong(replica))
    assert take(neighbour, there) == []
    workunit = WorkUnit.objects.get()
    assert workunit.state == WorkUnit.State.OPEN and workunit.canonical_output is None
    # A device elsewhere gets the other replica: the rule keeps work flowing.
    assert len(take(make_device().device, network_of("192.0.2.5"))) == 1


async def tasks_through_the_edge(app, peer: str, forwarded_for: str) -> list[dict]:
    """A fresh device on the real ASGI stack, from TCP peer `peer`, claiming
    `forwarded_for` in X-Forwarded-For: the tasks it is given."""
    communicator = WebsocketCommunicator(app, "/ws/volunteer/",
                                         headers=[(b"x-forwarded-for", forwarded_for.encode())])
    communicator.scope["client"] = [peer, 40000]  # the TCP peer, as daphne sets it
    connected, _ = await communicator.connect()
    assert connected
    try:
        await communicator.send_json_to(HELLO)
        assert (await communicator.receive_json_from())["type"] == "welcome"
        await communicator.send_json_to({"type": "request", "slots": 1})
        while True:
            frame = await communicator.receive_json_from(timeout=10)
            if frame["type"] == "tasks":
                return frame["tasks"]
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(make_batch):
    await sync_to_async(make_batch)(count=1, min_quorum=2, target_nresults=2)
    # TRUSTED_PROXIES is empty: both claims are a lie, both sockets are 203.0.113.7's network.
    first = await tasks_through_the_edge(application, "203.0.113.7", "10.1.1.5")
    second = await tasks_through_the_edge(application, "203.0.113.7", "10.2.2.5")
    assert len(first) == 1 and second == []
    networks = await sync_to_async(lambda: list(
        Replica.objects.exclude(device=None).values_list("network", flat=True)))()
    assert networks == ["203.0.113.0/24"]
    # The same headers from a trusted proxy are believed: the test can tell the difference.
    behind_proxy = ForwardedHeadersMiddleware(application.app, trusted_proxies=["203.0.113.7"])
    third = await tasks_through_the_edge(behind_proxy, "203.0.113.7", "10.3.3.5")
    assert len(third) == 1
