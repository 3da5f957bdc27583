"""Canonical JSON and SHA-256: the bytes every hash in the ledger is taken over.

Canonical JSON = keys sorted, no whitespace (separators "," and ":"), UTF-8,
non-ASCII characters written as themselves, and numbers only as integers
(no floats, no booleans). JavaScript's JSON.stringify with sorted keys gives the
same bytes for these values, so a browser can re-derive every hash.
"""

import datetime as dt
import hashlib
import json

ZERO_HASH = "0" * 64  # the "previous hash" of the first entry
_EPOCH0 = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US = dt.timedelta(microseconds=1)


def _check(value, path: str = "$") -> None:
    if value is None or isinstance(value, str):
        return
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{path}: canonical JSON allows integers only, not {value!r}")
    if isinstance(value, int):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: object keys must be strings, not {key!r}")
            _check(item, f"{path}.{key}")
        return
    raise TypeError(f"{path}: {type(value).__name__} has no canonical JSON form")


def canonical_json(value) -> bytes:
    """The canonical bytes of a JSON value made of dicts, lists, strings, integers and null."""
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_us(moment: dt.datetime) -> int:
    """An aware datetime as integer microseconds since 1970-01-01T00:00:00Z."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the ledger only stores aware UTC moments")
    return (moment - _EPOCH0) // _ONE_US


def from_us(us: int) -> dt.datetime:
    return _EPOCH0 + dt.timedelta(microseconds=us)
