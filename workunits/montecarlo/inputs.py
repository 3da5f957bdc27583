"""Work-unit inputs for the Monte-Carlo pi app.

generate(count, seed) yields `count` units of SAMPLES points each.  Unit i
gets the PRNG seed splitmix64_output(seed, i) >> 11 -- 53 bits, so the seed
is a JS-safe integer, and units of one batch (and, with overwhelming
probability, of batches with different seeds) draw independent streams.
Averaging "estimate" over many units gives an ever better pi.
"""

SAMPLES = 1_000_000

_MASK64 = 0xFFFFFFFFFFFFFFFF


def _splitmix64(state):
    """Return (new_state, output) of one SplitMix64 step."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


def generate(count, seed=0):
    if count < 0:
        raise ValueError("count must be >= 0")
    state = seed & _MASK64
    for _ in range(count):
        state, out = _splitmix64(state)
        yield {"seed": out >> 11, "samples": SAMPLES}
