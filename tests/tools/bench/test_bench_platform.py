"""bench_platform end to end with tiny numbers, and the pieces it is made of."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.bench import procs, report

REPO = Path(__file__).resolve().parents[3]
SCALE_OUT = bool(os.environ.get("REDIS_URL")) and os.environ.get(
    "DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def test_proc_readings_of_this_process():
    mine = procs.usage(os.getpid())
    assert mine.cpu_s > 0 and mine.rss_kb > 1000 and mine.hwm_kb >= mine.rss_kb
    assert mine.wait_s >= 0
    assert procs.usage(2 ** 22 + 7) is None  # no such process
    busy, steal = procs.machine_busy_s()
    assert busy > 0 and steal >= 0
    assert procs.machine()["cores"] >= 1


def _results(validated: float, connected: int, paced_p99: float) -> dict:
    phase = {"name": "saturated", "connected": connected, "active": 10,
             "validated_per_s": validated, "accepted_per_s": validated,
             "ack": {"n": 5, "p50_ms": 10.0, "p99_ms": 400.0}}
    paced = {**phase, "name": "paced", "fraction": 0.5,
             "ack": {"n": 5, "p50_ms": 5.0, "p99_ms": paced_p99}}
    return {"modes": [{"mode": "scale-out", "sizes": [
        {"size": 1000, "phases": [phase, paced]}]}]}


def test_the_report_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "performance.md"
    browser = "<!-- bench_browser: begin -->\n## Browser\nnumbers\n<!-- bench_browser: end -->\n"
    # A file from before the markers: the old report is replaced, the browser's section stays.
    path.write_text("# Performance\nold numbers\n\n" + browser + "\nnotes after\n")
    report.section_write(path, "# Performance\nnew numbers\n")
    text = path.read_text()
    assert "old numbers" not in text and "new numbers" in text
    assert browser in text and text.endswith("notes after\n")
    assert text.startswith(report.BEGIN)
    # Once marked, only what is between our markers changes, wherever it sits.
    path.write_text("intro\n" + text)
    report.section_write(path, "# Performance\nnewer\n")
    again = path.read_text()
    assert again.startswith("intro\n" + report.BEGIN) and "new numbers" not in again
    assert "newer" in again and browser in again and again.endswith("notes after\n")
    fresh = tmp_path / "none.md"
    report.section_write(fresh, "# Performance\n")
    assert fresh.read_text() == f"{report.BEGIN}\n# Performance\n{report.END}\n"


def test_socket_tax_and_light_load_efficiency_are_targets():
    saturated = {"name": "saturated", "connected": 1000, "per_cpu_s": 400.0,
                 "validated_per_s": 300.0, "accepted_per_s": 300.0,
                 "ack": {"n": 5, "p50_ms": 10.0, "p99_ms": 400.0}}
    paced = {**saturated, "name": "paced", "fraction": 0.25, "per_cpu_s": 200.0}
    results = {"modes": [{"mode": "embedded", "ceiling": {"per_cpu_s": 500.0},
                          "sizes": [{"size": 1000, "phases": [saturated, paced]}]}]}
    verdicts = {row[0].split(" (")[0]: (row[1], row[2]) for row in report.targets(results)}
    assert verdicts["socket tax ≥ 0.6"] == ("0.80 (400 ÷ 500)", "**met**")
    assert verdicts["light-load efficiency ≥ 0.7"] == (
        "0.50 (200 ÷ 400, 1,000 connected)", "**short by 0.20** (71% of the target)")


def test_targets_say_met_or_by_how_much_they_fall_short():
    rows = report.targets(_results(validated=250.0, connected=1000, paced_p99=40.0))
    verdicts = {row[0]: row[2] for row in rows}
    assert verdicts["≥ 1,000 results/s validated at quorum 2, scale-out"] == (
        "**short by 750/s** (25% of the target)")
    assert verdicts["10,000 volunteers connected at once (scale-out)"] == "**short by 9,000**"
    paced = next(v for k, v in verdicts.items() if "at 50% of the saturated rate" in k)
    saturated = next(v for k, v in verdicts.items() if k.endswith("saturated)"))
    assert paced == "**met**" and saturated == "**short**: 4.0× too slow"
    rows = report.targets(_results(validated=1200.0, connected=10000, paced_p99=40.0))
    assert [row[2] for row in rows[:2]] == ["**met**", "**met**"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_the_command_runs_end_to_end_and_writes_the_report(tmp_path):
    output, raw = tmp_path / "performance.md", tmp_path / "raw.json"
    modes = "embedded,scale-out" if SCALE_OUT else "embedded"
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "SPARECYCLES_TOOLS": "1"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "bench_platform", "--modes", modes, "--sizes", "12",
         "--active", "4", "--window", "3", "--warmup", "0.5", "--idle-probe", "0.5",
         "--backlog", "300", "--ceiling-seconds", "1", "--paced-at", "12", "--paced", "0.5",
         "--output", str(output), "--json", str(raw)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stderr[-4000:]
    text = output.read_text()
    assert text.startswith(report.BEGIN) and text.rstrip().endswith(report.END)
    inner = text.split(report.BEGIN + "\n", 1)[1].rsplit("\n" + report.END, 1)[0]
    assert inner in done.stdout  # printed as written
    for heading in ("## Targets", "## Throughput and latency (saturated)",
                    "## Latency below saturation (paced)", "## Cost of connected volunteers",
                    "## Ceilings and ratios", "## Where the time goes", "## Integrity"):
        assert heading in text
    assert "python manage.py bench_platform --modes" in text  # how to reproduce it
    results = json.loads(raw.read_text())
    assert [m["mode"] for m in results["modes"]] == modes.split(",")
    for mode in results["modes"]:
        assert not mode.get("skipped"), mode.get("skipped")
        assert mode["echo"]["round_trips"] > 0
        assert mode["ceiling"]["results_per_s"] > 0
        assert mode["profile"]["queries_per_result"] > 0
        [size] = mode["sizes"]
        assert size["size"] == 12 and size["connected_idle"] == 8
        assert [p["name"] for p in size["phases"]] == ["saturated", "paced"]
        for phase in size["phases"]:
            assert phase["connected"] == 12, phase
            assert phase["accepted"] > 0 and phase["ack"]["n"] > 0
            # Counted in the database afterwards. The validator process passes at most once
            # a second (validation/management/commands/validator.py): a window of 3 s holds
            # two passes or more, where 1.5 s sometimes held one that completed nothing.
            assert phase["validated"] > 0, phase
            # Each phase leaves nothing unvalidated behind for the next one to pay for.
            assert phase["drain_s"] >= 0 and phase["owed_cpu_s"] >= 0, phase
            assert not any("awaiting validation" in p for p in phase["problems"]), phase
        assert mode["audit"]["problems"] == [] and mode["audit"]["acked"] > 0
    assert "cleanup" not in done.stderr  # every throwaway world was removed


class _Usage:
    def __init__(self, cpu_s: float) -> None:
        self.cpu_s = cpu_s


class _DrainingServer:
    """A server that spends 0.01 CPU-s per result it validates, 40 results per look."""

    def __init__(self, backlog: int) -> None:
        self.backlog, self.cpu_s = backlog, 0.0

    def pending(self) -> int:
        done = min(40, self.backlog)
        self.backlog -= done
        self.cpu_s += 0.01 * done
        return self.backlog + done  # what was left when this look began

    def usage(self) -> _Usage:
        return _Usage(self.cpu_s)


def test_a_phase_is_charged_the_validation_its_window_left_behind():
    """A validator that fell behind in the window did that work after it; the window pays
    CPU per result drained × the growth of the backlog over the window."""
    import asyncio

    from tools.bench import live

    server = _DrainingServer(backlog=200)
    phase = live.Phase(name="saturated", active=4, think_s=0.0, window_s=1.0,
                       backlog_start=50, backlog_end=170)
    asyncio.run(live._drain(phase, server, server.pending))
    assert server.backlog == 0 and phase.problems == []
    # 200 drained for 2.0 CPU-s: 0.01 a result; the window added 120 of them.
    assert phase.owed_cpu_s == pytest.approx(1.2, abs=0.05)


class _ValidatorProcess:
    """`serve`'s validator, which went on validating while the swarm drained its acks: by
    the time the drain looks, it has validated everything, at 0.01 CPU-s per result."""

    def __init__(self) -> None:
        self.validation_s = 0.0

    def pending(self) -> int:
        return 0

    def usage(self) -> _Usage:
        return _Usage(100.0 + self.validation_s)  # the sockets' processes' CPU besides

    def validation_cpu_s(self) -> float:
        return self.validation_s


def test_validation_done_while_the_swarm_drained_is_charged_too():
    """Where validation has a process of its own, its CPU counts from the window's end:
    a backlog validated before the drain looked was still the window's."""
    import asyncio

    from tools.bench import live

    server = _ValidatorProcess()
    phase = live.Phase(name="saturated", active=4, think_s=0.0, window_s=1.0,
                       backlog_start=50, backlog_end=170)
    server.validation_s = 0.01 * (170 + 30)  # the backlog and the swarm's last 30 results
    asyncio.run(live._drain(phase, server, server.pending, validating_at_end=0.0,
                            stored_after=30))
    # 200 validated for 2.0 CPU-s since the window's end: 0.01 a result; it added 120.
    assert phase.owed_cpu_s == pytest.approx(1.2, abs=0.01) and phase.drain_s < 1


def test_a_backlog_that_does_not_drain_is_a_problem(monkeypatch):
    import asyncio

    from tools.bench import live

    monkeypatch.setattr(live, "DRAIN_LIMIT_S", 0.3)
    phase = live.Phase(name="paced", active=4, think_s=1.0, window_s=1.0)
    stuck = _DrainingServer(backlog=0)
    asyncio.run(live._drain(phase, stuck, lambda: 7))
    assert phase.owed_cpu_s == 0 and "7 results still awaiting validation" in phase.problems[0]
