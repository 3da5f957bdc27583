"""manage.py bench_browser [--runs 3]: a volunteer's first seconds in real Chromium (issue 18).

Serves this checkout after `collectstatic` (hashed, precompressed files, as production
does) with daphne on a throwaway SQLite database of Mandelbrot tiles at quorum 1, and
drives /usr/bin/chromium (headless, through Playwright) through, interleaved per round:

  desktop first   a fresh profile: open, Start, first accepted result, close at once
  desktop second  the same profile reopened: everything should come from this device
  phone first     Pixel 7 viewport/touch, 9 Mbps down / 150 ms RTT, whole browser slowed
  phone second    the same, second visit
  bare Pyodide    about:blank, import pyodide.mjs and loadPyodide() from this server

The phone's network is a throttling TCP proxy in front of daphne (every byte of every
process goes through it: page, service worker, frame). Its processor is slowed by
stopping and continuing Chromium's whole process group (SIGSTOP/SIGCONT, as cpulimit
does): CDP's CPU throttling slows only the page's main thread, never its workers, where
Pyodide starts and runs.

Prints each run, then medians and ranges; it asserts nothing about speed.
"""

import asyncio
import os
import re
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from sparecycles.projects.management.commands.bench_wasm import CHROMIUM, _free_port
from sparecycles.secret_key import development_key_environ
from sparecycles.web import pwa
from sparecycles.web.management.commands.bench_start import CHROMIUM_ARGS, Server

PIXEL_7 = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625,
           "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE_DOWN_BPS = 9_000_000
PHONE_UP_BPS = 3_000_000
PHONE_RTT_S = 0.150
RESULT_TIMEOUT_S = 240

PER_TASK_UNITS = 24
# The per-task tiles come from the "seahorse valley" view (inputs.py's seed 1): every tile
# there is real work (~0.1-0.4 s in Pyodide on a desktop), as the issue asks ("enough heavy
# units to tell"); the full view's tiles are mostly a few milliseconds, where a fixed cost
# of a millisecond or two per task (the hops page <-> worker) would be the whole story.
# That cost is printed too: the median over tiles of (worker - bare), in milliseconds.
PER_TASK_SEED = 1
DOCS_BEGIN = "<!-- bench_browser: begin -->"
DOCS_END = "<!-- bench_browser: end -->"
# Bare Pyodide's per-task time: the same app code on the same inputs, JSON in and out as
# the worker does, in a blank page; seconds per task. Both sides warm up on one tile first:
# the worker's first task also downloads, checks and loads the app's code, which bare
# Pyodide does before its clock starts.
BARE_TASKS_JS = """async ({ base, code, warmup, inputs }) => {
  const { loadPyodide } = await import(base + "pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: base, packageBaseUrl: base });
  pyodide.runPython(code);
  pyodide.runPython("import json\\ndef bench_run(s):\\n    return json.dumps(main(json.loads(s)))");
  const run = pyodide.globals.get("bench_run");
  run(JSON.stringify(warmup));   // untimed, as the worker's first task is
  const times = [];
  for (const input of inputs) {
    const t0 = performance.now();
    run(JSON.stringify(input));
    times.push((performance.now() - t0) / 1000);
  }
  return times;
}"""

BARE_JS = """async (base) => {
  const t0 = performance.now();
  const { loadPyodide } = await import(base + "pyodide.mjs");
  const pyodide = await loadPyodide({ indexURL: base, packageBaseUrl: base });
  const loaded = performance.now() - t0;
  pyodide.runPython("1 + 1");
  return loaded;
}"""


class ThrottledProxy:
    """TCP proxy: each direction delayed by half the RTT and held to a shared byte rate."""

    def __init__(self, target_port: int, down_bps: int, up_bps: int, rtt_s: float):
        self.target_port = target_port
        self.rates = {"down": down_bps / 8, "up": up_bps / 8}
        self.half_rtt = rtt_s / 2
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.next_free = {"down": 0.0, "up": 0.0}   # when each direction's link is free again
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    async def _pipe(self, reader, writer, direction):
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(16384)
                if not data:
                    break
                now = self.loop.time()
                start = max(now, self.next_free[direction])
                self.next_free[direction] = start + len(data) / self.rates[direction]
                queue.put_nowait((self.next_free[direction] + self.half_rtt, data))
        except OSError:
            pass
        queue.put_nowait((0, None))
        await sender

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, "up"),
                             self._pipe(up_reader, writer, "down"), return_exceptions=True)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class ProcessSlowdown:
    """Run a process group `factor` times slower: stopped (factor-1)/factor of every slice."""

    SLICE_S = 0.02

    def __init__(self, pgid_file: Path, factor: float):
        self.pgid_file = pgid_file
        self.factor = factor
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        running = self.SLICE_S / self.factor
        while not self.stopped.is_set():
            try:
                pgid = os.getpgid(int(self.pgid_file.read_text()))
                if pgid == os.getpgrp():
                    raise CommandError("Chromium shares our process group: cannot slow it alone")
                time.sleep(running)
                os.killpg(pgid, signal.SIGSTOP)
                time.sleep(self.SLICE_S - running)
                os.killpg(pgid, signal.SIGCONT)
            except (OSError, ValueError):
                time.sleep(self.SLICE_S)
        try:
            os.killpg(os.getpgid(int(self.pgid_file.read_text())), signal.SIGCONT)
        except (OSError, ValueError):
            pass

    def stop(self):
        self.stopped.set()
        self.thread.join(2)


def chromium_wrapper(folder: Path) -> tuple[Path, Path]:
    """A launcher that leads its own process group and says which: the slowdown's target."""
    pgid_file = folder / "chromium.pgid"
    script = folder / "chromium"
    # Playwright starts the browser as a process group leader; exec keeps that pid.
    script.write_text(f'#!/bin/sh\necho $$ > {pgid_file}\nexec {CHROMIUM} "$@"\n')
    script.chmod(0o755)
    return script, pgid_file


def runtime_network_bytes(requests, base: str) -> int:
    total = 0
    for request in requests:
        response = request.response()
        if base in request.url and response is not None and not response.from_service_worker:
            # What went over the wire: the encoded body (WhiteNoise sends Content-Length).
            total += int(response.headers.get("content-length") or 0)
    return total


# Where a visit's time goes, from the page's performance marks (compute-host.js) and its
# timeline, in seconds since Start: the runtime (and snapshot) read and handed to the
# frame, the worker's own steps (compute-worker.js), the first task's start and end.
PROFILE_JS = """({ clickPerf, clickEpoch }) => {
  const at = (name) => {
    const found = performance.getEntriesByName("sparecycles:" + name);
    return found.length ? (found[0].startTime - clickPerf) / 1000 : null;
  };
  const ready = performance.getEntriesByName("sparecycles:ready")[0];
  const startup = ready ? ready.detail : { timings: {}, fromSnapshot: false };
  const first = window.sparecycles.client.timeline[0];
  return {
    handed: at("init-sent"), ready: at("ready"), fromSnapshot: Boolean(startup.fromSnapshot),
    worker: Object.fromEntries(
      Object.entries(startup.timings || {}).map(([k, v]) => [k, v / 1000])),
    taskStart: first ? (first.start - clickEpoch) / 1000 : null,
    taskEnd: first && first.end ? (first.end - clickEpoch) / 1000 : null,
  };
}"""
PROFILE_STEPS = ["handed", "helpers", "modules", "loadPyodide", "snapshot", "stdlib", "runner",
                 "ready", "taskStart", "taskEnd", "first"]


def visit(playwright, url: str, profile: Path, device: dict, executable: Path) -> dict:
    """Open the page, Start, stop the clock at the first accepted result, close at once."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(executable), args=CHROMIUM_ARGS,
        service_workers="allow", **device)
    finished = []
    context.on("requestfinished", lambda request: finished.append(request))
    try:
        page = context.pages[0] if context.pages else context.new_page()
        opened = time.monotonic()
        page.goto(f"{url}/", timeout=120_000)
        page.locator("#toggle").wait_for(timeout=120_000)
        while page.locator("#toggle").is_disabled():
            page.wait_for_timeout(20)
        page.wait_for_timeout(300)   # the counters may be filled from the device's history
        before = int(page.locator("#count-done").text_content() or 0)
        clicked = page.evaluate("() => ({ clickPerf: performance.now(), clickEpoch: Date.now() })")
        started = time.monotonic()
        page.locator("#toggle").click()
        loaded = None
        # The first result computed in this visit: one counted after the runtime is ready
        # (an earlier visit's unacknowledged result, resent from the outbox, does not count).
        while True:
            done = int(page.locator("#count-done").text_content() or 0)
            if loaded is None and page.evaluate("() => window.sparecycles.client.pool.ready"):
                loaded = time.monotonic() - started
                before = done
            elif loaded is not None and done > before:
                break
            if time.monotonic() - started > RESULT_TIMEOUT_S:
                raise CommandError(f"no result within {RESULT_TIMEOUT_S} s: "
                                   f"{page.locator('#status').text_content()}")
            page.wait_for_timeout(20)
        first = time.monotonic() - started
        steps = page.evaluate(PROFILE_JS, clicked)
        worker = steps.pop("worker")
        # The worker's steps are times since it started: put them on the page's clock, the
        # last one ("runner") just before the page heard "ready".
        began = (steps["ready"] or 0.0) - max(worker.values(), default=0.0)
        steps.update({name: began + ms for name, ms in worker.items()})
        steps["first"] = first
        return {"page": started - opened, "runtime": loaded, "first": first,
                "runtime_bytes": runtime_network_bytes(finished, settings.PYODIDE_URL),
                "profile": steps}
    finally:
        context.close()


def bare_pyodide(playwright, url: str, profile: Path, executable: Path) -> float:
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(executable), args=CHROMIUM_ARGS, **DESKTOP)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        # A blank page of this origin (about:blank may not fetch from a loopback address).
        page.goto(f"{url}/healthz")
        return page.evaluate(BARE_JS, f"{url}{settings.PYODIDE_URL}") / 1000
    finally:
        context.close()


def worker_task_times(playwright, url: str, profile: Path, count: int) -> tuple[list, list[float]]:
    """The volunteer page runs `count` + 1 tiles (one worker); the first is its warm-up (the
    code downloaded, checked and loaded), as bare Pyodide's is. Returns the other tiles'
    inputs, in the order they ran, and seconds each, as the page saw them (from handing the
    task to its frame to the checked result)."""
    import json

    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
        service_workers="allow", **DESKTOP)
    inputs = {}   # task_id -> input, from the tasks frames the page received

    def tasks_frame(payload):
        try:
            frame = json.loads(payload)
        except (TypeError, ValueError):
            return
        if isinstance(frame, dict) and frame.get("type") == "tasks":
            for task in frame.get("tasks") or []:
                inputs[task["task_id"]] = task["input"]

    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.on("websocket", lambda ws: ws.on("framereceived", tasks_frame))
        page.goto(f"{url}/")
        page.locator("#toggle").wait_for()
        while page.locator("#toggle").is_disabled():
            page.wait_for_timeout(20)
        page.locator("#toggle").click()
        started = time.monotonic()
        while int(page.locator("#count-done").text_content() or 0) < count + 1:
            if time.monotonic() - started > RESULT_TIMEOUT_S * 3:
                raise CommandError("the per-task run did not finish")
            page.wait_for_timeout(100)
        busy = page.evaluate("() => window.sparecycles.client.timeline"
                             ".filter((e) => e.end !== null)"
                             ".map((e) => [e.task_id, (e.end - e.start) / 1000])")
        if len(busy) != count + 1:
            raise CommandError(f"the page ran {len(busy)} tasks, not {count + 1}")
        measured = busy[1:]   # the first is the warm-up
        return [inputs[task_id] for task_id, _ in measured], [s for _, s in measured]
    finally:
        context.close()


def bare_task_times(playwright, url: str, profile: Path, warmup: dict, inputs: list) -> list[float]:
    """Bare Pyodide on the same tiles: its warm-up (the code loaded, one tile run) untimed."""
    from sparecycles.projects.catalogue import bundled_app_read

    code = bundled_app_read("mandelbrot").code().decode()
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, **DESKTOP)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"{url}/healthz")
        return page.evaluate(BARE_TASKS_JS, {"base": f"{url}{settings.PYODIDE_URL}",
                                             "code": code, "warmup": warmup, "inputs": inputs})
    finally:
        context.close()


def summary(values: list[float], unit: str = "s") -> str:
    if not values:
        return "–"
    if unit == "MB":
        return (f"{statistics.median(values) / 1e6:.2f} MB "
                f"({min(values) / 1e6:.2f}–{max(values) / 1e6:.2f})")
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


class Command(BaseCommand):
    help = "A volunteer's first seconds in Chromium: desktop, phone, bare Pyodide (issue 18)."

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=3, help="Rounds (medians over them).")
        parser.add_argument("--slowdown", type=float, default=4.0,
                            help="The phone's whole-process slowdown factor.")
        parser.add_argument("--no-phone", action="store_true", help="Desktop and bare only.")
        parser.add_argument("--docs", type=Path, default=None,
                            help="Also write the output into this file's bench_browser section "
                                 "(docs/performance.md).")
        parser.add_argument("--no-collect", action="store_true",
                            help="Serve STATIC_ROOT as it is (collectstatic ran already).")

    def handle(self, *args, runs, slowdown, no_phone, no_collect, docs, **options):
        from playwright.sync_api import sync_playwright

        self.lines: list[str] = []
        began = time.time()
        load_before = os.getloadavg()[0]

        if not CHROMIUM.exists():
            raise CommandError(f"{CHROMIUM} is missing: make chromium")
        if runs < 1:
            raise CommandError("--runs must be at least 1")
        if not no_collect:
            self.say("collectstatic (hashed, compressed: as production serves)…")
            call_command("collectstatic", "--noinput", verbosity=0)
        os.environ["STATIC_ROOT"] = str(settings.STATIC_ROOT)
        # Its own daphne runs on this checkout's development key unless a key is set.
        os.environ.update(development_key_environ(os.environ, Path(settings.VAR_DIR)))
        scenarios = ["desktop first", "desktop second", "bare Pyodide"]
        if not no_phone:
            scenarios[2:2] = ["phone first", "phone second"]
        times = {name: {"runtime": [], "first": [], "runtime_bytes": [], "profile": []}
                 for name in scenarios}
        with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
            root = Path(tmp)
            (root / "server").mkdir()
            server = Server("this", Path(settings.BASE_DIR), root / "server", units=runs * 20 + 20)
            proxy = None if no_phone else ThrottledProxy(server.port, PHONE_DOWN_BPS,
                                                          PHONE_UP_BPS, PHONE_RTT_S)
            wrapper, pgid_file = chromium_wrapper(root)
            try:
                with sync_playwright() as playwright:
                    for run in range(runs):
                        profile = root / f"desktop-{run}"
                        for kind in ("first", "second"):
                            got = visit(playwright, server.url, profile, DESKTOP, CHROMIUM)
                            self._record(times, f"desktop {kind}", got, run)
                        if proxy:
                            profile = root / f"phone-{run}"
                            for kind in ("first", "second"):
                                slow = ProcessSlowdown(pgid_file, slowdown)
                                try:
                                    got = visit(playwright, f"http://127.0.0.1:{proxy.port}",
                                                profile, PIXEL_7, wrapper)
                                finally:
                                    slow.stop()
                                    pgid_file.unlink(missing_ok=True)
                                self._record(times, f"phone {kind}", got, run)
                        loaded = bare_pyodide(playwright, server.url, root / f"bare-{run}",
                                              CHROMIUM)
                        times["bare Pyodide"]["runtime"].append(loaded)
                        self.say(f"run {run + 1} bare Pyodide     runtime {loaded:6.2f} s")
            finally:
                if proxy:
                    proxy.stop()
                server.stop()
            per_task = self._per_task(playwright_runs=runs, root=root)
        self._report(times, runs, slowdown)
        self._report_profile(times)
        self._report_per_task(per_task)
        if docs:
            self.write_docs(docs, (
                f"`python manage.py bench_browser --runs {runs} --docs docs/performance.md` on "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(began))} in "
                f"{(time.time() - began) / 60:.1f} min; {CHROMIUM} headless; load average "
                f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (2 cores, "
                f"shared). Written by the command: rerun it rather than editing."))

    def _per_task(self, *, playwright_runs: int, root: Path) -> dict:
        """Worker against bare Pyodide on the same tiles, interleaved."""
        from playwright.sync_api import sync_playwright

        from sparecycles.projects.catalogue import bundled_app_read

        every = bundled_app_read("mandelbrot").generate_inputs(PER_TASK_UNITS + 1, PER_TASK_SEED)
        got = {"worker": [], "bare": [], "extra": []}
        with sync_playwright() as playwright:
            for run in range(playwright_runs):
                (root / f"pt-{run}").mkdir()
                server = Server("per-task", Path(settings.BASE_DIR), root / f"pt-{run}",
                                units=PER_TASK_UNITS + 1, seed=PER_TASK_SEED)
                try:
                    inputs, worker = worker_task_times(playwright, server.url, root / f"ptw-{run}",
                                                       PER_TASK_UNITS)
                    # The same tiles in the same order; the worker's warm-up tile warms bare up.
                    warmup = next((tile for tile in every if tile not in inputs), None)
                    if warmup is None or len(inputs) != PER_TASK_UNITS:
                        raise CommandError("the page's tiles are not the generated ones")
                    bare = bare_task_times(playwright, server.url, root / f"ptb-{run}", warmup,
                                           inputs)
                finally:
                    server.stop()
                got["worker"].append(sum(worker) / len(worker))
                got["bare"].append(sum(bare) / len(bare))
                got["extra"].extend(w - b for w, b in zip(worker, bare, strict=True))
                self.say(f"run {run + 1} per task: worker "
                                  f"{got['worker'][-1] * 1000:.1f} ms, bare Pyodide "
                                  f"{got['bare'][-1] * 1000:.1f} ms "
                                  f"(mean of {PER_TASK_UNITS} tiles)")
        return got

    def _report_per_task(self, got: dict) -> None:
        worker, bare = statistics.median(got["worker"]), statistics.median(got["bare"])
        ratios = [w / b for w, b in zip(got["worker"], got["bare"], strict=True)]
        self.say(f"\nPer task (mean over the same {PER_TASK_UNITS} Mandelbrot tiles; "
                          f"median of rounds): worker {worker * 1000:.1f} ms, bare Pyodide "
                          f"{bare * 1000:.1f} ms, ratio {statistics.median(ratios):.3f} "
                          f"({min(ratios):.3f}–{max(ratios):.3f}); a task's own cost on the "
                          f"page (median over tiles of worker − bare): "
                          f"{statistics.median(got['extra']) * 1000:.1f} ms")

    def say(self, line: str) -> None:
        self.lines.append(line)
        self.stdout.write(line)

    def write_docs(self, path: Path, header: str) -> None:
        """Replace (or append) this command's section of docs/performance.md."""
        text = path.read_text() if path.exists() else ""
        title = "## A volunteer's first seconds in the browser (bench_browser)"
        body = "\n".join([DOCS_BEGIN, title, "", header, "", "```", *self.lines, "```",
                          DOCS_END])
        pattern = re.compile(re.escape(DOCS_BEGIN) + ".*?" + re.escape(DOCS_END), re.S)
        text = pattern.sub(lambda _: body, text) if pattern.search(text) else \
            text.rstrip("\n") + "\n\n" + body + "\n"
        path.write_text(text)

    def _record(self, times, name, got, run):
        for key in ("runtime", "first", "runtime_bytes", "profile"):
            times[name][key].append(got[key])
        self.say(f"run {run + 1} {name:15s} runtime {got['runtime']:6.2f} s  "
                          f"first result {got['first']:6.2f} s  "
                          f"runtime on the wire {got['runtime_bytes'] / 1e6:.2f} MB")

    def _report_profile(self, times):
        """Medians of each step's time since Start, per scenario (the page's marks)."""
        self.say("\nWhere the time goes (median s since Start; worker steps on the page's clock): "
                 "handed = runtime (and snapshot) read from this device and given to the frame; "
                 "helpers/modules/loadPyodide/snapshot/stdlib/runner = the worker's steps "
                 "(snapshot: making one; stdlib: the rest of the stdlib mounted); ready = the "
                 "page hears it; task = the first task in the worker.")
        self.say("Between handed and helpers: the frame's document and its worker start, and "
                 "the runtime (and snapshot) are copied to them.")
        self.say("| | " + " | ".join(PROFILE_STEPS) + " | from snapshot |")
        self.say("|---|" + "---:|" * (len(PROFILE_STEPS) + 1))
        for name, got in times.items():
            profiles = got.get("profile") or []
            if not profiles:
                continue
            cells = []
            for step in PROFILE_STEPS:
                values = [p[step] for p in profiles if p.get(step) is not None]
                cells.append(f"{statistics.median(values):.2f}" if values else "–")
            warm = sum(1 for p in profiles if p.get("fromSnapshot"))
            self.say(f"| {name} | " + " | ".join(cells) + f" | {warm}/{len(profiles)} |")

    def _report(self, times, runs, slowdown):
        files = [settings.STATIC_ROOT / "pyodide" / settings.PYODIDE_VERSION / name
                 for name in pwa.PYODIDE_RUNTIME_FILES]
        plain = sum(f.stat().st_size for f in files)
        self.say(f"\nMedians (ranges) of {runs} interleaved rounds; Start pressed to "
                          f"runtime loaded / first accepted result; phone = Pixel 7, "
                          f"{PHONE_DOWN_BPS / 1e6:.0f} Mbps / {PHONE_RTT_S * 1000:.0f} ms, "
                          f"Chromium slowed {slowdown:g}×. Runtime: {plain / 1e6:.2f} MB on disk.")
        self.say("| | runtime loaded | first accepted result | runtime on the wire |")
        self.say("|---|---:|---:|---:|")
        for name, got in times.items():
            self.say(f"| {name} | {summary(got['runtime'])} | {summary(got['first'])} "
                              f"| {summary(got['runtime_bytes'], 'MB')} |")
