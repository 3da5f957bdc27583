"""Reading work-unit inputs from JSONL and CSV uploads, one record at a time.

JSONL: one JSON object per line; blank lines are skipped.

CSV: the first line is a header naming the input fields; every later row
becomes one object {field: value}. A cell is parsed as JSON when it is valid
JSON (so `12` is a number, `true` a boolean, `null` null, `[1, 2]` a list and
`{"a": 1}` an object), and is kept as a string otherwise (`abc`, `NaN`, an
empty cell → ""). Line numbers count physical lines from 1, header included.

Uploads can hold hundreds of thousands of lines, so nothing here keeps the
inputs: `inputs_scan` reads the whole file once and keeps only a count and the
first few errors; `inputs_read` reads it again and yields the values for
insertion. Both raise or report errors by line number.
"""

import codecs
import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import ValidationError

MAX_INPUT_BYTES = 256 * 1024
MAX_REPORTED_ERRORS = 20
MAX_BATCH_UNITS = 1_000_000
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
FORMATS = ("jsonl", "csv")


class _Constant(ValueError):
    pass


def _refuse_constant(name: str):
    raise _Constant(name)


def _json_loads(text: str) -> Any:
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    return json.loads(text, parse_constant=_refuse_constant)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def format_for(filename: str | None, declared: str | None = None) -> str:
    """The upload's format: the declared one, else from the file name (default JSONL)."""
    if declared:
        declared = declared.lower().strip()
        if declared not in FORMATS:
            raise ValidationError(f"Unknown format {declared!r}: use jsonl or csv.")
        return declared
    return "csv" if (filename or "").lower().endswith(".csv") else "jsonl"


def _lines(stream: IO[bytes] | Iterable[bytes | str]) -> Iterator[tuple[int, str | None]]:
    """(line number, text) per line; text is None for a line that is not UTF-8."""
    for number, raw in enumerate(stream, start=1):
        if isinstance(raw, bytes):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None
                continue
        elif number == 1:
            raw = raw.removeprefix("\ufeff")
        yield number, raw


Record = tuple[int, Any, str]  # (line number, value, error message or "")


def _jsonl_records(stream) -> Iterator[Record]:
    for number, text in _lines(stream):
        if text is None:
            yield number, None, f"Line {number}: not UTF-8 text."
            continue
        line = text.strip()
        if not line:
            continue
        if len(line) > MAX_INPUT_BYTES:
            yield number, None, f"Line {number}: longer than {MAX_INPUT_BYTES // 1024} KiB."
            continue
        try:
            value = _json_loads(line)
        except _Constant as exc:
            yield number, None, (f"Line {number}: {exc} is not valid JSON; "
                                 "write the number as a string or leave it out.")
            continue
        except ValueError as exc:
            message = getattr(exc, "msg", str(exc))
            where = f" at column {exc.colno}" if hasattr(exc, "colno") else ""
            yield number, None, f"Line {number}: not valid JSON ({message}{where})."
            continue
        except RecursionError:
            yield number, None, f"Line {number}: nested too deeply."
            continue
        if not isinstance(value, dict):
            yield number, None, (f"Line {number}: each line must be a JSON object, "
                                 f"like {{\"n\": 1}}.")
            continue
        if "\\u0000" in line and _has_nul(value):
            yield number, None, (f"Line {number}: contains a NUL character (\\u0000), "
                                 "which cannot be stored.")
            continue
        yield number, value, ""


def _csv_cell(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        return text
    try:
        value = _json_loads(stripped)
    except (ValueError, RecursionError):
        return text
    return value


def _csv_records(stream) -> Iterator[Record]:
    numbered = _lines(stream)
    current = {"line": 0}

    def texts() -> Iterator[str]:
        for number, text in numbered:
            current["line"] = number
            # A line that is not UTF-8 is kept as lone surrogates and refused below.
            yield text if text is not None else "\udcff\n"

    reader = csv.reader(texts(), strict=True)
    header: list[str] | None = None
    start = 1
    while True:
        start = current["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield start, None, f"Line {start}: not valid CSV ({exc})."
            if header is None:
                return
            continue
        if not row:
            continue
        joined = "".join(row)
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            yield start, None, f"Line {start}: not UTF-8 text."
            if header is None:
                return
            continue
        if "\x00" in joined:
            yield start, None, f"Line {start}: contains a NUL character, which cannot be stored."
            if header is None:
                return
            continue
        if header is None:
            names = [name.strip() for name in row]
            problem = ""
            if any(not name for name in names):
                problem = "a column has no name"
            elif len(set(names)) != len(names):
                dupes = sorted({n for n in names if names.count(n) > 1})
                problem = f"repeated column names: {', '.join(dupes)}"
            if problem:
                yield start, None, (f"Line {start}: the header row names the input fields, "
                                    f"but {problem}.")
                return
            header = names
            continue
        if len(joined) > MAX_INPUT_BYTES:
            yield start, None, f"Line {start}: longer than {MAX_INPUT_BYTES // 1024} KiB."
            continue
        if len(row) != len(header):
            yield start, None, (f"Line {start}: {len(row)} values, but the header names "
                                f"{len(header)} fields ({', '.join(header)}).")
            continue
        yield start, {name: _csv_cell(cell) for name, cell in zip(header, row, strict=True)}, ""
    if header is None:
        yield 1, None, "The file is empty: the first line must be a header naming the fields."


def records(stream, fmt: str = "jsonl") -> Iterator[Record]:
    """Every record of an upload as (line number, value, error); value is None on error."""
    return _csv_records(stream) if fmt == "csv" else _jsonl_records(stream)


@dataclass
class Scan:
    count: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        shown = list(self.errors)
        more = self.error_count - len(shown)
        if more:
            shown.append(f"…and {more} more bad lines.")
        return shown


def inputs_scan(stream, fmt: str = "jsonl") -> Scan:
    """Read an upload once, keeping a count and the first errors; raise if any line is bad."""
    size = getattr(stream, "size", None)
    if isinstance(size, int) and size > MAX_UPLOAD_BYTES:
        raise ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MiB; split "
                              "it into several batches.")
    scan = Scan()
    for _number, _value, error in records(stream, fmt):
        if error:
            scan.error_count += 1
            if len(scan.errors) < MAX_REPORTED_ERRORS:
                scan.errors.append(error)
        else:
            scan.count += 1
    if scan.error_count:
        raise ValidationError(scan.messages())
    if scan.count == 0:
        if fmt == "csv":
            raise ValidationError("The file holds no work units: put one row per work unit "
                                  "under the header row.")
        raise ValidationError("The file holds no work units: put one JSON object per line.")
    if scan.count > MAX_BATCH_UNITS:
        raise ValidationError(f"The file holds {scan.count:,} work units; one batch takes at "
                              f"most {MAX_BATCH_UNITS:,}. Split it into several batches.")
    return scan


def inputs_read(stream, fmt: str = "jsonl") -> Iterator[dict]:
    """The values of a file that inputs_scan accepted; a bad line now is an error too."""
    for _number, value, error in records(stream, fmt):
        if error:
            raise ValidationError(error)
        yield value


def inputs_check(values: Iterable[Any]) -> None:
    """Check inputs given as a list (e.g. in a JSON request) like lines of a file."""
    scan = Scan()
    for number, value in enumerate(values, start=1):
        error = ""
        if not isinstance(value, dict):
            error = f"Input {number}: must be a JSON object, like {{\"n\": 1}}."
        elif _has_nul(value):
            error = f"Input {number}: contains a NUL character (\\u0000), which cannot be stored."
        elif len(json.dumps(value, separators=(",", ":"))) > MAX_INPUT_BYTES:
            error = f"Input {number}: longer than {MAX_INPUT_BYTES // 1024} KiB."
        if error:
            scan.error_count += 1
            if len(scan.errors) < MAX_REPORTED_ERRORS:
                scan.errors.append(error)
        else:
            scan.count += 1
    if scan.error_count:
        raise ValidationError(scan.messages())
    if scan.count == 0:
        raise ValidationError("A batch needs at least one work unit.")


def parse_jsonl(stream: IO[bytes] | Iterable[bytes | str]) -> Iterator[tuple[int, Any]]:
    """Yield (line number, input) for each non-blank line; raise ValidationError naming bad lines.

    Every line is checked before anything is yielded; up to MAX_REPORTED_ERRORS are
    reported. Keeps the inputs in memory: for large files use inputs_scan + inputs_read.
    """
    scan = Scan()
    inputs: list[tuple[int, Any]] = []
    for number, value, error in _jsonl_records(stream):
        if error:
            scan.error_count += 1
            if len(scan.errors) < MAX_REPORTED_ERRORS:
                scan.errors.append(error)
        else:
            inputs.append((number, value))
    if scan.error_count:
        raise ValidationError(scan.messages())
    if not inputs:
        raise ValidationError("The file holds no work units: put one JSON object per line.")
    yield from inputs
