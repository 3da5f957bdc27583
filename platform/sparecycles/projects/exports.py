"""Validated results of a batch as JSONL or CSV, streamed in chunks (keyset on seq).

JSONL: one object per validated work unit, in order:
    {"seq": 1, "input": {...}, "output": {...}, "revalidated": false}
CSV: a header `seq`, then one column `input.<key>` per top-level key of the inputs, then
one `output.<key>` per top-level key of the outputs (each the union over the batch,
sorted), and a last column `revalidated`, one row per validated work unit; so inputs
and outputs never mix, even where they share a key (`input.n`, `output.n`).
`revalidated` is true when validation derived the result again after catching a
device that had helped settle it. A string cell is written as is,
unless it would read back as JSON (e.g. "12"), then it is JSON-quoted; other values
are JSON (numbers, true/false, lists, objects); a missing key is an empty cell —
the same rule the CSV upload reads. Inputs or outputs that are not objects go in one
column, `input` or `output`.

Under ASGI (daphne) the generators are async and fetch each chunk in a thread, so
a 100,000-row export neither blocks the event loop nor sits in memory; under WSGI
(tests) they are plain generators.
"""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async

from .models import Batch
from .selectors import batch_results

CHUNK = 1000


def _chunk(batch: Batch, after: int) -> list[dict]:
    return list(batch_results(batch=batch).filter(seq__gt=after)[:CHUNK])


Columns = tuple[list[str], list[str]]  # the input keys, the output keys


def _columns(batch: Batch) -> Columns:
    inputs: set[str] = set()
    outputs: set[str] = set()
    after = 0
    while rows := list(batch_results(batch=batch).filter(seq__gt=after)
                       .values_list("seq", "input", "canonical_output")[:CHUNK]):
        for _, input, output in rows:
            inputs.update(input.keys() if isinstance(input, dict) else [""])
            outputs.update(output.keys() if isinstance(output, dict) else [""])
        after = rows[-1][0]
    return sorted(inputs), sorted(outputs)


def _cells(value, keys: list[str]):
    """One cell per key of an input or output ("" stands for a value that is no object)."""
    values = value if isinstance(value, dict) else {"": value}
    return (csv_cell(values[k]) if k in values else "" for k in keys)


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


def _csv_rows(rows: list[dict], columns: Columns) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for r in rows:
        writer.writerow([r["seq"], *_cells(r["input"], columns[0]),
                         *_cells(r["canonical_output"], columns[1]),
                         csv_cell(r["revalidated_at"] is not None)])
    return buffer.getvalue().encode("utf-8")


def _csv_header(columns: Columns) -> bytes:
    names = [f"{side}.{key}" if key else side
             for side, keys in zip(("input", "output"), columns, strict=True) for key in keys]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["seq", *names, "revalidated"])
    return buffer.getvalue().encode("utf-8")


def export_sync(batch: Batch, fmt: str) -> Iterator[bytes]:
    keys = _columns(batch) if fmt == "csv" else ([], [])
    if fmt == "csv":
        yield _csv_header(keys)
    after = 0
    while rows := _chunk(batch, after):
        yield _csv_rows(rows, keys) if fmt == "csv" else _jsonl(rows)
        after = rows[-1]["seq"]


async def export_async(batch: Batch, fmt: str) -> AsyncIterator[bytes]:
    keys = await sync_to_async(_columns)(batch) if fmt == "csv" else ([], [])
    if fmt == "csv":
        yield _csv_header(keys)
    after = 0
    while rows := await sync_to_async(_chunk)(batch, after):
        yield _csv_rows(rows, keys) if fmt == "csv" else _jsonl(rows)
        after = rows[-1]["seq"]
