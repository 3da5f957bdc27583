"""The `stats` frame carries credit unrounded (+ exact credit_micro): real work never reads 0.0."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from sparecycles.asgi import application
from sparecycles.credit.models import VolunteerCredit
from sparecycles.credit.selectors import volunteer_stats
from sparecycles.credit.templatetags.credit_format import format_credit
from sparecycles.projects.services import QuorumParams, app_version_create, batch_create
from sparecycles.volunteers.models import Device, Volunteer

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"type": "hello", "protocol": 1, "device_token": None,
         "client": {"name": "test", "version": "1.0"},
         "capabilities": {"runtimes": ["pyodide"], "cores": 2, "memory_mb": 1024}}
SMALL = b"def main(input):\n    return {'n': input['n']}\n"


def tiny_batch(app):
    # 432e9 FLOPs is one credit: this app's unit is worth about 31 micro-credits.
    version = app_version_create(app=app, code=SMALL, flops_per_unit=432e9 * 31e-6)
    return batch_create(app_version=version, name="tiny", inputs=[{"n": 1}],
                        quorum=QuorumParams())


async def test_a_tiny_grant_shows_above_zero_in_the_stats_frame(app):
    await sync_to_async(tiny_batch)(app)
    communicator = WebsocketCommunicator(application, "/ws/volunteer/")
    assert (await communicator.connect())[0]
    await communicator.send_json_to(HELLO)
    welcome = await communicator.receive_json_from()
    assert welcome["volunteer"]["credit"] == 0 and welcome["volunteer"]["credit_micro"] == 0
    await communicator.send_json_to({"type": "request", "slots": 1})
    [task] = (await communicator.receive_json_from())["tasks"]
    await communicator.send_json_to({"type": "result", "task_id": task["task_id"],
                                     "status": "ok", "output": {"n": 1}, "elapsed_ms": 5})
    assert (await communicator.receive_json_from())["accepted"] is True
    stats = await communicator.receive_json_from(timeout=10)
    await communicator.disconnect()
    device = await Device.objects.aget()  # the only one
    held = (await VolunteerCredit.objects.aget(pk=device.volunteer_id)).credit_micro
    assert stats["type"] == "stats"
    assert held > 0 and stats["credit_micro"] == held
    assert stats["credit"] == held / 1_000_000 and stats["credit"] > 0
    assert format_credit(stats["credit"]) != "0.000000"


def test_volunteer_stats_keep_every_micro_credit(db):
    volunteer = Volunteer.objects.create(name="tiny")
    VolunteerCredit.objects.create(volunteer=volunteer, credit_micro=31)
    stats = volunteer_stats(volunteer_id=volunteer.pk)
    assert stats["credit"] == 0.000031 and stats["credit_micro"] == 31
