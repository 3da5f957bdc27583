"""Extension "batch": several results in one `results` frame, with a request riding along.

Hostile clients first: every item is checked as a `result` frame is, and a bad item refuses
that item only; the frame is capped; the limits of v1 (hello first, the rate limit per
result, max_inflight) hold as they do for single frames.
"""

import json

import pytest

from sparecycles.gateway import ratelimit
from sparecycles.gateway.protocol import MAX_BATCH_RESULTS
from sparecycles.scheduler.models import Replica

from .test_consumers import HELLO, closed_with, connect, hello, make_batch_async

pytestmark = pytest.mark.django_db(transaction=True)


async def receive(communicator, timeout=5):
    """The next frame that is not a `stats` push (credit at quorum 1 pushes those)."""
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        if frame["type"] != "stats":
            return frame


async def take_tasks(communicator, slots):
    await communicator.send_json_to({"type": "request", "slots": slots})
    frame = await receive(communicator)
    assert frame["type"] == "tasks"
    return frame["tasks"]


def ok(task, **extra):
    n = task["input"]["n"]
    return {"task_id": task["task_id"], "status": "ok", "output": {"n": n, "square": n * n},
            "elapsed_ms": 5, **extra}


async def test_welcome_advertises_the_extension():
    communicator, welcome = await hello()
    assert welcome["extensions"] == ["batch"]
    assert welcome["max_batch"] == MAX_BATCH_RESULTS
    await communicator.disconnect()


async def test_results_with_slots_answers_acks_then_tasks_in_one_round_trip(make_batch):
    await make_batch_async(make_batch, count=8)
    communicator, _ = await hello()
    tasks = await take_tasks(communicator, 4)
    assert len(tasks) == 4
    await communicator.send_json_to({"type": "results", "slots": 2,
                                     "results": [ok(tasks[0]), {"type": "result", **ok(tasks[1])}]})
    acks = await receive(communicator)
    assert acks == {"type": "acks", "acks": [
        {"task_id": tasks[0]["task_id"], "accepted": True},
        {"task_id": tasks[1]["task_id"], "accepted": True}]}
    more = await receive(communicator)
    # The two reported slots are free by the time the request is served.
    assert more["type"] == "tasks" and len(more["tasks"]) == 2
    assert {t["task_id"] for t in more["tasks"]}.isdisjoint(t["task_id"] for t in tasks)
    stored = [r async for r in Replica.objects.filter(
        task_id__in=[tasks[0]["task_id"], tasks[1]["task_id"]], received_at__isnull=False)]
    assert len(stored) == 2
    await communicator.disconnect()


async def test_results_before_hello_closes_4401():
    communicator = await connect()
    await communicator.send_json_to({"type": "results", "results": [], "slots": 1})
    assert await closed_with(communicator) == 4401


async def test_an_oversize_batch_is_a_violation_and_stores_nothing(make_batch):
    await make_batch_async(make_batch, count=1)
    communicator, _ = await hello()
    [task] = await take_tasks(communicator, 1)
    items = [ok(task)] * (MAX_BATCH_RESULTS + 1)
    await communicator.send_json_to({"type": "results", "results": items, "slots": 1})
    error = await receive(communicator)
    assert error["type"] == "error" and error["code"] == "batch_too_large"
    assert not await Replica.objects.filter(received_at__isnull=False).aexists()
    # Nothing else answers that frame (no acks, no tasks).
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_an_oversize_batch_counts_toward_the_close(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_VIOLATIONS": 2}
    communicator, _ = await hello()
    frame = {"type": "results", "results": [{"task_id": "x", "status": "ok"}] * 65}
    for _ in range(2):
        await communicator.send_json_to(frame)
        assert (await receive(communicator))["code"] == "batch_too_large"
    assert await closed_with(communicator) == 4400


async def test_another_devices_task_in_a_batch_is_refused_and_the_rest_stored(make_batch):
    await make_batch_async(make_batch, count=2)
    mine, _ = await hello()
    [theirs] = await take_tasks(mine, 1)
    thief, _ = await hello()
    [own] = await take_tasks(thief, 1)
    await thief.send_json_to({"type": "results", "results": [ok(theirs), ok(own)]})
    acks = (await receive(thief))["acks"]
    assert acks == [{"task_id": theirs["task_id"], "accepted": False, "reason": "not_assigned"},
                    {"task_id": own["task_id"], "accepted": True}]
    replica = await Replica.objects.aget(task_id=theirs["task_id"])
    assert replica.received_at is None
    await mine.disconnect()
    await thief.disconnect()


async def test_one_task_twice_in_a_batch_is_stored_once(make_batch):
    await make_batch_async(make_batch, count=1)
    communicator, _ = await hello()
    [task] = await take_tasks(communicator, 1)
    forged = {**ok(task), "output": {"n": 0, "square": -1}}
    await communicator.send_json_to({"type": "results", "results": [ok(task), forged]})
    acks = (await receive(communicator))["acks"]
    assert acks == [{"task_id": task["task_id"], "accepted": True},
                    {"task_id": task["task_id"], "accepted": True, "duplicate": True}]
    replica = await Replica.objects.aget(task_id=task["task_id"])
    assert replica.output == ok(task)["output"]  # the second changed nothing
    await communicator.disconnect()


async def test_mixed_items_refuse_only_the_bad_ones(make_batch, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_OUTPUT_BYTES": 100}
    await make_batch_async(make_batch, count=4)
    communicator, _ = await hello()
    tasks = await take_tasks(communicator, 4)
    items = [
        ok(tasks[0]),
        {**ok(tasks[1]), "output": {"blob": "x" * 500}},          # too large
        {**ok(tasks[2]), "status": "maybe"},                        # not a status
        {"task_id": tasks[3]["task_id"], "status": "error", "error": "MemoryError"},
        {"status": "ok", "output": {}},                             # no task id
        {**ok(tasks[0]), "type": "hello"},                          # not a result
    ]
    await communicator.send_json_to({"type": "results", "results": items, "slots": 0})
    acks = (await receive(communicator))["acks"]
    assert acks == [
        {"task_id": tasks[0]["task_id"], "accepted": True},
        {"task_id": tasks[1]["task_id"], "accepted": False, "reason": "too_large"},
        {"task_id": tasks[2]["task_id"], "accepted": False, "reason": "invalid"},
        {"task_id": tasks[3]["task_id"], "accepted": True},
        {"task_id": None, "accepted": False, "reason": "invalid"},
        {"task_id": tasks[0]["task_id"], "accepted": False, "reason": "invalid"},
    ]
    error = await receive(communicator)
    assert error["type"] == "error" and error["code"] == "invalid"
    assert "results[2]" in error["message"] and "results[4]" in error["message"]
    tasks_frame = await receive(communicator)  # slots 0: an empty answer, as for `request`
    assert tasks_frame["type"] == "tasks"
    # The refused task is still this device's: a corrected result is accepted.
    await communicator.send_json_to({"type": "results", "results": [ok(tasks[2])]})
    assert (await receive(communicator))["acks"][0]["accepted"] is True
    await communicator.disconnect()


async def test_an_output_with_nan_in_a_batch_is_refused_alone(make_batch):
    await make_batch_async(make_batch, count=2)
    communicator, _ = await hello()
    tasks = await take_tasks(communicator, 2)
    text = json.dumps({"type": "results", "results": [
        {**ok(tasks[0]), "output": {"x": float("nan")}}, ok(tasks[1])]})
    await communicator.send_to(text_data=text)
    acks = (await receive(communicator))["acks"]
    assert [a["accepted"] for a in acks] == [False, True]
    assert acks[0]["reason"] == "invalid"
    assert "NaN" in (await receive(communicator))["message"]
    await communicator.disconnect()


@pytest.mark.parametrize("results", ["nope", {"task_id": "x"}, None, 7])
async def test_results_that_are_not_a_list_are_a_bad_frame(results):
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "results", "results": results, "slots": 1})
    error = await receive(communicator)
    assert error["type"] == "error" and error["code"] == "invalid"
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


@pytest.mark.parametrize("slots", [-1, 1001, 1.5, "many", [2]])
async def test_bad_slots_are_a_bad_frame(slots):
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "results", "results": [], "slots": slots})
    assert (await receive(communicator))["code"] == "invalid"
    await communicator.disconnect()


async def test_garbage_items_are_each_refused():
    communicator, _ = await hello()
    items = [None, 3, "x", [], {"task_id": ""}, {"task_id": "t" * 201, "status": "ok"},
             {"task_id": 5, "status": "ok"}]
    await communicator.send_json_to({"type": "results", "results": items})
    acks = (await receive(communicator))["acks"]
    assert acks == [{"task_id": None, "accepted": False, "reason": "invalid"}] * len(items)
    assert (await receive(communicator))["code"] == "invalid"
    await communicator.disconnect()


async def test_slots_over_max_inflight_get_what_fits(make_batch, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_INFLIGHT": 3}
    await make_batch_async(make_batch, count=10)
    communicator, _ = await hello()
    tasks = await take_tasks(communicator, 2)
    await communicator.send_json_to({"type": "results", "results": [ok(tasks[0])],
                                     "slots": 1000})
    assert (await receive(communicator))["acks"][0]["accepted"] is True
    more = await receive(communicator)
    assert len(more["tasks"]) == 2  # 3 in flight: the one unreported and two new ones
    await communicator.disconnect()


async def test_the_rate_limit_applies_per_result(settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "RESULTS_PER_S": 1}
    ratelimit.device_results.buckets.clear()
    communicator, _ = await hello()
    items = [{"task_id": f"t{i}", "status": "ok", "output": {}} for i in range(8)]
    await communicator.send_json_to({"type": "results", "results": items})
    reasons = [a["reason"] for a in (await receive(communicator))["acks"]]
    assert reasons[:5] == ["unknown_task"] * 5  # the burst
    assert reasons[5:] == ["rate_limited"] * 3
    await communicator.disconnect()


async def test_replaying_an_accepted_batch_changes_nothing(make_batch):
    await make_batch_async(make_batch, count=2)
    communicator, welcome = await hello()
    tasks = await take_tasks(communicator, 2)
    frame = {"type": "results", "results": [ok(t) for t in tasks]}
    await communicator.send_json_to(frame)
    assert [a["accepted"] for a in (await receive(communicator))["acks"]] == [True, True]
    await communicator.disconnect()
    # Again, on a new connection of the same device: duplicates, nothing stored twice.
    again, _ = await hello(welcome["device_token"])
    await again.send_json_to(frame)
    acks = (await receive(again))["acks"]
    assert all(a["accepted"] and a["duplicate"] for a in acks)
    stored = await Replica.objects.filter(received_at__isnull=False).acount()
    assert stored == 2
    await again.disconnect()


async def test_an_empty_batch_with_slots_is_a_request(make_batch):
    await make_batch_async(make_batch, count=2)
    communicator, _ = await hello()
    await communicator.send_json_to({"type": "results", "results": [], "slots": 2})
    frame = await receive(communicator)
    assert frame["type"] == "tasks" and len(frame["tasks"]) == 2
    await communicator.disconnect()


async def test_a_v1_client_sees_no_batch_frames(make_batch):
    """Old clients keep working: `result` is answered by `ack`, never `acks`."""
    await make_batch_async(make_batch, count=1)
    communicator = await connect()
    await communicator.send_json_to(HELLO)
    await communicator.receive_json_from()
    [task] = await take_tasks(communicator, 1)
    await communicator.send_json_to({"type": "result", **ok(task)})
    ack = await receive(communicator)
    assert ack == {"type": "ack", "task_id": task["task_id"], "accepted": True}
    await communicator.disconnect()



async def test_each_invalid_item_counts_as_a_violation_as_its_own_result_frame_would(settings):
    """Red team: one violation per frame let a client send max_batch times as many bad
    results (each parsed, described, refused) as v1's result frames before the close."""
    settings.SPARECYCLES = {**settings.SPARECYCLES, "MAX_VIOLATIONS": 3}
    communicator, _ = await hello()
    bad = [{"task_id": f"t{i}", "status": "maybe"} for i in range(3)]
    await communicator.send_json_to({"type": "results", "results": bad, "slots": 1})
    acks = (await receive(communicator))["acks"]
    assert [a["reason"] for a in acks] == ["invalid"] * 3
    assert (await receive(communicator))["code"] == "invalid"
    assert await closed_with(communicator) == 4400  # no `tasks`: the socket is closed


async def test_text_postgresql_can_not_store_is_refused_per_item_without_a_traceback(
        make_batch, caplog):
    """Red team: NUL / lone surrogates (valid JSON escapes) in a batch reached the database;
    on PostgreSQL each failed the intake batch (honest devices' reports too) into one
    transaction per report with a logged traceback, and SQLite stored what PostgreSQL
    refuses. Now every such item is refused at the socket, alike on both databases."""
    await make_batch_async(make_batch, count=5)
    communicator, _ = await hello()
    tasks = await take_tasks(communicator, 4)
    items = [ok(tasks[0]),
             {**ok(tasks[1]), "output": {"s": "a\u0000b"}},
             {**ok(tasks[2]), "output": {"\ud83d": 1}},
             {"task_id": tasks[3]["task_id"], "status": "error", "error": "bad\u0000byte"},
             {"task_id": "forged\u0000", "status": "ok", "output": {}}]
    await communicator.send_to(text_data=json.dumps({"type": "results", "results": items}))
    acks = (await receive(communicator))["acks"]
    assert [(a["accepted"], a.get("reason")) for a in acks] == [
        (True, None), (False, "invalid"), (False, "invalid"), (True, None),
        (False, "unknown_task")]
    assert "NUL" in (await receive(communicator))["message"]
    replica = await Replica.objects.aget(task_id=tasks[3]["task_id"])
    assert replica.error_message == "bad\ufffdbyte"
    assert not await Replica.objects.filter(
        task_id__in=[tasks[1]["task_id"], tasks[2]["task_id"]], received_at__isnull=False).aexists()
    assert not [r for r in caplog.records if r.exc_info]
    await communicator.disconnect()


async def test_an_integer_over_pythons_digit_limit_refuses_its_item_only(make_batch):
    """Red team: one output integer over 4300 digits made the whole `results` frame a
    bad_frame; the other results got no ack, and a client resending its backlog in the same
    frame never got them stored. Now that item alone is refused."""
    await make_batch_async(make_batch, count=3)
    communicator, _ = await hello()
    tasks = await take_tasks(communicator, 3)
    text = json.dumps({"type": "results", "results": [ok(tasks[0]), ok(tasks[1]), ok(tasks[2])]})
    text = text.replace(f'"square": {tasks[1]["input"]["n"] ** 2}', '"square": ' + "7" * 5000, 1)
    assert "7" * 5000 in text
    await communicator.send_to(text_data=text)
    acks = (await receive(communicator))["acks"]
    assert [(a["task_id"], a["accepted"]) for a in acks] == [
        (tasks[0]["task_id"], True), (tasks[1]["task_id"], False), (tasks[2]["task_id"], True)]
    assert "4300 digits" in (await receive(communicator))["message"]
    await communicator.disconnect()
