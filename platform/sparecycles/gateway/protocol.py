"""Volunteer protocol v1 (shared/PROTOCOL.md): every client frame as a typed message.

Frames are parsed once, here, at the socket; the rest of the code never sees raw dicts.
Unknown extra fields are ignored so clients can extend compatibly.
"""

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# The version and the output rules live in a low module (sandbox and web read them too).
from sparecycles.wire import (  # noqa: F401
    MAX_OUTPUT_DEPTH,
    PROTOCOL_VERSION,
    OverlongInt,
    output_problem,
)

Token = Annotated[str, Field(min_length=1, max_length=200)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ClientInfo(_Message):
    name: Annotated[str, Field(max_length=50)] = ""
    version: Annotated[str, Field(max_length=50)] = ""


RuntimeName = Annotated[str, Field(max_length=20)]


class Capabilities(_Message):
    runtimes: Annotated[list[RuntimeName], Field(max_length=10)] = ["pyodide"]
    cores: Annotated[int, Field(ge=1, le=1024)] = 1
    memory_mb: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    mobile: bool = False


# Printable text only: these fields end up in the public stats exports.
HostText = Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")]


class HostInfo(_Message):
    """Optional (an extension of v1): what a browser can honestly say about its device, for
    the stats exports' host fields. Every field may be missing; a hello without `host`
    leaves what an earlier hello reported."""

    os_name: HostText = ""
    os_version: HostText = ""
    p_vendor: HostText = ""
    p_model: Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")] = ""
    p_fpops: Annotated[float, Field(gt=0, le=1e13, allow_inf_nan=False)] | None = None
    timezone: Annotated[int, Field(ge=-14 * 3600, le=14 * 3600)] | None = None


class Hello(_Message):
    type: Literal["hello"]
    protocol: int
    device_token: Token | None = None
    client: ClientInfo = ClientInfo()
    capabilities: Capabilities = Capabilities()
    host: HostInfo | None = None


class Request(_Message):
    type: Literal["request"]
    slots: Annotated[int, Field(ge=0, le=1000)] = 1


class Result(_Message):
    type: Literal["result"]
    task_id: Token
    status: Literal["ok", "error"]
    output: Any = None
    error: Annotated[str, Field(max_length=10_000)] = ""
    elapsed_ms: Annotated[int, Field(ge=0, le=10**10)] | None = None


# Extension "batch" (advertised in `welcome.extensions`): several results in one frame, and
# optionally a request for tasks with them. Each item is exactly a `result` frame's fields
# ("type" may be left out) and is checked as one on its own: a bad item refuses that item only.
MAX_BATCH_RESULTS = 64
EXTENSIONS = ["batch"]


class Results(_Message):
    type: Literal["results"]
    results: list[Any]
    slots: Annotated[int, Field(ge=0, le=1000)] | None = None


class Progress(_Message):
    type: Literal["progress"]
    task_id: Token
    # A JSON number (not "0.5", true or NaN) from 0 to 1.
    fraction: Annotated[float, Field(ge=0, le=1, strict=True, allow_inf_nan=False)]


class Ping(_Message):
    type: Literal["ping"]


ClientMessage = Annotated[
    Hello | Request | Result | Results | Progress | Ping, Field(discriminator="type")
]
CLIENT_TYPES = ("hello", "request", "result", "results", "progress", "ping")
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
_result_adapter: TypeAdapter[Result] = TypeAdapter(Result)


class FrameError(Exception):
    """A frame we cannot act on; `code` goes into the error reply."""

    def __init__(self, code: str, message: str, *, task_id: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        # Set for a well-formed `result` frame whose output is refused: the socket answers
        # with an ack (accepted: false, reason: `code`) so the client can drop the task.
        self.task_id = task_id


Message = Hello | Request | Result | Results | Progress | Ping


def parse_client_frame(text: str) -> Message:
    """Parse one text frame into a message, or raise FrameError with a readable message.

    Validated once, straight from the text (pydantic's JSON parser); a frame it refuses
    goes through the step-by-step path below, which says what is wrong with it."""
    try:
        message = _client_adapter.validate_json(text)
    except (ValidationError, RecursionError, ValueError):
        return _parse_slowly(text)
    if isinstance(message, Result):
        _output_check(message)
    elif isinstance(message, Results):
        _batch_check(message)
    return message


def _parse_int(literal: str) -> int | OverlongInt:
    try:
        return int(literal)
    except ValueError:  # over Python's digit limit: one refused result, not a bad frame
        return OverlongInt(len(literal))


def _parse_slowly(text: str) -> Message:
    try:
        data = json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError):
        raise FrameError("bad_frame", "Frames must be JSON text.") from None
    if not isinstance(data, dict):
        raise FrameError("bad_frame", "A frame must be a JSON object with a string field 'type'.")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise FrameError("bad_frame", "A frame must have a string field 'type'.")
    if kind not in CLIENT_TYPES:
        raise FrameError(
            "unknown_type",
            f"Unknown message type {kind[:40]!r}; expected one of {', '.join(CLIENT_TYPES)}.",
        )
    try:
        message = _client_adapter.validate_python(data)
    except (ValidationError, RecursionError) as exc:
        raise FrameError("invalid", f"Invalid {kind!r} frame: {_describe(exc)}") from None
    if isinstance(message, Result):
        _output_check(message)
    elif isinstance(message, Results):
        _batch_check(message)
    return message


def _batch_check(message: Results) -> None:
    if len(message.results) > MAX_BATCH_RESULTS:
        raise FrameError("batch_too_large",
                         f"A 'results' frame carries at most {MAX_BATCH_RESULTS} results; "
                         f"this one has {len(message.results)}. Nothing in it was stored.")


def parse_batch_item(item: Any) -> Result:
    """One item of a `results` frame, checked exactly as a `result` frame is. Raises
    FrameError (with `task_id` set when the item names a usable one)."""
    if not isinstance(item, dict):
        raise FrameError("invalid", "each item of 'results' must be a JSON object.")
    kind = item.get("type", "result")
    task_id = item.get("task_id")
    usable_id = task_id if isinstance(task_id, str) and 0 < len(task_id) <= 200 else ""
    if kind != "result":
        raise FrameError("invalid", "an item of 'results' may only have type 'result'.",
                         task_id=usable_id)
    try:
        result = _result_adapter.validate_python({**item, "type": "result"})
    except (ValidationError, RecursionError) as exc:
        raise FrameError("invalid", _describe(exc, skip=0), task_id=usable_id) from None
    _output_check(result)
    return result


def _output_check(message: Result) -> None:
    problem = output_problem(message.output)
    if problem:
        raise FrameError("invalid", f"Invalid 'result' frame: output: {problem}",
                         task_id=message.task_id)


def _describe(exc: Exception, skip: int = 1) -> str:
    if not isinstance(exc, ValidationError):
        return "the frame is nested too deeply."
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"][skip:]) or "frame"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def error_frame(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message}
