"""python manage.py bench_wasm [--tiles 16] [--rounds 3]: Python in Pyodide against wasm.

Starts its own daphne (on a throwaway SQLite database in a temporary folder, so the
site's data is untouched) and headless Chromium, loads the volunteer compute worker,
and runs the same Mandelbrot tiles through the Python app (workunits/mandelbrot, in
Pyodide) and the WebAssembly app (workunits/mandelbrot-wasm), both fetched and
hash-checked from the server as for volunteers. Prints the times, checks the outputs
are identical, and prints the ratio. A benchmark prints numbers; it asserts nothing
about speed.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sparecycles.secret_key import development_key_environ

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
APPS = ("mandelbrot", "mandelbrot-wasm")

# Runs in the page: one module worker, both runtimes, tasks strictly one after another.
BENCH_JS = """
async ({ workerUrl, pyodideBase, tasks }) => {
  const worker = new Worker(workerUrl, { type: "module", name: "bench" });
  const waiting = new Map();
  let ready;
  const readyPromise = new Promise((resolve, reject) => { ready = { resolve, reject }; });
  worker.onmessage = (event) => {
    const m = event.data;
    if (m.type === "ready") ready.resolve(m);
    else if (m.type === "init-error") ready.reject(new Error(m.message));
    else if (m.type === "result") { waiting.get(m.task_id)(m); waiting.delete(m.task_id); }
  };
  const started = performance.now();
  worker.postMessage({ type: "init", pyodideBase });
  const hello = await readyPromise;
  const loadMs = performance.now() - started;
  const run = (task) => new Promise((resolve) => {
    waiting.set(task.task_id, resolve);
    worker.postMessage({ type: "run", task });
  });
  const out = { loadMs, python: hello.python, rounds: [] };
  for (const round of tasks) {
    const results = {};
    for (const [runtime, list] of Object.entries(round)) {
      const t0 = performance.now();
      const answers = [];
      for (const task of list) answers.push(await run(task));
      results[runtime] = { ms: performance.now() - t0, answers };
    }
    out.rounds.push(results);
  }
  worker.terminate();
  return out;
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = "Benchmark the same Mandelbrot tiles as Python in Pyodide and as wasm, in Chromium."

    def add_arguments(self, parser):
        parser.add_argument("--tiles", type=int, default=64,
                            help="Tiles per runtime and round (the first N of the picture).")
        parser.add_argument("--rounds", type=int, default=2,
                            help="Rounds after a warm-up round; the median round is reported.")
        parser.add_argument("--seed", type=int, default=0, help="Picks the view (0: full set).")
        parser.add_argument("--install-only", action="store_true", help="(internal)")

    def handle(self, *args, tiles, rounds, seed, install_only, **options):
        if install_only:
            return self._install(tiles, seed)
        if not CHROMIUM.exists():
            raise CommandError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        if tiles < 1 or rounds < 1:
            raise CommandError("--tiles and --rounds must be at least 1.")
        with tempfile.TemporaryDirectory(prefix="bench-wasm-") as var:
            env = {**os.environ, "SPARECYCLES_VAR_DIR": var, "DATABASE_URL": "",
                   "REDIS_URL": "", "PYTHONPATH": str(Path(settings.BASE_DIR) / "platform"),
                   "DJANGO_SETTINGS_MODULE": "sparecycles.settings",
                   "SPARECYCLES_EMBEDDED_HOUSEKEEPING": "false"}
            env = development_key_environ(env, Path(var))  # its own daphne, unless a key is set
            manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
            subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True)
            found = subprocess.run([*manage, "bench_wasm", "--install-only", "--tiles",
                                    str(tiles), "--seed", str(seed)], env=env, check=True,
                                   capture_output=True, text=True)
            setup = json.loads(found.stdout)
            port = _free_port()
            log = Path(var) / "daphne.log"
            with log.open("wb") as handle:
                server = subprocess.Popen(
                    [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                     "sparecycles.asgi:application"], cwd=settings.BASE_DIR, env=env,
                    stdout=handle, stderr=subprocess.STDOUT)
            try:
                url = f"http://127.0.0.1:{port}"
                self._wait(url, server, log)
                result = self._browse(url, setup, rounds)
            finally:
                server.terminate()
                server.wait(timeout=10)
        self._report(setup, result, tiles, rounds)

    def _install(self, tiles: int, seed: int) -> None:
        """In the throwaway database: install both apps, print their task payloads."""
        from sparecycles.projects.catalogue import bundled_app_install, bundled_app_read

        out = {"inputs": bundled_app_read("mandelbrot").generate_inputs(tiles, seed)}
        main = bundled_app_read("mandelbrot").module("main").main
        out["native"] = []
        started = time.perf_counter()
        for value in out["inputs"]:
            out["native"].append(main(value))
        out["native_ms"] = (time.perf_counter() - started) * 1000
        for name in APPS:
            version = bundled_app_install(bundled_app_read(name))
            out[name] = {"name": name, "version": version.number, "runtime": version.runtime,
                         "code_url": version.code_url, "sha256": version.sha256,
                         "entry": version.entry, "packages": list(version.packages)}
        self.stdout.write(json.dumps(out))

    @staticmethod
    def _wait(url: str, server: subprocess.Popen, log: Path) -> None:
        deadline = time.monotonic() + 30
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError(f"daphne exited:\n{log.read_text()[-3000:]}")
            try:
                with opener.open(f"{url}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise CommandError(f"daphne did not start:\n{log.read_text()[-3000:]}")

    @staticmethod
    def _browse(url: str, setup: dict, rounds: int) -> dict:
        from playwright.sync_api import sync_playwright

        def tasks(round_no: int) -> dict:
            return {name: [{"task_id": f"{name}-{round_no}-{i}", "deadline": "2099-01-01T00:00:00Z",
                            "app": setup[name], "input": value}
                           for i, value in enumerate(setup["inputs"])] for name in APPS}

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"{url}/healthz")
                return page.evaluate(BENCH_JS, {
                    "workerUrl": f"{settings.STATIC_URL}volunteer/compute-worker.js",
                    "pyodideBase": settings.PYODIDE_URL,
                    "tasks": [tasks(r) for r in range(rounds + 1)],   # round 0 warms up
                }) | {"chromium": browser.version}
            finally:
                browser.close()

    def _report(self, setup: dict, result: dict, tiles: int, rounds: int) -> None:
        expected = [json.dumps(v, sort_keys=True) for v in setup["native"]]
        for number, round_ in enumerate(result["rounds"]):
            for name in APPS:
                answers = round_[name]["answers"]
                bad = [a for a in answers if a["status"] != "ok"]
                if bad:
                    raise CommandError(f"{name} failed in round {number}: {bad[0]['error']}")
                got = [json.dumps(json.loads(a["outputJson"]), sort_keys=True) for a in answers]
                if got != expected:
                    raise CommandError(f"{name}'s outputs differ from native CPython's.")
        timed = result["rounds"][1:]
        py = statistics.median(r["mandelbrot"]["ms"] for r in timed)
        wasm = statistics.median(r["mandelbrot-wasm"]["ms"] for r in timed)
        warm = result["rounds"][0]
        pixels = sum(len(row) for v in setup["native"] for row in v["iterations"])
        iterations = sum(sum(row) for v in setup["native"] for row in v["iterations"])
        write = self.stdout.write
        write(f"Chromium {result['chromium']}, Pyodide (Python {result['python']}) loaded in "
              f"{result['loadMs']:.0f} ms")
        write(f"{tiles} Mandelbrot tiles ({pixels:,} pixels, {iterations:,} iterations) per "
              f"runtime; median of {rounds} rounds after a warm-up; outputs identical to "
              "CPython's in every round")
        write(f"  native CPython (this process)  {setup['native_ms']:10.1f} ms")
        write(f"  Python in Pyodide             {py:10.1f} ms   "
              f"(first round, with code download: {warm['mandelbrot']['ms']:.1f} ms)")
        write(f"  WebAssembly (C, clang -O2)    {wasm:10.1f} ms   "
              f"(first round, with download and compile: {warm['mandelbrot-wasm']['ms']:.1f} ms)")
        write(self.style.SUCCESS(f"Pyodide / wasm ratio: {py / wasm:.1f}x "
                                 f"(Pyodide / native CPython: {py / setup['native_ms']:.2f}x)"))
