"""Work-unit inputs for the Mandelbrot app.

generate(count, seed) yields tiles of a *pyramid* of square images of one
view of the Mandelbrot set:

    level 0: 512 x 512 px  ->   8 x 8  =   64 tiles of 64 x 64 px
    level 1: 1024 x 1024   ->  16 x 16 =  256 tiles
    level 2: 2048 x 2048   ->  32 x 32 = 1024 tiles
    ...

Tiles are yielded level by level, row-major within a level (tile index
= row * tiles_per_row + col, restarting at 0 on every level).  So
generate(64) is exactly the complete 512 px picture, and for any n < m
generate(n) is a prefix of generate(m): asking for more units than one
picture holds continues with the next, twice-as-sharp picture instead of
changing the earlier ones.  A page assembles the picture of one level
from the outputs with that (width, height).

`seed` picks the view (seed % len(VIEWS)); seed 0 is the classic full view
re [-2.2, 0.8] x im [-1.5, 1.5].  Every view is square, so pixels are square.
"""

TILE = 64
BASE = 512
MAX_ITER = 1024

# (label, re_min, re_max, im_min, im_max)
VIEWS = [
    ("full set", -2.2, 0.8, -1.5, 1.5),
    ("seahorse valley", -0.82, -0.7, 0.06, 0.18),
    ("elephant valley", 0.2, 0.4, -0.1, 0.1),
    ("period-3 mini-brot", -1.79, -1.72, -0.035, 0.035),
]


def generate(count, seed=0):
    if count < 0:
        raise ValueError("count must be >= 0")
    label, re_min, re_max, im_min, im_max = VIEWS[seed % len(VIEWS)]
    produced = 0
    level = 0
    while produced < count:
        side = BASE << level
        per_row = side // TILE
        for tile in range(per_row * per_row):
            if produced >= count:
                return
            row, col = divmod(tile, per_row)
            yield {
                "tile": tile,
                "level": level,
                "view": label,
                "x0": col * TILE,
                "y0": row * TILE,
                "size": TILE,
                "width": side,
                "height": side,
                "max_iter": MAX_ITER,
                "re_min": re_min,
                "re_max": re_max,
                "im_min": im_min,
                "im_max": im_max,
            }
            produced += 1
        level += 1
