"""Result comparison for the Monte-Carlo pi app (run on the server).

Two results are equivalent when they answer the same unit ("seed",
"samples" equal), agree on the integer count "inside", and their
"estimate" values differ by at most ABS_TOL (the same abs_tol as the
manifest's [validator_options]).  Anything malformed is not equivalent.
"""

import math

ABS_TOL = 1e-9
KEYS = ("seed", "samples", "inside", "estimate")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _well_formed(r):
    if not isinstance(r, dict) or any(k not in r for k in KEYS):
        return False
    if not all(_is_int(r[k]) for k in ("seed", "samples", "inside")):
        return False
    if not _is_num(r["estimate"]):
        return False
    return 0 <= r["inside"] <= r["samples"] and r["samples"] > 0


def equivalent(a, b):
    if not (_well_formed(a) and _well_formed(b)):
        return False
    if a["seed"] != b["seed"] or a["samples"] != b["samples"]:
        return False
    if a["inside"] != b["inside"]:
        return False
    return abs(float(a["estimate"]) - float(b["estimate"])) <= ABS_TOL
