"""projects/exports.py: validated results streamed as JSONL or CSV, chunk by chunk (keyset
on seq)."""

import csv
import io
import json

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from sparecycles.projects import exports
from sparecycles.projects.exports import csv_cell, export_async, export_sync
from sparecycles.projects.inputs import inputs_read
from sparecycles.projects.models import WorkUnit

pytestmark = pytest.mark.django_db(transaction=True)

OUTPUTS = {1: {"square": 1, "label": "one"}, 2: {"square": 4, "note": "12"},
           4: {"square": 16}, 5: [1, 2]}  # 3 stays open; 5 is not an object


@pytest.fixture
def batch(make_batch):
    batch = make_batch(count=5)
    now = timezone.now()
    for seq, output in OUTPUTS.items():
        WorkUnit.objects.filter(batch=batch, seq=seq).update(
            state=WorkUnit.State.COMPLETED, canonical_output=output, completed_at=now,
            revalidated_at=now if seq == 4 else None)
    return batch


@pytest.fixture(params=[1000, 2])
def chunk(request, monkeypatch):
    """One chunk, and chunks smaller than the batch (the keyset paging must not skip)."""
    monkeypatch.setattr(exports, "CHUNK", request.param)
    return request.param


def collect_async(batch, fmt: str) -> bytes:
    async def run() -> bytes:
        return b"".join([part async for part in export_async(batch, fmt)])
    return async_to_sync(run)()


def test_jsonl_has_one_object_per_validated_unit_in_order(batch, chunk):
    body = b"".join(export_sync(batch, "jsonl"))
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 4, 5]
    assert rows[0] == {"seq": 1, "input": {"n": 1}, "output": {"square": 1, "label": "one"},
                       "revalidated": False}
    assert rows[2]["revalidated"] is True and rows[3]["output"] == [1, 2]
    assert collect_async(batch, "jsonl") == body  # under ASGI: the same bytes


def test_csv_keeps_inputs_and_outputs_apart_and_quotes_what_would_read_back_as_json(
        batch, chunk):
    body = b"".join(export_sync(batch, "csv"))
    table = list(csv.reader(io.StringIO(body.decode())))
    assert table[0] == ["seq", "input.n", "output", "output.label", "output.note",
                        "output.square", "revalidated"]
    assert table[1] == ["1", "1", "", "one", "", "1", "false"]
    assert table[2] == ["2", "2", "", "", '"12"', "4", "false"]  # the string "12", not 12
    assert table[3] == ["4", "4", "", "", "", "16", "true"]
    assert table[4] == ["5", "5", "[1,2]", "", "", "", "false"]
    assert collect_async(batch, "csv") == body


def test_csv_tells_an_input_from_an_output_of_the_same_name(make_batch):
    batch = make_batch(count=1)
    WorkUnit.objects.filter(batch=batch).update(
        state=WorkUnit.State.COMPLETED, canonical_output={"n": 99}, completed_at=timezone.now())
    table = list(csv.reader(io.StringIO(b"".join(export_sync(batch, "csv")).decode())))
    assert table == [["seq", "input.n", "output.n", "revalidated"], ["1", "1", "99", "false"]]


def test_csv_cells_read_back_through_the_upload_reader():
    values = {"s": "text", "n": "12", "q": 'say "hi"', "x": 1.5, "b": True, "l": [1], "z": None}
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        [["seq", *values], ["1", *(csv_cell(v) for v in values.values())]])
    [row] = list(inputs_read(io.BytesIO(buffer.getvalue().encode()), "csv"))
    assert row == {"seq": 1, **values}


def test_an_empty_batch_exports_a_header_only(make_batch):
    batch = make_batch(count=2)
    assert b"".join(export_sync(batch, "jsonl")) == b""
    assert b"".join(export_sync(batch, "csv")) == b"seq,revalidated\n"
