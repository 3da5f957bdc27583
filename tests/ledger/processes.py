"""Start ledger worker processes against this test session's database."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

WORKER = Path(__file__).with_name("worker.py")
REPO = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform")}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(connection.settings_dict["NAME"]), *map(str, args)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class StartLine:
    """A barrier for worker processes: they connect, report ready, then start on go()."""

    def __init__(self, directory: Path, count: int):
        self.go_file = directory / "go"
        self.count = count

    def __str__(self) -> str:
        return str(self.go_file)

    def go(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(list(self.go_file.parent.glob("go.*.ready"))) < self.count:
            assert time.monotonic() < deadline, "workers did not get ready in time"
            time.sleep(0.02)
        self.go_file.touch()


def result(process: subprocess.Popen, timeout: float = 120) -> dict:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"worker timed out:\n{err[-3000:]}") from None
    assert process.returncode == 0, f"worker failed ({process.returncode}):\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])
