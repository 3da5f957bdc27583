"""python manage.py pyodide_compile_wheels WHEEL... [--out DIR]: byte-compile app wheels.

pyodide-build's `py-compile` step turns a pure-Python wheel into one holding only
bytecode (name-ver-cp314-none-any.whl), which starts faster in the browser: Pyodide
imports the .pyc files without compiling the source. Run on the host, though, it
compiles with the host's Python (3.13 here), whose bytecode Pyodide's Python 3.14
rejects ("bad magic number"). So this command runs that very step — pyodide-build's
own _py_compile_archive — inside Pyodide's Python, under Node, with pyodide-build's
source mounted from where it is installed:

    python3.13 -m venv var/pyodide-build-venv
    var/pyodide-build-venv/bin/pip install pyodide-build
    manage.py pyodide_compile_wheels dist/mylib-1.0-py3-none-any.whl \\
        --pyodide-build var/pyodide-build-venv/lib/python3.13/site-packages

(or set PYODIDE_BUILD_SITE). Upload the cp314 wheel as an app version's wheel; the
upload check accepts cpXY-none-any wheels for the Python of the pinned Pyodide.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

NODE_SCRIPT = r"""
import { loadPyodide } from "%(pyodide)s";
const [site, work] = process.argv.slice(2);
const py = await loadPyodide({ indexURL: "%(index)s" });
py.FS.mkdirTree("/pyodide-build");
py.FS.mount(py.FS.filesystems.NODEFS, { root: site }, "/pyodide-build");
py.FS.mkdirTree("/work"); py.FS.mount(py.FS.filesystems.NODEFS, { root: work }, "/work");
const out = py.runPython(`
import json, sys
sys.path.append("/pyodide-build")
from pathlib import Path
from pyodide_build._py_compile import _py_compile_archive
done = {}
for path in sorted(Path("/work").glob("*.whl")):
    result = _py_compile_archive(path, keep=True, verbose=False)
    done[path.name] = result.name if result else None
json.dumps({"python": sys.version.split()[0], "compiled": done})
`);
console.log(out);
"""


class Command(BaseCommand):
    help = "Byte-compile pure-Python wheels for Pyodide with pyodide-build, run in Pyodide."

    def add_arguments(self, parser):
        parser.add_argument("wheels", nargs="+", help="*-py3-none-any.whl files")
        parser.add_argument("--out", help="Folder for the compiled wheels (default: beside "
                                          "each input).")
        parser.add_argument("--pyodide-build", default=os.environ.get("PYODIDE_BUILD_SITE"),
                            help="site-packages holding pyodide_build (else PYODIDE_BUILD_SITE).")

    def handle(self, *args, wheels, out, pyodide_build, **options):
        node = shutil.which("node")
        if node is None:
            raise CommandError("node is needed to run Pyodide: apt-get install -y nodejs")
        site = Path(pyodide_build or "")
        if not pyodide_build or not (site / "pyodide_build" / "_py_compile.py").exists():
            raise CommandError(
                "Where is pyodide-build? It needs Python >= 3.13: `python3.13 -m venv "
                "var/pyodide-build-venv && var/pyodide-build-venv/bin/pip install "
                "pyodide-build`, then pass --pyodide-build "
                "var/pyodide-build-venv/lib/python3.13/site-packages.")
        pyodide = Path(settings.PYODIDE_DIR)
        if not (pyodide / "pyodide.mjs").exists():
            raise CommandError(f"Pyodide is not installed in {pyodide}: run npm ci.")
        sources = [Path(w).resolve() for w in wheels]
        for source in sources:
            if not source.is_file() or source.suffix != ".whl":
                raise CommandError(f"{source} is not a wheel file.")
        with tempfile.TemporaryDirectory(prefix="pyc-") as work:
            for source in sources:
                shutil.copy2(source, Path(work) / source.name)
            script = Path(work) / "compile.mjs"
            script.write_text(NODE_SCRIPT % {"pyodide": (pyodide / "pyodide.mjs").as_uri(),
                                             "index": f"{pyodide}/"})
            done = subprocess.run([node, str(script), str(site), work], capture_output=True,
                                  text=True, timeout=600)
            script.unlink()
            if done.returncode != 0:
                raise CommandError(f"Compiling failed:\n{done.stderr[-3000:]}")
            report = json.loads(done.stdout.strip().splitlines()[-1])
            for source in sources:
                compiled = report["compiled"].get(source.name)
                if not compiled:
                    self.stdout.write(f"{source.name}: nothing to compile")
                    continue
                target = Path(out).resolve() if out else source.parent
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(work) / compiled, target / compiled)
                self.stdout.write(f"{source.name} -> {target / compiled} "
                                  f"(bytecode of Python {report['python']})")
