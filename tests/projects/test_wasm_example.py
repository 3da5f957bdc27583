"""The bundled wasm example: the ABI holds, and it computes exactly what main.py computes.

Runs the module with Node's WebAssembly through static/volunteer/wasm-runtime.js, the
same code the browser worker uses (skipped where node is missing).
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sparecycles.projects.catalogue import bundled_app_install, bundled_app_read
from sparecycles.projects.code_checks import wasm_abi_check, wasm_summary

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "workunits" / "mandelbrot-wasm"
NODE = shutil.which("node")
RUNNER = """
import { readFileSync } from "node:fs";
import { runModule } from "./wasm-runtime.mjs";
const module = await WebAssembly.compile(readFileSync(process.argv[2]));
const out = [];
for (const input of JSON.parse(readFileSync(0, "utf8"))) {
  try { out.push({ ok: JSON.parse(await runModule(module, "run", JSON.stringify(input))) }); }
  catch (e) { out.push({ error: e.message, kind: e.kind }); }
}
console.log(JSON.stringify(out));
"""


def run_in_node(tmp_path: Path, wasm: Path, inputs: list) -> list:
    (tmp_path / "wasm-runtime.mjs").write_text(
        (REPO / "static/volunteer/wasm-runtime.js").read_text())
    (tmp_path / "run.mjs").write_text(RUNNER)
    done = subprocess.run([NODE, str(tmp_path / "run.mjs"), str(wasm)], input=json.dumps(inputs),
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_the_module_follows_the_abi():
    code = (EXAMPLE / "mandelbrot-wasm.wasm").read_bytes()
    summary = wasm_summary(code)
    assert summary.imports == []
    assert summary.exports == {"memory": "memory", "alloc": "function", "run": "function"}
    wasm_abi_check(code=code, entry="run")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_outputs_are_bit_identical_to_the_python_app(tmp_path):
    python = bundled_app_read("mandelbrot")
    main = python.module("main").main
    inputs = python.generate_inputs(6, 0) + python.generate_inputs(3, 1)
    inputs += bundled_app_read("mandelbrot-wasm").generate_inputs(2, 3)
    results = run_in_node(tmp_path, EXAMPLE / "mandelbrot-wasm.wasm", inputs)
    for value, result in zip(inputs, results, strict=True):
        assert result == {"ok": json.loads(json.dumps(main(value)))}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_bad_input_is_an_error_result_not_a_crash(tmp_path):
    results = run_in_node(tmp_path, EXAMPLE / "mandelbrot-wasm.wasm",
                          [{"width": 1}, "text", {"width": 4, "height": 4, "size": 4, "x0": 9}])
    assert [r.get("kind") for r in results] == ["app", "app", "app"]
    assert results[0]["error"] == "height: missing"
    assert results[2]["error"] == "x0: out of range"


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("wasm-ld") is None
                    or NODE is None, reason="clang/lld not installed")
def test_the_committed_module_rebuilds_from_source(tmp_path):
    work = tmp_path / "build"
    shutil.copytree(EXAMPLE, work)
    (work / "mandelbrot-wasm.wasm").unlink()
    subprocess.run(["make", "-C", str(work)], check=True, capture_output=True, timeout=120)
    rebuilt = work / "mandelbrot-wasm.wasm"
    wasm_abi_check(code=rebuilt.read_bytes(), entry="run")
    inputs = bundled_app_read("mandelbrot").generate_inputs(2, 1)
    assert run_in_node(tmp_path, rebuilt, inputs) == run_in_node(
        tmp_path, EXAMPLE / "mandelbrot-wasm.wasm", inputs)


@pytest.mark.django_db
def test_the_example_installs_as_a_wasm_app_with_image_tiles():
    version = bundled_app_install(bundled_app_read("mandelbrot-wasm"))
    assert version.runtime == "wasm" and version.entry == "run"
    assert version.app.output_view == "image-tiles"
    assert version.code_url == "/apps/mandelbrot-wasm/1/code"
