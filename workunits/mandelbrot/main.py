"""Mandelbrot tiles -- Spare Cycles bundled app (runtime: pyodide).

One work unit renders one square tile of a larger Mandelbrot image.  The
output carries the tile's position and the escape-iteration count of every
pixel, so a web page can paint the tile from the output alone.

Pure standard library, no imports at all: this file must run unchanged under
native CPython 3.11+ and under Pyodide in a browser.  Only IEEE-754 double
+, -, * and / are used (all correctly rounded, no libm calls, no complex
type), so every interpreter produces bit-identical iteration counts and the
app can use the "exact" validator.

Pixel convention (the painter must use the same one):
  * pixel (px, py) of a width x height image samples the point at its centre:
        re = re_min + (px + 0.5) * (re_max - re_min) / width
        im = im_max - (py + 0.5) * (im_max - im_min) / height
    so row 0 is the TOP of the image (largest imaginary part);
  * count = number of iterations z <- z*z + c (z0 = 0) performed while
    |z|^2 <= 4, capped at max_iter.  count == max_iter means "did not
    escape", i.e. (probably) inside the set -- paint it black.
"""

MAX_TILE_PIXELS = 256 * 256
MAX_ITER_LIMIT = 100_000


def _int(inp, key, lo, hi):
    v = inp[key]
    if isinstance(v, bool) or not isinstance(v, int) or not (lo <= v <= hi):
        raise ValueError(f"{key} must be an int in [{lo}, {hi}], got {v!r}")
    return v


def _num(inp, key):
    v = inp[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{key} must be a number, got {v!r}")
    v = float(v)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{key} must be finite")
    return v


def main(input, progress=None):
    """`progress`, when the volunteer page passes it, takes the share done (0..1)."""
    width = _int(input, "width", 1, 1 << 30)
    height = _int(input, "height", 1, 1 << 30)
    size = _int(input, "size", 1, 4096)
    x0 = _int(input, "x0", 0, width - 1)
    y0 = _int(input, "y0", 0, height - 1)
    max_iter = _int(input, "max_iter", 1, MAX_ITER_LIMIT)
    re_min = _num(input, "re_min")
    re_max = _num(input, "re_max")
    im_min = _num(input, "im_min")
    im_max = _num(input, "im_max")
    # Tiles at the right/bottom edge are clipped to the image.
    tw = min(size, width - x0)
    th = min(size, height - y0)
    if tw * th > MAX_TILE_PIXELS:
        raise ValueError("tile too large")

    dre = (re_max - re_min) / width
    dim = (im_max - im_min) / height
    cols = [re_min + (x0 + i + 0.5) * dre for i in range(tw)]

    rows = []
    for j in range(th):
        if progress is not None:
            progress(j / th)
        ci = im_max - (y0 + j + 0.5) * dim
        row = []
        append = row.append
        for cr in cols:
            zr = 0.0
            zi = 0.0
            zr2 = 0.0
            zi2 = 0.0
            n = 0
            while n < max_iter and zr2 + zi2 <= 4.0:
                zi = 2.0 * zr * zi + ci
                zr = zr2 - zi2 + cr
                zr2 = zr * zr
                zi2 = zi * zi
                n += 1
            append(n)
        rows.append(row)

    return {
        "tile": input.get("tile"),
        "level": input.get("level", 0),
        "x0": x0,
        "y0": y0,
        "size": size,
        "width": width,
        "height": height,
        "max_iter": max_iter,
        # rows[j][i] is pixel (x0 + i, y0 + j); rows may be shorter than
        # `size` for edge tiles.
        "iterations": rows,
    }
