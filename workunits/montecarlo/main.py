"""Monte-Carlo estimate of pi -- Spare Cycles bundled app (runtime: pyodide).

Throws `samples` random points into the unit square and counts how many land
inside the quarter circle x*x + y*y <= 1; pi ~= 4 * inside / samples.

The random numbers come from SplitMix64 (Steele, Lea & Flood 2014) written
with plain Python ints masked to 64 bits, so native CPython and Pyodide
produce the very same stream.  Each coordinate takes the top 53 bits of one
output and scales it by 2**-53 -- an exact conversion to a double in [0, 1).
Only exactly-rounded float operations are used, so results are in fact
bit-identical everywhere; the app is nevertheless validated with a numeric
tolerance on "estimate" (see validate.py), as an example of a
tolerance-validated app.

Pure standard library, no imports.  All output integers stay below 2**53.
"""

MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
SCALE = 1.0 / 9007199254740992.0  # 2**-53
MAX_SAMPLES = 100_000_000


def main(input, progress=None):
    """`progress`, when the volunteer page passes it, takes the share done (0..1)."""
    seed = input["seed"]
    samples = input["samples"]
    for key, v in (("seed", seed), ("samples", samples)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{key} must be an int, got {v!r}")
    if not (0 <= seed < 2**53):
        raise ValueError("seed must be in [0, 2**53)")
    if not (1 <= samples <= MAX_SAMPLES):
        raise ValueError(f"samples must be in [1, {MAX_SAMPLES}]")

    state = seed
    inside = 0
    step = max(1, samples // 100)
    for i in range(samples):
        if progress is not None and i % step == 0:
            progress(i / samples)
        # SplitMix64, inlined twice for speed (x, then y).
        state = (state + GOLDEN) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        x = ((z ^ (z >> 31)) >> 11) * SCALE
        state = (state + GOLDEN) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        y = ((z ^ (z >> 31)) >> 11) * SCALE
        if x * x + y * y <= 1.0:
            inside += 1

    return {
        "seed": seed,
        "samples": samples,
        "inside": inside,
        "estimate": 4.0 * inside / samples,
    }
