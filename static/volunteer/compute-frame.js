// The compute frame's own script: runs in <iframe sandbox="allow-scripts"> (an opaque
// origin, on COMPUTE_ORIGIN in production), inlined into the frame's document by
// web/compute.py and allowed there by its hash. It owns one compute worker and relays:
//
//   page -> frame   {type: "init", pyodideBase, runtime, snapshot?, makeSnapshot?}
//                                                           start a fresh worker, load Pyodide
//                                                           (from a memory snapshot, or making one)
//                   {type: "run", task, port?}              one task (code and wheels included); the
//                                                           first brings a MessagePort, passed on to
//                                                           the worker for later tasks and results
//   frame -> page   {type: "frame-ready"}                   this document listens now
//                   whatever the worker posts               the page checks every message
//                   {type: "worker-error", message}         the worker died
//
// The frame and its worker can reach nothing: the document's CSP has connect-src 'none'
// (the worker inherits it), and an opaque origin has no cookies, storage or caches. The page
// holds the socket and the device token; the frame gets inputs and gives outputs.

const config = JSON.parse(document.getElementById("compute-config").textContent);
const parentOrigin = config.parentOrigin;

function moduleUrl(text) {
  return URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
}

// Our helper modules as blob: URLs (an opaque origin may not start a worker from any other).
const modules = Object.freeze({
  wasmRuntime: moduleUrl(config.sources.wasmRuntime),
  wheels: moduleUrl(config.sources.wheels),
});
const workerUrl = moduleUrl(config.sources.worker);
let worker = null;

function toPage(message, transfer = []) {
  window.parent.postMessage(message, parentOrigin, transfer);
}

/** Buffers (and streams) in a message, moved to the worker rather than copied. */
function buffers(value, found = [], depth = 0) {
  if (value instanceof ArrayBuffer || value instanceof ReadableStream) {
    if (!found.includes(value)) found.push(value);
  } else if (ArrayBuffer.isView(value)) {
    buffers(value.buffer, found, depth);
  } else if (value && typeof value === "object" && depth < 4) {
    for (const item of Object.values(value)) buffers(item, found, depth + 1);
  }
  return found;
}

function startWorker(message) {
  if (worker) worker.terminate();
  // A classic worker (it loads its modules with import()): Chromium refuses module workers
  // from a blob: URL of an opaque origin.
  const current = new Worker(workerUrl, { name: "compute" });
  worker = current;
  current.onmessage = (event) => {
    // A memory snapshot ("snapshot") is moved on, not copied: it is tens of megabytes.
    const data = event.data;
    const snapshot = data && data.type === "snapshot" && data.snapshot instanceof ArrayBuffer;
    if (worker === current) toPage(data, snapshot ? [data.snapshot] : []);
  };
  current.onmessageerror = () => {
    if (worker === current) toPage({ type: "worker-error", message: "unreadable message" });
  };
  current.onerror = (event) => {
    event.preventDefault();
    if (worker === current) {
      toPage({ type: "worker-error", message: String(event.message || "the worker failed") });
    }
  };
  const snapshot = message.snapshot instanceof ArrayBuffer ? message.snapshot : undefined;
  current.postMessage({ type: "init", pyodideBase: message.pyodideBase,
                        runtime: message.runtime, modules, snapshot,
                        makeSnapshot: message.makeSnapshot === true },
                      buffers({ runtime: message.runtime, snapshot }));
}

window.addEventListener("message", (event) => {
  // Only the page that embeds us gives orders.
  if (event.source !== window.parent || event.origin !== parentOrigin) return;
  const message = event.data;
  if (!message || typeof message !== "object") return;
  if (message.type === "init") {
    startWorker(message);
  } else if (message.type === "run" && worker) {
    // The first task brings the page's end of a channel to the worker: later tasks and all
    // results cross on it, page <-> worker, without waking this document.
    const port = message.port instanceof MessagePort ? message.port : undefined;
    worker.postMessage({ type: "run", task: message.task, port },
                       [...buffers(message.task), ...(port ? [port] : [])]);
  }
});

toPage({ type: "frame-ready" });
