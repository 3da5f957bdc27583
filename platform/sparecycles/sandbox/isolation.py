"""How a sandbox process is isolated: the command line that starts one.

Two mechanisms, tried in this order by "auto":

- bubblewrap (`bwrap`, Debian's `bubblewrap`): new user (unless root), network, PID,
  IPC and UTS namespaces; a read-only root that holds only /usr (the Node binary and
  its libraries), the Pyodide runtime and runner.mjs — not the repository, var/, /etc
  or /home. Works as root and, where unprivileged user namespaces are enabled
  (Debian's default), as any user.
- `unshare` (util-linux): new network, PID, IPC and UTS namespaces (plus a user
  namespace when not root). The host's file system stays visible, so this relies on
  Node's permission model (read access to the runtime only, no writes) and
  RLIMIT_FSIZE=0.

Always, inside either: an empty environment, `prlimit` (memory via RLIMIT_DATA,
lifetime CPU, no file writes, no core dumps, few descriptors), and Node with
`--experimental-permission` (no file writes, reads only of the runtime, no child
processes or workers) and `--disallow-code-generation-from-strings` (owner code
can't eval JavaScript). If no mechanism works, `isolation()` raises
SandboxUnavailable: owner code never runs unsandboxed.
"""

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .errors import SandboxUnavailable

RUNNER = Path(__file__).with_name("runner.mjs")
INSIDE = Path("/sandbox")  # where bwrap mounts the runtime and the runner


@dataclass(frozen=True)
class Isolation:
    mechanism: str               # "bwrap" or "unshare"
    prefix: tuple[str, ...]      # argv before prlimit
    runner: str                  # runner.mjs as the sandbox sees it
    pyodide: str                 # the Pyodide directory as the sandbox sees it
    node: str

    def command(self, *, memory_mb: int, cpu_s: int) -> list[str]:
        limits = [
            shutil.which("prlimit") or "/usr/bin/prlimit",
            f"--data={memory_mb * 2**20}", f"--cpu={cpu_s}", "--fsize=0", "--core=0",
            "--nofile=64", "--",
        ]
        node = [
            self.node, "--experimental-permission", f"--allow-fs-read={self.pyodide}/",
            f"--allow-fs-read={self.runner}", "--disallow-code-generation-from-strings",
            "--no-warnings", self.runner, self.pyodide,
        ]
        return [*self.prefix, *limits, *node]


def _bwrap(node: str, pyodide: Path) -> Isolation | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    prefix = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
              "--cap-drop", "ALL"]
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / top
        if path.is_symlink():
            prefix += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            prefix += ["--ro-bind", str(path), str(path)]
    node_dir = Path(node).resolve().parent
    if not str(node_dir).startswith(("/usr/", "/bin", "/lib")):
        prefix += ["--ro-bind", str(node_dir), str(node_dir)]  # e.g. /opt/node/bin
    prefix += ["--ro-bind", str(pyodide), str(INSIDE / "pyodide"),
               "--ro-bind", str(RUNNER), str(INSIDE / "runner.mjs"),
               "--proc", "/proc", "--dev", "/dev", "--chdir", str(INSIDE),
               "--remount-ro", "/", "--"]
    return Isolation(mechanism="bwrap", prefix=tuple(prefix), runner=str(INSIDE / "runner.mjs"),
                     pyodide=str(INSIDE / "pyodide"), node=str(Path(node).resolve()))


def _unshare(node: str, pyodide: Path) -> Isolation | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    prefix = [unshare, *user, "--net", "--pid", "--fork", "--kill-child", "--ipc", "--uts",
              "--"]
    return Isolation(mechanism="unshare", prefix=tuple(prefix), runner=str(RUNNER),
                     pyodide=str(pyodide), node=str(Path(node).resolve()))


def _works(isolation: Isolation) -> bool:
    """Start the mechanism for real (no network inside, or it does not count)."""
    probe = [*isolation.prefix, isolation.node, "-e",
             "const i=require('os').networkInterfaces();"
             "process.exit(Object.values(i).flat().some(a=>!a.internal)?3:0)"]
    try:
        done = subprocess.run(probe, env={}, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def isolation() -> Isolation:
    """The first mechanism that works here (cached per process); SandboxUnavailable if none."""
    config = settings.SANDBOX
    wanted = config["ISOLATION"]
    node = shutil.which(config["NODE"])
    pyodide = Path(settings.PYODIDE_DIR)
    if node is None:
        raise SandboxUnavailable(
            "Custom validators can't run: Node.js is not installed on the server "
            "(apt-get install nodejs), so results wait unjudged.")
    if not (pyodide / "pyodide.mjs").exists():
        raise SandboxUnavailable(
            "Custom validators can't run: the Pyodide runtime is missing on the server "
            "(run npm ci), so results wait unjudged.")
    builders = {"bwrap": _bwrap, "unshare": _unshare}
    names = list(builders) if wanted == "auto" else [wanted]
    for name in names:
        builder = builders.get(name)
        candidate = builder(node, pyodide) if builder else None
        if candidate is not None and _works(candidate):
            return candidate
    raise SandboxUnavailable(
        "Custom validators can't run: no sandbox is available on this server (install "
        "bubblewrap, or run as root, or enable user namespaces; see docs/sandbox.md), so "
        "results wait unjudged.")
