"""Validated results of a batch as JSONL or CSV, streamed in chunks (keyset on seq).

JSONL: one object per validated work unit, in order:
    {"seq": 1, "input": {...}, "output": {...}, "revalidated": false}
CSV: a header `seq` plus every top-level key of the outputs (the union over the
batch, sorted) and a last column `revalidated`, one row per validated work unit.
`revalidated` is true when validation derived the result again after catching a
device that had helped settle it. A string cell is written as is,
unless it would read back as JSON (e.g. "12"), then it is JSON-quoted; other values
are JSON (numbers, true/false, lists, objects); a missing key is an empty cell —
the same rule the CSV upload reads. Outputs that are not objects go in one
column, `output`.

Under ASGI (daphne) the generators are async and fetch each chunk in a thread, so
a 100,000-row export neither blocks the event loop nor sits in memory; under WSGI
(tests) they are plain generators.
"""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async

from sparecycles.projects.models import Batch
from sparecycles.projects.selectors import batch_results

CHUNK = 1000


def _chunk(batch: Batch, after: int) -> list[dict]:
    return list(batch_results(batch=batch).filter(seq__gt=after)[:CHUNK])


def _output_keys(batch: Batch) -> list[str]:
    keys: set[str] = set()
    after = 0
    while rows := list(batch_results(batch=batch).filter(seq__gt=after)
                       .values_list("seq", "canonical_output")[:CHUNK]):
        for _, output in rows:
            keys.update(output.keys() if isinstance(output, dict) else ["output"])
        after = rows[-1][0]
    return sorted(keys)


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(
        json.dumps({"seq": r["seq"], "input": r["input"], "output": r["canonical_output"],
                    "revalidated": r["revalidated_at"] is not None},
                   separators=(",", ":"), ensure_ascii=False) + "\n" for r in rows
    ).encode("utf-8")


def csv_cell(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _csv_rows(rows: list[dict], keys: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for r in rows:
        output = r["canonical_output"]
        values = output if isinstance(output, dict) else {"output": output}
        writer.writerow([r["seq"], *(csv_cell(values[k]) if k in values else "" for k in keys),
                         csv_cell(r["revalidated_at"] is not None)])
    return buffer.getvalue().encode("utf-8")


def _csv_header(keys: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["seq", *keys, "revalidated"])
    return buffer.getvalue().encode("utf-8")


def export_sync(batch: Batch, fmt: str) -> Iterator[bytes]:
    keys = _output_keys(batch) if fmt == "csv" else []
    if fmt == "csv":
        yield _csv_header(keys)
    after = 0
    while rows := _chunk(batch, after):
        yield _csv_rows(rows, keys) if fmt == "csv" else _jsonl(rows)
        after = rows[-1]["seq"]


async def export_async(batch: Batch, fmt: str) -> AsyncIterator[bytes]:
    keys = await sync_to_async(_output_keys)(batch) if fmt == "csv" else []
    if fmt == "csv":
        yield _csv_header(keys)
    after = 0
    while rows := await sync_to_async(_chunk)(batch, after):
        yield _csv_rows(rows, keys) if fmt == "csv" else _jsonl(rows)
        after = rows[-1]["seq"]
