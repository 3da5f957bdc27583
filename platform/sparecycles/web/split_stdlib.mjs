// Split Pyodide's python_stdlib.zip into a small start-up core and the rest (issue 18).
//
//   node platform/sparecycles/web/split_stdlib.mjs <pyodide dir> <out dir>     (make install runs it)
//
// Writes python_stdlib_core.zip and python_stdlib_rest.zip beside Pyodide's files, served
// with them under the versioned runtime URL. The core holds every module Python imports
// while Pyodide starts, plus those our worker's runner imports (compute-worker.js RUNNER),
// as bytecode only (compiled here by Pyodide's own Python, the same version the browser
// runs, as unchecked-hash .pyc: no compiling on the device, no source needed); the rest
// holds every other file as it is. Both have stored (uncompressed) entries: the HTTP layer
// compresses them (brotli/gzip across files beats zip's per-file deflate) and Python reads
// them without inflating. Fixed timestamps, sorted entries: the same package gives the
// same bytes. The page mounts the rest after start-up (compute-worker.js), so an app may
// import any module of the standard library.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pyodideDir, outDir] = process.argv.slice(2);
if (!pyodideDir || !outDir) {
  console.error("usage: split_stdlib.mjs <pyodide dir> <out dir>");
  process.exit(2);
}
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const pyodide = await loadPyodide({
  indexURL: `${path.resolve(pyodideDir)}/`,
  // Always from Pyodide's own complete standard library, whatever is in outDir.
  stdLibURL: path.resolve(pyodideDir, "python_stdlib.zip"),
});
// What the worker's runner imports (compute-worker.js), and the hash fallback there.
pyodide.runPython("import inspect, json, math, time, traceback, hashlib");
pyodide.runPython(`
import sys, zipfile, importlib.util, importlib._bootstrap_external as ext

STDLIB = [p for p in sys.path if p.endswith(".zip")][0]
prefix = STDLIB + "/"
used = set()
for module in list(sys.modules.values()):
    f = getattr(module, "__file__", None) or ""
    if f.startswith(prefix):
        used.add(f[len(prefix):])
        # A package's directory entry too.
        if f.endswith("/__init__.py"):
            used.add(f[len(prefix):-len("__init__.py")])

def info(name):
    zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    zi.compress_type = zipfile.ZIP_STORED
    zi.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o644 << 16
    return zi

with zipfile.ZipFile(STDLIB) as full:
    names = sorted(full.namelist())
    core_names = [n for n in names if n in used or (n.endswith("/") and any(u.startswith(n) for u in used))]
    rest_names = [n for n in names if n not in set(core_names)]
    for out, chosen in (("/tmp/core.zip", core_names), ("/tmp/rest.zip", rest_names)):
        with zipfile.ZipFile(out, "w") as z:
            for n in chosen:
                data = full.read(n)
                if out == "/tmp/core.zip" and n.endswith(".py"):
                    # Compiled once here rather than on every start: bytecode only.
                    code = compile(data, prefix + n, "exec", dont_inherit=True)
                    z.writestr(info(n + "c"), bytes(ext._code_to_hash_pyc(
                        code, importlib.util.source_hash(data), checked=False)))
                else:
                    z.writestr(info(n), data)
`);
mkdirSync(outDir, { recursive: true });
for (const name of ["core", "rest"]) {
  const target = path.join(outDir, `python_stdlib_${name}.zip`);
  writeFileSync(`${target}.tmp`, pyodide.FS.readFile(`/tmp/${name}.zip`));
  renameSync(`${target}.tmp`, target);   // whole or not at all
}
