"""manage.py bench_start --baseline PATH: Start-to-first-result, this code against another
checkout, in the same run (issue 14: the compute frame must not slow the start down).

Two daphne servers, each from its own checkout on a throwaway SQLite database with
Mandelbrot tiles at quorum 1; headless Chromium opens each volunteer page, runs
interleaved (baseline, this, baseline, this, ...):

  cold  a fresh browser profile: nothing cached; press Start, wait for the first acked result
  warm  the same profile after that first visit (service worker and its runtime cache in
        place): reload, press Start, wait for the first acked result

and prints the medians and the ratio this / baseline. A baseline is any checkout of the
repository, e.g. `git worktree add /tmp/sparecycles-main main` (it needs no .venv of its
own: this interpreter runs both).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sparecycles.projects.management.commands.bench_wasm import CHROMIUM, _free_port

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
DONE_TIMEOUT_S = 180


class Server:
    def __init__(self, label: str, checkout: Path, var: Path, units: int, seed: int = 0):
        self.label = label
        self.checkout = checkout
        env = {**os.environ, "SPARECYCLES_VAR_DIR": str(var), "DATABASE_URL": "",
               "REDIS_URL": "", "PYTHONPATH": str(checkout / "platform"),
               "DJANGO_SETTINGS_MODULE": "sparecycles.settings", "DEBUG": "false",
               "SPARECYCLES_RETRY_AFTER_S": "1", "SPARECYCLES_DAILY_QUOTA_START": "1000"}
        manage = [sys.executable, str(checkout / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=checkout)
        subprocess.run([*manage, "load_workunits", "mandelbrot", "--count", str(units),
                        "--seed", str(seed), "--quorum", "1", "--target", "1"],
                       env=env, check=True, cwd=checkout, capture_output=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = var / "daphne.log"
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                 "sparecycles.asgi:application"], cwd=checkout, env=env,
                stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            if self.process.poll() is not None:
                raise CommandError(f"{label}: daphne exited:\n{self.log.read_text()[-3000:]}")
            try:
                with opener.open(f"{self.url}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise CommandError(f"{label}: daphne did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_to_first_result(page, url: str) -> float:
    """Open the page, press Start, seconds until the first result is acknowledged."""
    page.goto(f"{url}/")
    page.get_by_role("button", name="Start").wait_for()
    deadline = time.monotonic() + 30
    while page.locator("#toggle").is_disabled():
        if time.monotonic() > deadline:
            raise CommandError("the Start button stayed disabled")
        page.wait_for_timeout(50)
    before = int(page.locator("#count-done").text_content())
    started = time.monotonic()
    page.locator("#toggle").click()
    while int(page.locator("#count-done").text_content()) <= before:
        if time.monotonic() - started > DONE_TIMEOUT_S:
            raise CommandError(f"no result within {DONE_TIMEOUT_S} s at {url}: "
                               f"{page.locator('#status').text_content()}")
        page.wait_for_timeout(25)
    elapsed = time.monotonic() - started
    page.locator("#toggle").click()   # pause
    return elapsed


def one_visitor(playwright, url: str, profile: Path) -> tuple[float, float]:
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
        service_workers="allow", viewport={"width": 1280, "height": 800})
    try:
        page = context.pages[0] if context.pages else context.new_page()
        cold = start_to_first_result(page, url)
        # Wait until the service worker has the runtime, as a returning visitor's would.
        deadline = time.monotonic() + 120
        while "Ready:" not in (page.locator("#offline-info").text_content() or ""):
            if time.monotonic() > deadline:
                raise CommandError("the runtime was never cached for offline use")
            page.wait_for_timeout(200)
        warm = start_to_first_result(page, url)
        return cold, warm
    finally:
        context.close()


class Command(BaseCommand):
    help = ("Cold and warm Start-to-first-result in Chromium: this code against a baseline "
            "checkout.")

    def add_arguments(self, parser):
        parser.add_argument("--baseline", required=True,
                            help="A checkout of the code to compare with "
                                 "(e.g. a worktree of main).")
        parser.add_argument("--runs", type=int, default=5, help="Visitors per side (median).")

    def handle(self, *args, baseline, runs, **options):
        from playwright.sync_api import sync_playwright

        if not CHROMIUM.exists():
            raise CommandError(f"{CHROMIUM} is missing: apt-get install -y chromium")
        base = Path(baseline).resolve()
        if not (base / "manage.py").exists():
            raise CommandError(f"{base} is not a checkout of this repository (no manage.py).")
        if not (base / "node_modules" / "pyodide").exists():
            os.symlink(Path(settings.BASE_DIR) / "node_modules", base / "node_modules")
        if runs < 1:
            raise CommandError("--runs must be at least 1")
        times = {"baseline": {"cold": [], "warm": []}, "this": {"cold": [], "warm": []}}
        with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
            root = Path(tmp)
            servers = {}
            try:
                for label, checkout in (("baseline", base), ("this", Path(settings.BASE_DIR))):
                    (root / label).mkdir()
                    servers[label] = Server(label, checkout, root / label, units=runs * 8 + 8)
                with sync_playwright() as playwright:
                    for run in range(runs):
                        for label in ("baseline", "this"):
                            cold, warm = one_visitor(playwright, servers[label].url,
                                                     root / f"profile-{label}-{run}")
                            times[label]["cold"].append(cold)
                            times[label]["warm"].append(warm)
                            self.stdout.write(f"run {run + 1} {label:8s} cold {cold:6.2f} s  "
                                              f"warm {warm:6.2f} s")
            finally:
                for server in servers.values():
                    server.stop()
        self.stdout.write(f"\nStart-to-first-result, median of {runs} (headless Chromium, "
                          f"interleaved):")
        for kind in ("cold", "warm"):
            old = statistics.median(times["baseline"][kind])
            new = statistics.median(times["this"][kind])
            self.stdout.write(f"  {kind}: baseline {old:.2f} s, this {new:.2f} s, "
                              f"ratio {new / old:.2f}")
