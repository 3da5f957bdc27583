"""Deciding whether two outputs agree (BOINC's check_pair) and picking a canonical set
(check_set)."""

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

Comparator = Callable[[Any, Any], bool]


def exact_equal(a: Any, b: Any) -> bool:
    """Equal as JSON documents (key order does not matter; 1 and true differ)."""
    return _canonical_json(a) == _canonical_json(b)


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def tolerance_equal(a: Any, b: Any, *, abs_tol: float = 0.0, rel_tol: float = 0.0) -> bool:
    """Walk two JSON trees; numbers may differ by abs_tol or rel_tol, everything else must match."""
    if _is_number(a) and _is_number(b):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(
            tolerance_equal(a[k], b[k], abs_tol=abs_tol, rel_tol=rel_tol) for k in a
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            tolerance_equal(x, y, abs_tol=abs_tol, rel_tol=rel_tol)
            for x, y in zip(a, b, strict=True)
        )
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def comparator_for(*, validator: str, options: dict | None, code: str = "") -> Comparator:
    options = options or {}
    if validator == "tolerance":
        abs_tol = float(options.get("abs_tol", 0.0))
        rel_tol = float(options.get("rel_tol", 0.0))
        return lambda a, b: tolerance_equal(a, b, abs_tol=abs_tol, rel_tol=rel_tol)
    if validator == "custom":
        # Owner code: only ever run in the sandbox (docs/sandbox.md). Its comparator raises
        # sandbox.errors.ValidatorError when the validator can't judge.
        from sparecycles.sandbox.judging import SandboxComparator

        return SandboxComparator(code)
    return exact_equal


def check_set(outputs: Sequence[Any], equal: Comparator, *, min_quorum: int) -> list[int] | None:
    """Indexes of the agreeing group that forms a canonical set, or None.

    The group must hold at least min_quorum results and a strict majority of
    all results compared, so two colluders can't outvote three honest ones.
    """
    prefetch = getattr(equal, "prefetch", None)
    if prefetch is not None:  # a sandboxed validator: every pair in one round trip
        prefetch([(a, b) for i, a in enumerate(outputs) for j, b in enumerate(outputs) if i != j])
    best: list[int] = []
    for i, candidate in enumerate(outputs):
        group = [j for j, other in enumerate(outputs) if j == i or equal(candidate, other)]
        if len(group) > len(best):
            best = group
    if len(best) >= min_quorum and 2 * len(best) > len(outputs):
        return best
    return None
