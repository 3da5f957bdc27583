"""Prime counting -- Spare Cycles bundled app (runtime: pyodide).

One work unit counts the primes p with lo <= p < hi using a segmented sieve
of Eratosthenes (a bytearray per segment, slice assignment for crossing
off), and reports the largest such prime (None if there is none).

Pure standard library; runs unchanged under native CPython 3.11+ and under
Pyodide.  Integer-only, hence deterministic: validator "exact".
All integers stay below 2**53 so they survive a trip through JavaScript.
"""

import math

MAX_HI = 2**53  # JS-safe integers only
MAX_SPAN = 1_000_000_000  # sanity cap on one unit (memory use is one SEGMENT regardless)
SEGMENT = 1 << 21  # bytes per sieve segment (2 MiB)


def _int(inp, key):
    v = inp[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{key} must be an int, got {v!r}")
    return v


def _base_primes(limit):
    """All primes <= limit (simple sieve)."""
    if limit < 2:
        return []
    sieve = bytearray([1]) * (limit + 1)
    sieve[0] = sieve[1] = 0
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            start = p * p
            sieve[start::p] = bytes((limit - start) // p + 1)
    return [i for i in range(limit + 1) if sieve[i]]


def main(input, progress=None):
    """`progress`, when the volunteer page passes it, takes the share done (0..1)."""
    lo = _int(input, "lo")
    hi = _int(input, "hi")
    if not (0 <= lo <= hi <= MAX_HI):
        raise ValueError("need 0 <= lo <= hi <= 2**53")
    if hi - lo > MAX_SPAN:
        raise ValueError(f"range wider than {MAX_SPAN}")

    count = 0
    largest = None
    if hi > 2:
        base = _base_primes(math.isqrt(hi - 1))
        seg_lo = max(lo, 2)
        while seg_lo < hi:
            if progress is not None:
                progress((seg_lo - lo) / (hi - lo))
            seg_hi = min(seg_lo + SEGMENT, hi)
            n = seg_hi - seg_lo
            seg = bytearray([1]) * n
            for p in base:
                pp = p * p
                if pp >= seg_hi:
                    break
                # first multiple of p in [seg_lo, seg_hi) that is >= p*p
                start = max(pp, -(-seg_lo // p) * p) - seg_lo
                if start < n:
                    seg[start::p] = bytes((n - 1 - start) // p + 1)
            count += seg.count(1)
            last = seg.rfind(1)
            if last >= 0:
                largest = seg_lo + last
            seg_lo = seg_hi

    return {"lo": lo, "hi": hi, "count": count, "largest": largest}
