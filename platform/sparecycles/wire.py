"""What the volunteer protocol (shared/PROTOCOL.md) fixes for every layer: its version and
what a result's output may be.

A low module: the socket (gateway.protocol), the page (web) and the sandbox's judging all
read these, and none of them imports another edge for it.
"""

import math
import sys
from typing import Any

PROTOCOL_VERSION = 1

# A result's output may nest lists and objects this deep, no deeper. Real outputs are
# shallow; a 600-deep list is an attack on every comparator that walks it recursively
# (Python's own and owners' custom validators).
MAX_OUTPUT_DEPTH = 64


class OverlongInt:
    """A JSON integer longer than Python converts (sys.get_int_max_str_digits(), 4300
    digits): the socket's parser keeps it as this marker, which output_problem refuses, so
    it refuses one result, not the whole frame (and every other result of a `results`
    frame with it)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def unstorable_text(text: str) -> bool:
    """True if `text` holds NUL or an unpaired surrogate: JSON spells both ("\\u0000",
    "\\ud800"), but PostgreSQL stores neither (jsonb and text refuse them)."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


TEXT_PROBLEM = "strings may not hold NUL (\\u0000) or an unpaired surrogate (\\ud800-\\udfff)."


def output_problem(output: Any, *, max_depth: int | None = MAX_OUTPUT_DEPTH) -> str:
    """Why `output` can't be stored and compared, or "" if it can: NaN and Infinity are
    not JSON (the database refuses them), nor are NUL and unpaired surrogates in strings
    (PostgreSQL refuses them), and nesting is capped at `max_depth` (the protocol's
    MAX_OUTPUT_DEPTH; None: what the database can store, at any depth).
    Walks the tree without recursion."""
    stack = [(output, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN and Infinity are not JSON numbers."
        if isinstance(value, str) and unstorable_text(value):
            return TEXT_PROBLEM
        if isinstance(value, OverlongInt):
            return f"integers may have at most {sys.get_int_max_str_digits()} digits."
        if isinstance(value, dict | list):
            if max_depth is not None and depth > max_depth:
                return f"nested deeper than {max_depth} levels."
            if isinstance(value, dict):
                if any(unstorable_text(key) for key in value if isinstance(key, str)):
                    return TEXT_PROBLEM
                children = value.values()
            else:
                children = value
            stack.extend((child, depth + 1) for child in children)
    return ""
