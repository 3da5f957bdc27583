"""CPU time and memory of processes, read from /proc (Linux; no psutil needed)."""

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = Path("/proc")


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # user + system CPU seconds since the process started
    rss_kb: int  # resident now
    hwm_kb: int  # peak resident
    wait_s: float = 0.0  # runnable but waiting for a CPU (other processes had it), all threads


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ")".
    return text[text.rindex(")") + 2:].split()


def usage(pid: int) -> Usage | None:
    """None when the process is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)
    rss = hwm = 0
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        return None
    return Usage(cpu_s=cpu, rss_kb=rss, hwm_kb=hwm, wait_s=_run_queue_wait_s(pid))


def _run_queue_wait_s(pid: int) -> float:
    """Seconds the process's threads spent runnable on a run queue (/proc/PID/task/*/schedstat:
    on-CPU ns, waiting ns, timeslices). Only living threads count."""
    waited = 0
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            try:
                waited += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    except OSError:
        return 0.0
    return waited / 1e9


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def total(pids: list[int]) -> Usage:
    """Summed over `pids` (vanished ones count nothing)."""
    found = [u for u in map(usage, pids) if u is not None]
    return Usage(cpu_s=sum(u.cpu_s for u in found), rss_kb=sum(u.rss_kb for u in found),
                 hwm_kb=sum(u.hwm_kb for u in found), wait_s=sum(u.wait_s for u in found))


def machine_busy_s() -> tuple[float, float]:
    """(CPU-seconds all cores spent busy, stolen by the hypervisor) since boot (/proc/stat)."""
    try:
        fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    steal = ticks[7] if len(ticks) > 7 else 0
    # guest time is already counted in user time.
    busy = sum(ticks[:8]) - idle - steal
    return busy / CLOCK_TICKS, steal / CLOCK_TICKS


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = "unknown CPU"
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_mb = 0
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count() or 1, "memory_mb": memory_mb,
            "kernel": os.uname().release}
