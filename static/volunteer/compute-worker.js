// Spare Cycles compute worker: one Pyodide runtime, one task at a time.
//
// It loads Pyodide (an ES module; importScripts() cannot load it) and its helpers with
// import(), so it runs as a module worker (bench_wasm) or as a classic one: the compute
// frame's, since Chromium refuses module workers from a blob: URL of an opaque origin.
// Cancelling a task means terminating this worker and starting a fresh one, so nothing
// here needs to be interruptible.
//
// On the volunteer page it runs inside the sandboxed compute frame (compute-frame.js,
// served by web/compute.py): an opaque origin whose CSP allows no network at all. There
// the page hands everything in: the runtime's bytes (init.runtime), each task's verified
// code and wheels (run.task.code, run.task.wheels) and the URLs of our helper modules
// (init.modules, blob: URLs made by the frame). Used on its own (bench_wasm) it fetches
// the same things from the site instead.
//
// Page -> worker:  {type: "init", pyodideBase, lockFileURL?, runtime?, modules?,
//                   (runtime: {pyodideMjs, asmMjs, wasm, stdlib, stdlibRest?, lock})
//                   snapshot?, makeSnapshot?}
//                  {type: "run", task, port?}      (a task as in PROTOCOL.md, + code/wheels; the
//                                                   first brings a MessagePort: later tasks come,
//                                                   and results and progress go, on it)
// Worker -> page:  {type: "stage", stage}          (runtime loading progress)
//                  {type: "snapshot", snapshot}  (when asked: made before the runner, any task)
//                  {type: "ready", loadMs, python, timings, fromSnapshot}
//                  {type: "init-error", message, fromSnapshot}
//
// Warm starts (issue 18): with `snapshot` (an ArrayBuffer: Pyodide's memory snapshot of a
// pristine runtime, kept by the page) Pyodide restores Python's memory instead of
// initialising the interpreter, several times faster. With `makeSnapshot` the worker makes
// one right after loadPyodide, before our runner and before any task, and hands it over at
// once ("snapshot", before "ready"): no owner's code has run in this worker by then, so the
// snapshot holds no app's state, and the page stores it while the worker goes on. A snapshot that does not load ends in "init-error" with fromSnapshot set;
// the page then drops it and starts again without one.
//
// The standard library in two parts (issue 18): runtime.stdlib is then a small core
// (python_stdlib_core.zip: the modules Python's start-up and our runner import, as
// bytecode) that Pyodide loads as its stdlib, and runtime.stdlibRest (bytes, or a stream
// still arriving) every other file. It is mounted after loadPyodide (and after a snapshot
// is made, so a snapshot never depends on it), before the runner: any stdlib module an
// app imports is there before its first task.
//                  {type: "result", task_id, status, outputJson | error, elapsed_ms, kind?}
//                  {type: "progress", task_id, fraction}   (the app called progress())
//
// outputJson is the output already encoded as JSON *by Python*: big ints stay
// exact (JavaScript would turn them into BigInt or round them), and the page
// splices the text straight into the result frame.
//
// Tasks of runtime "wasm" run in wasm-runtime.js (no Pyodide involved); wheels an app
// lists in its packages are checked and unpacked by wheels.js.

let runWasmTask = null;
let installWheels = null;
let splitPackages = null;

let pyodide = null;
let runTask = null;   // the Python helper below, as a callable proxy
const codeCache = new Map();   // "name/version" -> Promise<string> (verified source)

// Runs app code in one namespace per app version and converts I/O as JSON inside
// Python. Returns ("ok", json_text) or ("error", last line of the exception).
const RUNNER = `
import inspect, json, math, time, traceback

_namespaces = {}   # app version -> its module's globals
_entries = {}      # (app version, entry) -> (function, takes progress)
_PROGRESS_EVERY_S = 0.25   # at most 4 progress messages a second leave the worker

def _last_line(exc):
    return traceback.format_exception_only(type(exc), exc)[-1].strip()

def _takes_progress(fn):
    try:
        param = inspect.signature(fn).parameters.get("progress")
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)

def _progress_reporter(report):
    # The first report leaves a quarter second into the task, not at once: a short task
    # (most tiles) sends no message at all, so nothing wakes the page while it runs.
    last = [time.monotonic()]
    def progress(fraction):
        """Tell the volunteer how far this task is: a number from 0 to 1."""
        if type(fraction) is not float or not 0.0 <= fraction <= 1.0:   # the common case is cheap
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
                raise TypeError("progress(fraction) takes a number from 0 to 1")
            fraction = float(fraction)
            if not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
                raise ValueError("progress(fraction) takes a number from 0 to 1")
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY_S or fraction == 1.0:
            last[0] = now
            report(fraction)
    return progress

def _entry(key, source, filename, entry):
    """The app's entry function and whether it takes progress: the module is executed once
    per app version in this runtime and its signature read once per function (on the
    volunteer page a runtime runs one app version's tasks only: docs/isolation.md)."""
    ns = _namespaces.get(key)
    if ns is None:
        ns = {"__name__": "sparecycles_app", "__builtins__": __builtins__}
        exec(compile(source, filename, "exec"), ns)
        _namespaces[key] = ns
    fn = ns.get(entry)
    if not callable(fn):
        return None, False
    known = _entries.get((key, entry))
    if known is None or known[0] is not fn:   # the app may rebind its entry between tasks
        known = _entries[(key, entry)] = (fn, _takes_progress(fn))
    return known

def sparecycles_run(key, source, filename, entry, input_json, report=None):
    try:
        fn, takes_progress = _entry(key, source, filename, entry)
        if fn is None:
            return ("error", f"the app defines no function {entry!r}")
        if report is not None and takes_progress:
            output = fn(json.loads(input_json), progress=_progress_reporter(report))
        else:
            output = fn(json.loads(input_json))
        return ("ok", json.dumps(output, allow_nan=False, separators=(",", ":")))
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: report, don't die
        return ("error", _last_line(exc))

import gc
gc.freeze()   # the runtime's own objects: no app's garbage collection walks them again
`;

const SHA256_PY = `
import hashlib
def sparecycles_sha256(data):
    return hashlib.sha256(bytes(data)).hexdigest()
`;

let taskPort = null;   // the page's channel for tasks, results and progress (the first task brings it)

function post(message) {
  (taskPort || self).postMessage(message);
}

// What `import js` shows app code. Not a sandbox (the CSP, not this, stops
// eval and foreign hosts), but app code has no business with fetch, WebSocket or
// IndexedDB of this origin, so don't hand them over.
const APP_JS_GLOBALS = Object.freeze({
  console,
  setTimeout: setTimeout.bind(self),
  clearTimeout: clearTimeout.bind(self),
});

// Where the rest of the standard library is mounted; a finder sends submodules of a core
// package (say encodings.cp1252 when encodings is in the core) there too.
const STDLIB_REST_PATH = "/lib/python_stdlib_rest.zip";
const MOUNT_STDLIB_REST = `
def _sparecycles_mount(rest):
    import sys
    from importlib.machinery import PathFinder
    core = next(p for p in sys.path if p.endswith(".zip"))
    sys.path.insert(sys.path.index(core) + 1, rest)

    class StdlibRestFinder:
        """A core package's submodules that are in the rest, found under the same name there."""
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            mapped = [rest + p[len(core):] for p in path or () if isinstance(p, str) and p.startswith(core + "/")]
            return PathFinder.find_spec(name, mapped, target) if mapped else None

        @classmethod
        def invalidate_caches(cls):
            pass

    sys.meta_path.append(StdlibRestFinder)
_sparecycles_mount("${STDLIB_REST_PATH}")
del _sparecycles_mount
`;

function mountStdlibRest(bytes) {
  // canOwn: the file system keeps these bytes rather than a copy of them.
  pyodide.FS.writeFile(STDLIB_REST_PATH, new Uint8Array(bytes), { canOwn: true });
  pyodide.runPython(MOUNT_STDLIB_REST);
}

function blobModule(bytes) {
  return URL.createObjectURL(new Blob([bytes], { type: "text/javascript" }));
}

/**
 * Pyodide fetches its wasm and standard library with fetch(): answer those two URLs from
 * the bytes the page handed over. Anything else goes to the real fetch, which the compute
 * frame's CSP (connect-src 'none') refuses.
 */
function serveRuntimeFiles(indexURL, runtime) {
  const files = new Map([
    [`${indexURL}pyodide.asm.wasm`, [runtime.wasm, "application/wasm"]],
    [`${indexURL}python_stdlib.zip`, [runtime.stdlib, "application/zip"]],
  ]);
  const realFetch = self.fetch.bind(self);
  self.fetch = (resource, options) => {
    const url = resource instanceof Request ? resource.url : String(resource);
    const file = files.get(url);
    if (!file) return realFetch(resource, options);
    files.delete(url);   // each is read once; let the bytes go after that
    return Promise.resolve(new Response(file[0], {
      status: 200, headers: { "Content-Type": file[1] } }));
  };
}

async function loadHelpers(modules) {
  const wasm = await import(modules.wasmRuntime || "./wasm-runtime.js");
  const wheels = await import(modules.wheels || "./wheels.js");
  runWasmTask = wasm.runWasmTask;
  installWheels = wheels.installWheels;
  splitPackages = wheels.splitPackages;
}

async function init({ pyodideBase, lockFileURL, runtime, modules, snapshot, makeSnapshot }) {
  const started = performance.now();
  const timings = {};   // ms since started, per step (bench_browser, profiling)
  const mark = (name) => { timings[name] = Math.round(performance.now() - started); };
  // Read while Python starts (a stream from the page is still arriving).
  const stdlibRest = runtime && runtime.stdlibRest ? new Response(runtime.stdlibRest).arrayBuffer() : null;
  if (stdlibRest) stdlibRest.catch(() => {});
  await loadHelpers(modules || {});
  mark("helpers");
  post({ type: "stage", stage: "Downloading the Python runtime…" });
  const options = {};
  let loadPyodide;
  if (runtime) {
    // Handed over by the page (from its service worker's cache): nothing is downloaded here.
    ({ loadPyodide } = await import(blobModule(runtime.pyodideMjs)));
    options.createPyodideModule = (await import(blobModule(runtime.asmMjs))).default;
    options.lockFileContents = JSON.parse(new TextDecoder().decode(runtime.lock));
    serveRuntimeFiles(pyodideBase, runtime);
  } else {
    ({ loadPyodide } = await import(`${pyodideBase}pyodide.mjs`));
  }
  mark("modules");
  post({ type: "stage", stage: "Starting the Python runtime…" });
  Object.assign(options, {
    indexURL: pyodideBase,
    // Without packageBaseUrl Pyodide falls back to a CDN for packages: never.
    packageBaseUrl: pyodideBase,
    jsglobals: APP_JS_GLOBALS,
    // App output goes to the browser console, not to the page.
    stdout: (line) => console.log("[app]", line),
    stderr: (line) => console.warn("[app]", line),
  });
  if (lockFileURL && !runtime) {
    // A lock file of our own (pyodide lockfile add-wheels ... --wheel-url /static/wheels/):
    // its wheels are found relative to it.
    options.lockFileURL = lockFileURL;
    options.packageBaseUrl = new URL(".", new URL(lockFileURL, self.location.href)).href;
  }
  const fromSnapshot = snapshot instanceof ArrayBuffer;
  if (fromSnapshot) options._loadSnapshot = new Uint8Array(snapshot);
  else if (makeSnapshot) options._makeSnapshot = true;
  let made = null;
  let python;
  try {
    pyodide = await loadPyodide(options);
    mark("loadPyodide");
    // Before our runner and before any task: the pristine runtime, nothing else.
    if (!fromSnapshot && makeSnapshot) {
      made = pyodide.makeMemorySnapshot();
      mark("snapshot");
      self.postMessage({ type: "snapshot", snapshot: made.buffer }, [made.buffer]);
    }
    if (stdlibRest) {
      mountStdlibRest(await stdlibRest);
      mark("stdlib");
    }
    pyodide.runPython(RUNNER);
    runTask = pyodide.globals.get("sparecycles_run");
    python = pyodide.runPython("import sys; sys.version.split()[0]");
  } catch (error) {
    // A restored runtime that fails here is the snapshot's fault: the page starts afresh.
    throw Object.assign(error instanceof Error ? error : new Error(String(error)), { fromSnapshot });
  }
  mark("runner");
  const ready = { type: "ready", loadMs: Math.round(performance.now() - started), python,
                  timings, fromSnapshot };
  self.postMessage(ready);
}

function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(bytes) {
  // crypto.subtle exists only in secure contexts (https, localhost). On plain
  // http to a LAN address fall back to Python's hashlib: same answer, slower.
  if (self.crypto && self.crypto.subtle) {
    return toHex(await self.crypto.subtle.digest("SHA-256", bytes));
  }
  if (!pyodide.globals.get("sparecycles_sha256")) pyodide.runPython(SHA256_PY);
  const fn = pyodide.globals.get("sparecycles_sha256");
  try {
    return fn(bytes);
  } finally {
    fn.destroy();
  }
}

class TaskError extends Error {
  constructor(message, kind = "") {
    super(message);
    this.kind = kind;
  }
}

async function verifiedText(app, bytes) {
  const actual = await sha256Hex(bytes);
  if (actual !== String(app.sha256).toLowerCase()) {
    const error = new TaskError("code hash mismatch", "hash_mismatch");
    error.expected = app.sha256;
    error.actual = actual;
    throw error;
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

// Fetch (or take from the page) and verify an app's code once per name+version; a failed fetch or a
// mismatch is not cached, so a later task tries again.
function appSource(app, code) {
  const key = `${app.name}/${app.version}`;
  let promise = codeCache.get(key);
  if (!promise) {
    promise = (async () => {
      if (code) return verifiedText(app, new Uint8Array(code));
      let response;
      try {
        response = await fetch(app.code_url, { credentials: "same-origin" });
      } catch (error) {
        throw new TaskError(`could not download the app code: ${error.message}`, "fetch");
      }
      if (!response.ok) {
        throw new TaskError(`could not download the app code: HTTP ${response.status}`, "fetch");
      }
      return verifiedText(app, new Uint8Array(await response.arrayBuffer()));
    })();
    codeCache.set(key, promise);
    promise.catch(() => codeCache.delete(key));
  }
  return promise;
}

async function loadPackages(packages, given) {
  if (!packages || packages.length === 0) return;
  const { names, wheels } = splitPackages(packages);
  // Wheels the page already downloaded come with their bytes (matched by hash).
  const bytes = new Map((given || []).map((wheel) => [wheel.sha256, wheel.bytes]));
  for (const wheel of wheels) if (bytes.has(wheel.sha256)) wheel.bytes = bytes.get(wheel.sha256);
  await installWheels(pyodide, wheels, sha256Hex);
  if (names.length === 0) return;
  const errors = [];
  await pyodide.loadPackage(names, {
    messageCallback: () => {},
    errorCallback: (message) => errors.push(message),
  });
  if (errors.length) throw new TaskError(`could not load packages: ${errors.join("; ")}`);
}

async function run(task) {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const app = task.app || {};
  try {
    if (app.runtime === "wasm") {
      post(await runWasmTask(task, { sha256Hex }));
      return;
    }
    if (app.runtime !== "pyodide") {
      throw new TaskError("runtime not supported by this client yet", "runtime");
    }
    const source = await appSource(app, task.code);
    await loadPackages(app.packages, task.wheels);
    const entry = app.entry || "main";
    // An entry function with a `progress` parameter gets progress(fraction) (docs/app-api.md).
    const report = (fraction) => post({ type: "progress", task_id: task.task_id, fraction });
    const answer = runTask(
      `${app.name}/${app.version}`, source, `<${app.name} v${app.version}>`, entry,
      JSON.stringify(task.input === undefined ? null : task.input), report,
    );
    let status, payload;
    try {
      [status, payload] = answer.toJs();
    } finally {
      answer.destroy();
    }
    if (status === "ok") {
      post({ type: "result", task_id: task.task_id, status, outputJson: payload,
             elapsed_ms: elapsed() });
    } else {
      post({ type: "result", task_id: task.task_id, status: "error", error: payload,
             elapsed_ms: elapsed(), kind: "python" });
    }
  } catch (error) {
    const message = error instanceof TaskError ? error.message : lastLine(error);
    post({ type: "result", task_id: task.task_id, status: "error", error: message,
           elapsed_ms: elapsed(), kind: error.kind || "internal",
           expected: error.expected, actual: error.actual });
  }
}

function lastLine(error) {
  const text = String((error && error.message) || error || "unknown error").trim();
  const lines = text.split("\n").filter((line) => line.trim());
  return lines.length ? lines[lines.length - 1].trim() : "unknown error";
}

// Tasks are run strictly one after another even if the page sends two.
let queue = Promise.resolve();

self.onmessage = (event) => {
  const message = event.data || {};
  if (message.type === "init") {
    init(message).catch((error) => {
      post({ type: "init-error", message: lastLine(error), fromSnapshot: Boolean(error.fromSnapshot) });
    });
  } else if (message.type === "run") {
    if (message.port instanceof MessagePort && !taskPort) {
      taskPort = message.port;
      taskPort.onmessage = (portEvent) => {
        const next = portEvent.data || {};
        if (next.type === "run") queue = queue.then(() => run(next.task));
      };
    }
    queue = queue.then(() => run(message.task));
  }
};
