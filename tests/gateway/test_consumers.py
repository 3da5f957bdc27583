"""The volunteer socket, message by message, through the real ASGI stack (PROTOCOL.md v1)."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from sparecycles.asgi import application
from sparecycles.projects.models import WorkUnit
from sparecycles.volunteers.models import Device

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"type": "hello", "protocol": 1, "device_token": None,
         "client": {"name": "test", "version": "1.0"},
         "capabilities": {"runtimes": ["pyodide"], "cores": 2, "memory_mb": 1024,
                          "mobile": False}}


async def connect(headers=None):
    communicator = WebsocketCommunicator(application, "/ws/volunteer/", headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def hello(token=None):
    communicator = await connect()
    await communicator.send_json_to({**HELLO, "device_token": token})
    welcome = await communicator.receive_json_from()
    return communicator, welcome


async def closed_with(communicator) -> int:
    message = await communicator.receive_output(timeout=2)
    assert message["type"] == "websocket.close"
    return message.get("code")


async def test_hello_issues_a_device_token_once():
    communicator, welcome = await hello()
    assert welcome["type"] == "welcome" and welcome["protocol"] == 1
    assert welcome["device_id"].startswith("d")
    assert welcome["max_inflight"] >= 1 and welcome["heartbeat_s"] > 0
    assert set(welcome["volunteer"]) == {"name", "credit", "credit_micro", "tokens"}
    token = welcome["device_token"]
    await communicator.disconnect()
    # The server keeps only a hash of the token.
    assert not await Device.objects.filter(token_hash=token).aexists()
    again, second = await hello(token)
    assert second["device_id"] == welcome["device_id"]
    assert "device_token" not in second
    await again.disconnect()


async def test_unknown_token_gets_a_new_device():
    communicator, welcome = await hello("not-a-token-we-issued")
    assert "device_token" in welcome
    await communicator.disconnect()


async def test_anything_before_hello_closes_4401():
    communicator = await connect()
    await communicator.send_json_to({"type": "ping"})
    assert await closed_with(communicator) == 4401


async def test_garbage_before_hello_closes_4401():
    communicator = await connect()
    await communicator.send_to(text_data="{nope")
    assert await closed_with(communicator) == 4401


async def test_wrong_protocol_version_is_told_and_closed():
    communicator = await connect()
    await communicator.send_json_to({**HELLO, "protocol": 99})
    error = await communicator.receive_json_from()
    assert error["code"] == "unsupported_protocol"
    assert await closed_with(communicator) == 4402


async def test_ping_pong():
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


@pytest.mark.parametrize("frame, code", [
    ("not json", "bad_frame"),
    ("[1, 2]", "bad_frame"),
    ('{"no": "type"}', "bad_frame"),
    ('{"type": "launch_missiles"}', "unknown_type"),
    ('{"type": "request", "slots": "many"}', "invalid"),
    ('{"type": "result", "task_id": "x", "status": "maybe"}', "invalid"),
    ('{"type": "progress", "task_id": "x", "fraction": 7}', "invalid"),
    ('{"type": "hello", "protocol": 1}', "bad_frame"),
])
async def test_bad_frames_get_an_error_reply(frame, code):
    communicator, _ = await hello()
    await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from()
    assert error["type"] == "error" and error["code"] == code and error["message"]
    await communicator.send_json_to({"type": "ping"})  # the socket still works
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_binary_frames_are_refused():
    communicator, _ = await hello()
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert (await communicator.receive_json_from())["code"] == "bad_frame"
    await communicator.disconnect()


async def test_repeated_violations_close_4400(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_VIOLATIONS": 3}
    communicator, _ = await hello()
    for _ in range(3):
        await communicator.send_to(text_data="nope")
        assert (await communicator.receive_json_from())["type"] == "error"
    assert await closed_with(communicator) == 4400


async def test_oversize_frame_closes_1009(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_FRAME_BYTES": 1000}
    communicator, _ = await hello()
    await communicator.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 2000}))
    assert await closed_with(communicator) == 1009


async def test_request_result_ack_round_trip(make_batch):
    await make_batch_async(make_batch, count=2)
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "request", "slots": 1})
    tasks = await communicator.receive_json_from()
    assert tasks["type"] == "tasks" and tasks["retry_after_s"] == 0
    [task] = tasks["tasks"]
    n = task["input"]["n"]
    await communicator.send_json_to({"type": "progress", "task_id": task["task_id"],
                                     "fraction": 0.5})
    await communicator.send_json_to({"type": "result", "task_id": task["task_id"],
                                     "status": "ok", "output": {"n": n, "square": n * n},
                                     "elapsed_ms": 12})
    ack = await communicator.receive_json_from()
    assert ack == {"type": "ack", "task_id": task["task_id"], "accepted": True}
    # Validation (quorum 1) granted credit: the device is told its new stats.
    stats = await communicator.receive_json_from()
    assert stats["type"] == "stats" and stats["credit"] == 1.0 and stats["rank"] == 1
    assert set(stats) == {"type", "credit", "credit_micro", "rac", "tokens", "rank"}
    # Resending an accepted result is a harmless duplicate.
    await communicator.send_json_to({"type": "result", "task_id": task["task_id"],
                                     "status": "ok", "output": {"n": n, "square": 0}})
    duplicate = await communicator.receive_json_from()
    assert duplicate["accepted"] is True and duplicate["duplicate"] is True
    await communicator.disconnect()
    completed = [wu async for wu in WorkUnit.objects.filter(state="completed")]
    assert [wu.canonical_output for wu in completed] == [{"n": n, "square": n * n}]


async def test_error_result_is_acknowledged(make_batch):
    await make_batch_async(make_batch, count=1)
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "request", "slots": 1})
    [task] = (await communicator.receive_json_from())["tasks"]
    await communicator.send_json_to({"type": "result", "task_id": task["task_id"],
                                     "status": "error", "error": "MemoryError: out of memory",
                                     "elapsed_ms": 88})
    assert (await communicator.receive_json_from())["accepted"] is True
    await communicator.disconnect()


async def test_empty_tasks_come_with_retry_after():
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "request", "slots": 2})
    tasks = await communicator.receive_json_from()
    assert tasks["tasks"] == [] and tasks["retry_after_s"] > 0
    await communicator.disconnect()


async def test_result_for_another_devices_task_is_refused(make_batch):
    await make_batch_async(make_batch, count=1)
    mine, _ = await hello()
    await mine.send_json_to({"type": "request", "slots": 1})
    [task] = (await mine.receive_json_from())["tasks"]
    thief, _ = await hello()
    await thief.send_json_to({"type": "result", "task_id": task["task_id"], "status": "ok",
                              "output": {"square": 0}})
    ack = await thief.receive_json_from()
    assert ack == {"type": "ack", "task_id": task["task_id"], "accepted": False,
                   "reason": "not_assigned"}
    await thief.send_json_to({"type": "result", "task_id": "made-up", "status": "ok",
                              "output": {}})
    assert (await thief.receive_json_from())["reason"] == "unknown_task"
    await mine.disconnect()
    await thief.disconnect()


async def test_oversized_output_is_refused_too_large(make_batch, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_OUTPUT_BYTES": 100}
    await make_batch_async(make_batch, count=1)
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "request", "slots": 1})
    [task] = (await communicator.receive_json_from())["tasks"]
    await communicator.send_json_to({"type": "result", "task_id": task["task_id"],
                                     "status": "ok", "output": {"blob": "x" * 500}})
    ack = await communicator.receive_json_from()
    assert ack["accepted"] is False and ack["reason"] == "too_large"
    await communicator.disconnect()


async def test_an_output_with_nan_is_refused_invalid_and_the_task_can_be_resent(make_batch):
    """Red team (issue 14): NaN got past the edge and sank a whole intake batch."""
    await make_batch_async(make_batch, count=1)
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "request", "slots": 1})
    [task] = (await communicator.receive_json_from())["tasks"]
    frame = json.dumps({"type": "result", "task_id": task["task_id"], "status": "ok",
                        "output": {"x": float("nan")}})
    assert "NaN" in frame   # Python writes it; JSON has no such number
    await communicator.send_to(text_data=frame)
    ack = await communicator.receive_json_from()
    assert ack == {"type": "ack", "task_id": task["task_id"], "accepted": False,
                   "reason": "invalid"}
    error = await communicator.receive_json_from()
    assert error["type"] == "error" and "NaN" in error["message"]
    await communicator.send_json_to({"type": "result", "task_id": task["task_id"],
                                     "status": "ok", "output": {"x": 1}})
    assert (await communicator.receive_json_from())["accepted"] is True
    await communicator.disconnect()


async def test_cancel_is_pushed_when_a_workunit_finishes_elsewhere(make_batch):
    await make_batch_async(make_batch, count=1, target_nresults=2)
    slow, _ = await hello()
    await slow.send_json_to({"type": "request", "slots": 1})
    [slow_task] = (await slow.receive_json_from())["tasks"]
    fast, _ = await hello()
    await fast.send_json_to({"type": "request", "slots": 1})
    [fast_task] = (await fast.receive_json_from())["tasks"]
    await fast.send_json_to({"type": "result", "task_id": fast_task["task_id"], "status": "ok",
                             "output": {"n": 1, "square": 1}})
    assert (await fast.receive_json_from())["accepted"] is True
    assert (await fast.receive_json_from())["type"] == "stats"
    assert await slow.receive_json_from() == {"type": "cancel",
                                              "task_ids": [slow_task["task_id"]]}
    await slow.disconnect()
    await fast.disconnect()


async def test_browser_origin_must_be_an_allowed_host():
    communicator = WebsocketCommunicator(application, "/ws/volunteer/",
                                         headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
    good = await connect(headers=[(b"origin", b"http://localhost:8000")])
    await good.disconnect()


async def make_batch_async(make_batch, **kwargs):
    return await sync_to_async(make_batch)(**kwargs)


async def test_hello_host_fields_reach_the_device_and_an_old_hello_keeps_them():
    host = {"os_name": "Android", "os_version": "14", "p_vendor": "arm",
            "p_model": "Chrome 131 (arm 64-bit)", "p_fpops": 1.5e9, "timezone": -18000}
    communicator = await connect()
    await communicator.send_json_to({**HELLO, "host": host})
    welcome = await communicator.receive_json_from()
    await communicator.disconnect()
    device = await Device.objects.aget(pk=int(welcome["device_id"][1:]))
    assert {k: getattr(device, k) for k in host} == host
    assert len(device.host_cpid) == 32
    again, _ = await hello(welcome["device_token"])  # an old client: no host object
    await again.disconnect()
    device = await Device.objects.aget(pk=device.pk)
    assert device.os_name == "Android" and device.p_fpops == 1.5e9


async def test_a_hello_with_a_hostile_host_object_is_refused_not_a_device():
    communicator = await connect()
    await communicator.send_json_to({**HELLO, "host": {"os_name": "x\x07" * 40}})
    assert await closed_with(communicator) == 4401  # an invalid hello is no hello
    assert not await Device.objects.aexists()


async def test_what_a_client_says_of_itself_is_stored_without_control_characters():
    """Red team: hello's client name and version had no character check; they become the
    device's label on the dashboard and in a claiming account's messages."""
    communicator = await connect()
    await communicator.send_json_to({**HELLO, "client": {"name": "evil\x1b[2J\x07",
                                                         "version": "1\r\n2"},
                                     "host": {"p_model": "Chrome\ufffe 131"}})
    welcome = await communicator.receive_json_from()
    await communicator.disconnect()
    device = await Device.objects.aget(pk=int(welcome["device_id"][1:]))
    assert (device.client_name, device.client_version) == ("evil[2J", "1 2")
    assert device.p_model == "Chrome 131" and "\x1b" not in device.label


async def test_a_deleted_accounts_open_socket_closes_4403_and_its_token_is_dead():
    """Deleting an account revokes its devices: a socket already open closes at once, and
    the old token reconnects only as a new device."""
    from asgiref.sync import sync_to_async

    from sparecycles.volunteers.services import volunteer_anonymise

    communicator, welcome = await hello()
    token = welcome["device_token"]
    device = await Device.objects.select_related("volunteer").aget(
        pk=int(welcome["device_id"][1:]))
    await sync_to_async(volunteer_anonymise)(volunteer=device.volunteer)
    assert await closed_with(communicator) == 4403
    again, second = await hello(token)
    assert second["device_id"] != welcome["device_id"] and "device_token" in second
    await again.disconnect()


async def test_one_grant_pass_is_one_message_and_only_the_granted_devices_hear_of_it(
        make_batch, make_device, sent_to_groups):
    """A validation pass granting several devices sends one channel-layer message naming
    them (events.STATS_GROUP); the process's pusher pushes `stats` to those of its sockets,
    and a connected device that earned nothing gets no frame."""
    from sparecycles.events import STATS_GROUP
    from sparecycles.scheduler.intake import Report, results_store
    from sparecycles.scheduler.services import tasks_dispatch
    from sparecycles.validation.services import workunits_validate

    def setup():
        make_batch(count=3, min_quorum=1, target_nresults=1)
        return [make_device() for _ in range(4)]

    sessions = await sync_to_async(setup)()
    sockets = []
    for session in sessions:
        communicator, _ = await hello(session.new_token)
        sockets.append(communicator)
    granted, idle = [s.device for s in sessions[:3]], sessions[3].device

    def validate_in_one_pass():
        replicas = [tasks_dispatch(device=device, slots=1).replicas[0] for device in granted]
        results_store([Report(device_id=r.device_id, task_id=r.task_id, ok=True,
                              output={"x": 1}) for r in replicas])
        workunits_validate(workunit_ids=[r.workunit_id for r in replicas])

    sent_to_groups.clear()
    await sync_to_async(validate_in_one_pass)()
    for communicator in sockets[:3]:
        stats = await communicator.receive_json_from()
        assert stats["type"] == "stats" and stats["credit"] == 1.0
        assert set(stats) == {"type", "credit", "credit_micro", "rac", "tokens", "rank"}
    assert await sockets[3].receive_nothing(timeout=0.5)
    stats_sends = [(group, message) for group, message in sent_to_groups
                   if message["type"] == "stats.changed"]
    assert stats_sends == [(STATS_GROUP, {"type": "stats.changed",
                                          "device_ids": sorted(d.pk for d in granted)})]
    assert not [group for group, _ in sent_to_groups if group.startswith("device.")]
    assert idle.pk not in stats_sends[0][1]["device_ids"]
    for communicator in sockets:
        await communicator.disconnect()


async def test_a_stats_nudge_to_the_devices_own_group_still_pushes_stats():
    """Compatibility: `stats.changed` sent to `device.{id}` (an older process's way)."""
    from channels.layers import get_channel_layer

    from sparecycles.events import device_group

    communicator, welcome = await hello()
    await get_channel_layer().group_send(device_group(int(welcome["device_id"][1:])),
                                         {"type": "stats.changed"})
    stats = await communicator.receive_json_from()
    assert stats["type"] == "stats" and stats["credit"] == 0.0
    await communicator.disconnect()


def _hold_dispatch(monkeypatch):
    """Dispatch transactions wait until the returned event is set (then run for real);
    the first returned event says one has begun."""
    import threading

    from sparecycles.gateway import batching

    entered, release = threading.Event(), threading.Event()
    real = batching.tasks_dispatch_many

    def held(asks, **kwargs):
        entered.set()
        release.wait(timeout=20)
        return real(asks, **kwargs)

    monkeypatch.setattr(batching, "tasks_dispatch_many", held)
    return entered, release


async def _until(event, seconds=10):
    import asyncio

    async with asyncio.timeout(seconds):
        while not event.is_set():
            await asyncio.sleep(0.01)


async def _answers_meanwhile(worker, task) -> None:
    """`worker` (holding `task`) gets its pong, and on PostgreSQL its result's ack, now."""
    from django.db import connection

    await worker.send_json_to({"type": "ping"})
    assert (await worker.receive_json_from(timeout=5))["type"] == "pong"
    if connection.vendor == "postgresql":  # SQLite has one writer: the store waits
        n = task["input"]["n"]
        await worker.send_json_to({"type": "result", "task_id": task["task_id"],
                                   "status": "ok", "output": {"n": n, "square": n * n},
                                   "elapsed_ms": 12})
        ack = await worker.receive_json_from(timeout=5)
        assert ack == {"type": "ack", "task_id": task["task_id"], "accepted": True}


async def test_a_result_is_acknowledged_while_a_dispatch_batch_is_in_the_database(
        make_batch, monkeypatch):
    """Nothing a socket does waits for another socket's dispatch transaction: the dispatch
    runs in a thread of its own, and no frame hops to the thread it used to share."""
    await make_batch_async(make_batch, count=4)
    worker, _ = await hello()
    await worker.send_json_to({"type": "request", "slots": 1})
    [task] = (await worker.receive_json_from())["tasks"]
    entered, release = _hold_dispatch(monkeypatch)
    asker, _ = await hello()
    await asker.send_json_to({"type": "request", "slots": 1})
    try:
        await _until(entered)
        await _answers_meanwhile(worker, task)
    finally:
        release.set()
    assert (await asker.receive_json_from(timeout=10))["type"] == "tasks"
    await worker.disconnect()
    await asker.disconnect()


async def test_a_socket_answers_its_other_frames_while_its_own_request_waits(
        make_batch, monkeypatch):
    """A request waits for its dispatch batch (which may gather for company) beside the
    socket's frame loop: the same socket's ping, and a result's ack, are answered
    meanwhile, and the tasks frame follows when the batch is done."""
    await make_batch_async(make_batch, count=4)
    worker, _ = await hello()
    await worker.send_json_to({"type": "request", "slots": 1})
    [task] = (await worker.receive_json_from())["tasks"]
    entered, release = _hold_dispatch(monkeypatch)
    await worker.send_json_to({"type": "request", "slots": 1})
    try:
        await _until(entered)
        await _answers_meanwhile(worker, task)
    finally:
        release.set()
    tasks = await worker.receive_json_from(timeout=10)
    assert tasks["type"] == "tasks" and len(tasks["tasks"]) == 1
    assert tasks["tasks"][0]["task_id"] != task["task_id"]
    await worker.disconnect()


async def test_a_flood_of_requests_waits_in_a_bounded_line_and_gets_no_more_tasks(
        make_batch, monkeypatch, settings):
    """A socket's requests are served one at a time, in order; past MAX_WAITING_REQUESTS
    waiting, a request is answered at once with no tasks and a retry_after_s. However
    many it sends, a device never holds more than max_inflight tasks."""
    from sparecycles.gateway.consumers import MAX_WAITING_REQUESTS

    await make_batch_async(make_batch, count=12)
    entered, release = _hold_dispatch(monkeypatch)
    flooder, welcome = await hello()
    sent = 1 + MAX_WAITING_REQUESTS + 3  # one served, a full line, three more
    for _ in range(sent):
        await flooder.send_json_to({"type": "request", "slots": 4})
    try:
        await _until(entered)
        for _ in range(3):  # the three past the line, answered while the first is held
            refused = await flooder.receive_json_from(timeout=5)
            assert refused["type"] == "tasks" and refused["tasks"] == []
            assert refused["retry_after_s"] == settings.SPARECYCLES["RETRY_AFTER_S"] > 0
    finally:
        release.set()
    given: list[str] = []
    for _ in range(sent - 3):
        answer = await flooder.receive_json_from(timeout=10)
        assert answer["type"] == "tasks"
        given += [t["task_id"] for t in answer["tasks"]]
    assert len(given) == len(set(given)) == welcome["max_inflight"]
    assert await flooder.receive_nothing(timeout=0.3)
    await flooder.disconnect()


async def test_a_cancel_for_tasks_being_sent_follows_their_tasks_frame(make_batch, monkeypatch):
    """A `cancel` for tasks a request just claimed, arriving while its `tasks` frame is on
    the way, goes after that frame: a client told "cancel T" before "tasks [T]" would run
    T. (Found by a red-team review of requests served beside the frame loop.)"""
    import time

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from sparecycles.events import device_group
    from sparecycles.gateway import batching

    await make_batch_async(make_batch, count=4)
    worker, welcome = await hello()
    real = batching.tasks_dispatch_many

    def cancelled_at_once(asks, **kwargs):  # validation cancels them right after the claim
        dispatched = real(asks, **kwargs)
        task_ids = [r.task_id for d in dispatched for r in d.replicas]
        async_to_sync(get_channel_layer().group_send)(
            device_group(int(welcome["device_id"][1:])),
            {"type": "tasks.cancel", "task_ids": task_ids})
        time.sleep(0.3)  # the window between the commit and the tasks frame, widened
        return dispatched

    monkeypatch.setattr(batching, "tasks_dispatch_many", cancelled_at_once)
    await worker.send_json_to({"type": "request", "slots": 1})
    first = await worker.receive_json_from(timeout=10)
    second = await worker.receive_json_from(timeout=10)
    assert first["type"] == "tasks" and second["type"] == "cancel"
    assert second["task_ids"] == [t["task_id"] for t in first["tasks"]] != []
    # Cancelled, so no longer held: the next request is an urgent one again, and the
    # socket still serves it.
    monkeypatch.setattr(batching, "tasks_dispatch_many", real)
    await worker.send_json_to({"type": "request", "slots": 1})
    assert (await worker.receive_json_from(timeout=10))["type"] == "tasks"
    await worker.disconnect()


async def test_a_socket_that_closes_while_its_ask_waits_claims_nothing(make_batch, monkeypatch):
    """An ask waiting for its dispatch batch when its socket closes is dropped, so no task
    goes in flight to a device that is not listening (it would sit there until its
    deadline unless the device came back)."""
    import asyncio

    from sparecycles.scheduler.models import Replica

    await make_batch_async(make_batch, count=4)
    entered, release = _hold_dispatch(monkeypatch)
    first, _ = await hello()
    await first.send_json_to({"type": "request", "slots": 1})  # its batch is held
    leaver, welcome = await hello()
    try:
        await _until(entered)
        await leaver.send_json_to({"type": "request", "slots": 2})  # waits for the next batch
        await asyncio.sleep(0.2)
        await leaver.disconnect()
    finally:
        release.set()
    assert (await first.receive_json_from(timeout=10))["type"] == "tasks"
    await asyncio.sleep(0.5)  # the next batch would have gone by now
    device_id = int(welcome["device_id"][1:])
    assert not await Replica.objects.filter(device_id=device_id).aexists()
    await first.disconnect()


async def test_a_socket_the_server_closes_serves_no_more_requests(make_batch, monkeypatch):
    """A revoked device's socket closes (4403) with requests still waiting: they are
    dropped, so no `tasks` frame follows the close and no more tasks are claimed than the
    one ask already inside its batch. (Found by a red-team review.)"""
    import asyncio

    from channels.layers import get_channel_layer

    from sparecycles.events import device_group
    from sparecycles.scheduler.models import Replica

    await make_batch_async(make_batch, count=8)
    entered, release = _hold_dispatch(monkeypatch)
    worker, welcome = await hello()
    device_id = int(welcome["device_id"][1:])
    for _ in range(3):
        await worker.send_json_to({"type": "request", "slots": 1})
    try:
        await _until(entered)
        await get_channel_layer().group_send(device_group(device_id),
                                             {"type": "device.revoked"})
        closed = await worker.receive_output(timeout=5)
        assert closed["type"] == "websocket.close" and closed["code"] == 4403
    finally:
        release.set()
    await asyncio.sleep(1.0)  # the held batch, and any that would follow, are done
    assert await worker.receive_nothing(timeout=0.3)
    assert await Replica.objects.filter(device_id=device_id).acount() <= 1
    await worker.disconnect()


async def test_a_cancel_of_a_task_already_held_goes_at_once_while_a_request_waits(
        make_batch, monkeypatch):
    """Only a cancel that may concern the coming `tasks` frame waits for it: one for a task
    the socket sent before goes at once."""
    from channels.layers import get_channel_layer

    from sparecycles.events import device_group

    await make_batch_async(make_batch, count=4)
    worker, welcome = await hello()
    await worker.send_json_to({"type": "request", "slots": 1})
    [held] = (await worker.receive_json_from())["tasks"]
    entered, release = _hold_dispatch(monkeypatch)
    await worker.send_json_to({"type": "request", "slots": 1})
    try:
        await _until(entered)
        await get_channel_layer().group_send(
            device_group(int(welcome["device_id"][1:])),
            {"type": "tasks.cancel", "task_ids": [held["task_id"]]})
        cancel = await worker.receive_json_from(timeout=5)
        assert cancel == {"type": "cancel", "task_ids": [held["task_id"]]}
    finally:
        release.set()
    assert (await worker.receive_json_from(timeout=10))["type"] == "tasks"
    await worker.disconnect()


async def test_a_dispatch_batch_that_goes_wrong_does_not_stop_the_feeder(make_batch, monkeypatch):
    """However a batch fails (here: more answers than asks, after its asks got theirs),
    the process's feeder goes on serving the next asks: a dead feeder would leave every
    later request of the process waiting for ever."""
    from sparecycles.gateway import batching

    await make_batch_async(make_batch, count=4)
    real, calls = batching.tasks_dispatch_many, []

    def mismatched_once(asks, **kwargs):
        dispatched = real(asks, **kwargs)
        calls.append(1)
        return dispatched + dispatched if len(calls) == 1 else dispatched

    monkeypatch.setattr(batching, "tasks_dispatch_many", mismatched_once)
    worker, _ = await hello()
    await worker.send_json_to({"type": "request", "slots": 1})
    first = await worker.receive_json_from(timeout=10)
    assert first["type"] == "tasks" and len(calls) == 1
    await worker.send_json_to({"type": "request", "slots": 1})
    answer = await worker.receive_json_from(timeout=10)
    assert answer["type"] == "tasks" and answer["tasks"] and len(calls) == 2
    await worker.disconnect()
