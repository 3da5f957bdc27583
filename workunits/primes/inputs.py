"""Work-unit inputs for the prime-counting app.

The number line is cut into consecutive blocks of BLOCK integers:
block k is the range [k * BLOCK, (k + 1) * BLOCK).  generate(count, seed)
yields blocks seed, seed + 1, ..., seed + count - 1, i.e. `seed` is the index
of the first block.  So generate(100) covers [0, 10**10) and
generate(100, seed=100) continues exactly where it stopped; summing "count"
over the outputs of blocks 0..k-1 gives pi(k * BLOCK).
"""

BLOCK = 100_000_000


def generate(count, seed=0):
    if count < 0 or seed < 0:
        raise ValueError("count and seed must be >= 0")
    for k in range(seed, seed + count):
        yield {"lo": k * BLOCK, "hi": (k + 1) * BLOCK}
