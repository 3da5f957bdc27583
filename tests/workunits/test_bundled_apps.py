"""Tests for the bundled app catalogue under workunits/.

Plain pytest, no Django: every module is loaded straight from its file with
importlib, the way the platform's loader and the native volunteer swarm do.
"""

import ast
import importlib.util
import itertools
import json
import math
import random
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKUNITS = ROOT / "workunits"
APPS = ["mandelbrot", "primes", "montecarlo"]
WASM_APPS = ["mandelbrot-wasm"]  # no main.py: tests/projects/test_wasm_example.py checks it
JS_SAFE = 2**53
MAX_OUTPUT_BYTES = 64 * 1024

REQUIRED_KEYS = {
    "name": str,
    "title": str,
    "description": str,
    "runtime": str,
    "entry": str,
    "validator": str,
    "quorum": dict,
    "flops_per_unit": float,
}
QUORUM_KEYS = [
    "min_quorum",
    "target_nresults",
    "max_error_results",
    "max_total_results",
    "max_success_results",
    "delay_bound_s",
]


# --------------------------------------------------------------------------- helpers


def load(app, module):
    """Import workunits/<app>/<module>.py under a unique module name."""
    path = WORKUNITS / app / f"{module}.py"
    name = f"_workunit_{app}_{module}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def manifest(app):
    with open(WORKUNITS / app / "manifest.toml", "rb") as f:
        return tomllib.load(f)


def entry(app):
    return getattr(load(app, "main"), manifest(app)["entry"])


def assert_json_value(v, where="$"):
    """Only dict/list/int/float/str/bool/None; finite floats; JS-safe ints."""
    if v is None or isinstance(v, (bool, str)):
        return
    if isinstance(v, int):
        assert -JS_SAFE < v < JS_SAFE, f"{where}: int {v} not JS-safe"
    elif isinstance(v, float):
        assert math.isfinite(v), f"{where}: non-finite float"
    elif isinstance(v, list):
        for i, x in enumerate(v):
            assert_json_value(x, f"{where}[{i}]")
    elif isinstance(v, dict):
        for k, x in v.items():
            assert isinstance(k, str), f"{where}: non-str key {k!r}"
            assert_json_value(x, f"{where}.{k}")
    else:
        raise AssertionError(f"{where}: {type(v).__name__} is not a JSON type")


def assert_json_roundtrip(v):
    assert_json_value(v)
    assert json.loads(json.dumps(v)) == v


def first_input(app, seed=0):
    return next(iter(load(app, "inputs").generate(1, seed)))


# --------------------------------------------------------------------------- all apps


def test_catalogue_contents():
    found = sorted(p.name for p in WORKUNITS.iterdir() if (p / "manifest.toml").is_file())
    assert found == sorted(APPS + WASM_APPS)
    for app in APPS:
        for f in ("manifest.toml", "main.py", "inputs.py"):
            assert (WORKUNITS / app / f).is_file(), f"{app}/{f} missing"


@pytest.mark.parametrize("app", APPS)
def test_manifest_schema(app):
    m = manifest(app)
    for key, typ in REQUIRED_KEYS.items():
        assert key in m, f"{app}: manifest lacks {key}"
        assert isinstance(m[key], typ), f"{app}: {key} should be {typ.__name__}"
    assert m["name"] == app
    assert re.fullmatch(r"[a-z0-9-]+", m["name"])
    assert m["title"].strip() and len(m["title"]) <= 80
    assert 20 <= len(m["description"]) <= 300
    assert m["runtime"] == "pyodide"
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m["entry"])
    assert m["validator"] in ("exact", "tolerance")
    assert math.isfinite(m["flops_per_unit"]) and m["flops_per_unit"] > 0

    q = m["quorum"]
    for key in QUORUM_KEYS:
        assert isinstance(q.get(key), int) and not isinstance(q[key], bool), key
    assert 1 <= q["min_quorum"] <= q["target_nresults"] <= q["max_total_results"]
    assert q["min_quorum"] <= q["max_success_results"] <= q["max_total_results"]
    assert 1 <= q["max_error_results"] <= q["max_total_results"]
    assert q["delay_bound_s"] > 0

    opts = m.get("validator_options", {})
    assert isinstance(opts, dict)
    if m["validator"] == "tolerance":
        for key in ("abs_tol", "rel_tol"):
            assert isinstance(opts.get(key), (int, float)) and opts[key] >= 0, key
        assert opts["abs_tol"] > 0 or opts["rel_tol"] > 0


@pytest.mark.parametrize("app", APPS)
def test_main_is_pure_stdlib_and_runs_standalone(app):
    path = WORKUNITS / app / "main.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "main.py must not use relative imports"
            names = [node.module]
        else:
            continue
        for n in names:
            assert n.split(".")[0] in sys.stdlib_module_names, f"{app}: imports {n}"
    # The browser worker runs the file's source in a fresh namespace and calls
    # the entry function; do the same.
    ns = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    assert callable(ns[manifest(app)["entry"]])


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_generate_deterministic_json(app, seed):
    gen = load(app, "inputs").generate
    a = list(gen(5, seed))
    b = list(gen(5, seed))
    assert len(a) == 5
    assert a == b
    for inp in a:
        assert isinstance(inp, dict)
        assert_json_roundtrip(inp)
    assert list(gen(0, seed)) == []
    assert list(gen(3, seed)) == a[:3]  # asking for more only appends


@pytest.mark.parametrize("app", APPS)
def test_main_output_json_deterministic_small(app):
    inp = first_input(app)
    out1 = entry(app)(inp)
    out2 = entry(app)(json.loads(json.dumps(inp)))  # as received over the wire
    assert isinstance(out1, dict)
    assert_json_roundtrip(out1)
    assert out1 == out2
    assert len(json.dumps(out1).encode()) < MAX_OUTPUT_BYTES


@pytest.mark.parametrize("app", APPS)
def test_validate_accepts_own_output(app):
    if not (WORKUNITS / app / "validate.py").exists():
        # only exact-validated apps may rely on the platform's comparison alone
        assert manifest(app)["validator"] == "exact"
        return
    out = entry(app)(first_input(app))
    eq = load(app, "validate").equivalent
    assert eq(out, out) is True
    assert eq(out, json.loads(json.dumps(out))) is True


# --------------------------------------------------------------------------- mandelbrot


def mandel_ref(cr, ci, max_iter):
    """Independent reference using Python's complex type."""
    c = complex(cr, ci)
    z = 0j
    n = 0
    while n < max_iter and z.real * z.real + z.imag * z.imag <= 4.0:
        z = z * z + c
        n += 1
    return n


def pixel_c(inp, px, py):
    dre = (inp["re_max"] - inp["re_min"]) / inp["width"]
    dim = (inp["im_max"] - inp["im_min"]) / inp["height"]
    return inp["re_min"] + (px + 0.5) * dre, inp["im_max"] - (py + 0.5) * dim


def tile_containing(inputs, cr, ci):
    inp = inputs[0]
    px = int((cr - inp["re_min"]) / (inp["re_max"] - inp["re_min"]) * inp["width"])
    py = int((inp["im_max"] - ci) / (inp["im_max"] - inp["im_min"]) * inp["height"])
    for t in inputs:
        if t["x0"] <= px < t["x0"] + t["size"] and t["y0"] <= py < t["y0"] + t["size"]:
            return t, px, py
    raise AssertionError("no tile contains the point")


def test_mandelbrot_tiles_cover_the_image_once():
    tiles = list(load("mandelbrot", "inputs").generate(64))
    first = tiles[0]
    assert (first["width"], first["height"], first["size"]) == (512, 512, 64)
    assert (first["re_min"], first["re_max"], first["im_min"], first["im_max"]) == (
        -2.2,
        0.8,
        -1.5,
        1.5,
    )
    assert [t["tile"] for t in tiles] == list(range(64))
    assert {(t["x0"], t["y0"]) for t in tiles} == {
        (x, y) for y in range(0, 512, 64) for x in range(0, 512, 64)
    }
    # row-major
    assert [(t["y0"], t["x0"]) for t in tiles] == sorted((t["y0"], t["x0"]) for t in tiles)
    # beyond one picture: the next, twice as sharp picture starts
    nxt = list(load("mandelbrot", "inputs").generate(65))[64]
    assert (nxt["level"], nxt["tile"], nxt["width"], nxt["x0"], nxt["y0"]) == (1, 0, 1024, 0, 0)


def test_mandelbrot_known_pixels():
    tiles = list(load("mandelbrot", "inputs").generate(64))
    main = entry("mandelbrot")
    # c = -0.2 + 0i is deep inside the main cardioid: never escapes.
    t, px, py = tile_containing(tiles, -0.2, 0.0)
    out = main(t)
    assert out["iterations"][py - t["y0"]][px - t["x0"]] == t["max_iter"]
    # top-left pixel, c ~ -2.2 + 1.5i, |c| > 2: escapes after one iteration.
    out0 = main(tiles[0])
    assert out0["iterations"][0][0] == 1
    assert out0["max_iter"] == tiles[0]["max_iter"]


@pytest.mark.parametrize("tile", [0, 19, 27, 42])
def test_mandelbrot_matches_reference(tile):
    inp = list(load("mandelbrot", "inputs").generate(64))[tile]
    out = entry("mandelbrot")(inp)
    for k in ("tile", "x0", "y0", "size", "width", "height", "max_iter"):
        assert out[k] == inp[k]
    rows = out["iterations"]
    assert len(rows) == inp["size"] and all(len(r) == inp["size"] for r in rows)
    for j in range(0, inp["size"], 3):
        for i in range(0, inp["size"], 3):
            cr, ci = pixel_c(inp, inp["x0"] + i, inp["y0"] + j)
            assert rows[j][i] == mandel_ref(cr, ci, inp["max_iter"]), (i, j)


def test_mandelbrot_full_tile_output_size():
    # The heaviest possible tile (every pixel at max_iter) still fits.
    inp = first_input("mandelbrot")
    n = inp["max_iter"]
    worst = {k: inp[k] for k in ("tile", "level", "x0", "y0", "size", "width", "height")}
    worst.update(max_iter=n, iterations=[[n] * inp["size"] for _ in range(inp["size"])])
    assert len(json.dumps(worst).encode()) < MAX_OUTPUT_BYTES


def test_mandelbrot_edge_tile_is_clipped():
    inp = dict(first_input("mandelbrot"), width=100, height=70, x0=64, y0=64)
    out = entry("mandelbrot")(inp)
    assert len(out["iterations"]) == 6
    assert all(len(r) == 36 for r in out["iterations"])


def test_mandelbrot_rejects_bad_input():
    main = entry("mandelbrot")
    with pytest.raises((ValueError, KeyError)):
        main(dict(first_input("mandelbrot"), x0=512))
    with pytest.raises((ValueError, KeyError)):
        main(dict(first_input("mandelbrot"), re_min=float("nan")))


# --------------------------------------------------------------------------- primes


def is_prime(n):
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


@pytest.mark.parametrize(
    "lo,hi,count,largest",
    [
        (0, 100, 25, 97),
        (0, 0, 0, None),
        (0, 2, 0, None),
        (0, 3, 1, 2),
        (2, 3, 1, 2),
        (90, 97, 0, None),
        (90, 98, 1, 97),
        (0, 10**6, 78498, 999983),
        (10**9, 10**9 + 1000, 49, 1000000993),
    ],
)
def test_primes_known_answers(lo, hi, count, largest):
    out = entry("primes")({"lo": lo, "hi": hi})
    assert out == {"lo": lo, "hi": hi, "count": count, "largest": largest}


def test_primes_against_trial_division():
    rng = random.Random(42)
    main = entry("primes")
    for _ in range(40):
        lo = rng.randrange(0, 3_000_000)
        hi = lo + rng.randrange(0, 3000)
        ps = [n for n in range(lo, hi) if is_prime(n)]
        out = main({"lo": lo, "hi": hi})
        assert (out["count"], out["largest"]) == (len(ps), ps[-1] if ps else None), (lo, hi)


def test_primes_first_block_is_pi_1e8():
    inp = first_input("primes")
    assert inp == {"lo": 0, "hi": 100_000_000}
    assert entry("primes")(inp) == {
        "lo": 0,
        "hi": 100_000_000,
        "count": 5761455,
        "largest": 99999989,
    }


def test_primes_inputs_are_consecutive():
    gen = load("primes", "inputs").generate
    units = list(gen(6))
    assert units[0]["lo"] == 0
    for a, b in itertools.pairwise(units):
        assert a["hi"] == b["lo"] and a["lo"] < a["hi"]
    # seed = index of the first block: a later batch continues where one stopped
    assert list(gen(3, seed=3)) == units[3:]


def test_primes_rejects_bad_input():
    main = entry("primes")
    for bad in (
        {"lo": 10, "hi": 5},
        {"lo": -1, "hi": 5},
        {"lo": 0, "hi": 2**60},
        {"lo": 0.5, "hi": 5},
        {"lo": True, "hi": 5},
    ):
        with pytest.raises(ValueError):
            main(bad)


# --------------------------------------------------------------------------- montecarlo

M64 = (1 << 64) - 1


def splitmix_stream(state):
    while True:
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        yield z ^ (z >> 31)


def test_splitmix64_reference_vectors():
    # Published SplitMix64 outputs for seed 1234567 (xoshiro reference code).
    expected = [6457827717110365317, 3203168211198807973, 9817491932198370423]
    assert list(itertools.islice(splitmix_stream(1234567), 3)) == expected
    state, outs = 1234567, []
    for _ in range(3):
        state, o = load("montecarlo", "inputs")._splitmix64(state)
        outs.append(o)
    assert outs == expected


def test_montecarlo_matches_reference_stream():
    seed, n = 987654321, 2000
    s = splitmix_stream(seed)
    inside = 0
    for _ in range(n):
        x = (next(s) >> 11) / 2**53
        y = (next(s) >> 11) / 2**53
        inside += x * x + y * y <= 1.0
    out = entry("montecarlo")({"seed": seed, "samples": n})
    assert out == {"seed": seed, "samples": n, "inside": inside, "estimate": 4.0 * inside / n}


def test_montecarlo_estimate_near_pi():
    inp = first_input("montecarlo")
    assert inp["samples"] == 1_000_000 and 0 <= inp["seed"] < JS_SAFE
    out = entry("montecarlo")(inp)
    assert out["seed"] == inp["seed"] and out["samples"] == inp["samples"]
    assert out["estimate"] == 4.0 * out["inside"] / out["samples"]
    assert abs(out["estimate"] - math.pi) < 0.05


def test_montecarlo_units_get_distinct_seeds():
    seeds = [u["seed"] for u in load("montecarlo", "inputs").generate(1000, 5)]
    assert len(set(seeds)) == 1000
    assert all(0 <= s < JS_SAFE for s in seeds)


def test_montecarlo_tolerance_matches_manifest():
    m = manifest("montecarlo")
    assert m["validator"] == "tolerance"
    assert m["validator_options"]["abs_tol"] == load("montecarlo", "validate").ABS_TOL


def test_montecarlo_equivalent():
    eq = load("montecarlo", "validate").equivalent
    a = {"seed": 12345, "samples": 200000, "inside": 157080, "estimate": 3.1416}
    assert eq(a, dict(a))
    assert eq(a, dict(a, estimate=3.1416 + 1e-12))
    assert eq(a, dict(a, estimate=3.1416 - 5e-10))
    assert not eq(a, dict(a, estimate=3.1416 + 1e-6))
    assert not eq(a, dict(a, estimate=3.2))
    assert not eq(a, dict(a, inside=157081))
    assert not eq(a, dict(a, samples=200001))
    assert not eq(a, dict(a, seed=12346))
    assert not eq(a, {k: v for k, v in a.items() if k != "estimate"})
    assert not eq(a, dict(a, estimate=float("nan")))
    assert not eq(a, dict(a, estimate="3.1416"))
    assert not eq(a, dict(a, inside=True))
    assert not eq(a, None)
    assert not eq([], [])
    # real outputs of two different units disagree
    main = entry("montecarlo")
    x = main({"seed": 1, "samples": 1000})
    y = main({"seed": 2, "samples": 1000})
    assert eq(x, main({"seed": 1, "samples": 1000}))
    assert not eq(x, y)
