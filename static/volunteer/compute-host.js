// The page's side of the compute frame (issue 14: owners' code is untrusted).
//
// A ComputeFrame looks to volunteer.js like a Worker (postMessage, onmessage, onerror,
// terminate), but the worker it stands for runs inside <iframe sandbox="allow-scripts">:
// an opaque origin (on COMPUTE_ORIGIN in production) whose CSP allows no network. So:
//
//   - only the page talks to the server and only the page holds the device token;
//   - the page fetches the runtime (from its service worker's cache), each app's code and
//     wheels, checks their SHA-256, and hands the bytes in;
//   - every message from the frame is treated as hostile: only known types, only a result
//     for the task this frame was given (once), output valid JSON within maxOutputBytes;
//     anything else is dropped or turned into an error result.
//
// Page -> frame: {type: "init", pyodideBase,
//                 runtime: {pyodideMjs, asmMjs, wasm, stdlib, stdlibRest, lock},
//                 snapshot? | makeSnapshot?}
//                (bytes; for the page's first frame wasm, stdlib and stdlibRest are
//                transferred streams, handed over before their first byte arrives)
//                {type: "run", task: {task_id, app, input, code, wheels: [{sha256, bytes}]},
//                 port?}  (the first task brings a MessagePort: later tasks, their results and
//                 progress cross on it, page <-> worker, without the frame's document)
// Frame -> page: {type: "frame-ready"} | {type: "worker-error", message}
//                and the worker's own: stage, ready, init-error, result (compute-worker.js)

import { splitPackages } from "./wheels.js";

// In the order they are asked for (issue 18): on a slow link the small files the worker
// needs first come first, then the wasm (compiled while it arrives), the stdlib's
// start-up core (web/split_stdlib.mjs), and last the rest of the stdlib, asked
// for only once those have answered, at low priority, so it never slows them down.
const RUNTIME_FILES = Object.freeze({
  lock: "pyodide-lock.json", pyodideMjs: "pyodide.mjs", asmMjs: "pyodide.asm.mjs",
  wasm: "pyodide.asm.wasm", stdlib: "python_stdlib_core.zip",
  stdlibRest: "python_stdlib_rest.zip",
});
const LATE_FILES = new Set(["stdlibRest"]);
const MAX_STAGE_CHARS = 200;
const MAX_ERROR_CHARS = 2_000;
const CODE_CACHE_LIMIT = 32;
// Kinds of error the frame may name; they decide what the page does next.
// PROTOCOL (README, ack reason `invalid`): outputs nest at most this deep
// (sparecycles.wire.MAX_OUTPUT_DEPTH). Deeper ones are refused by the server; far deeper
// ones (~1000 levels) make its JSON parser give up on the whole frame, and with the batch
// extension on every result riding in that frame: so the page reports them as errors.
const MAX_OUTPUT_DEPTH = 64;
const FRAME_KINDS = new Set(["python", "wasm", "app", "runtime", "internal", "fetch"]);

const RUNTIME_TYPES = Object.freeze({
  pyodideMjs: "text/javascript", asmMjs: "text/javascript", wasm: "application/wasm",
  stdlib: "application/zip", stdlibRest: "application/zip", lock: "application/json",
});
// How long a first result may wait for the runtime and the snapshot to be stored.
const KEEP_RUNTIME_WAIT_MS = 5_000;

// Warm starts (issue 18): Pyodide's memory snapshot of a pristine runtime, made on this
// device by the first frame of a page that had none (before that frame runs any task, so
// it holds no app's state), kept in the runtime's cache (its name carries Pyodide's
// version) under a URL that carries the frame's version (the worker's code), with its
// SHA-256 beside it. It is checked before every use; one that fails the check, or does not
// load, is dropped and the frame starts the slow way. The frame itself can reach no
// storage: only the page reads and writes it.
const SNAPSHOT_HASH_HEADER = "X-Snapshot-SHA256";
const SNAPSHOT_PATH = "memory-snapshot/";
let snapshotPromise = null;   // Promise<ArrayBuffer | null>: the verified snapshot
let snapshotWanted = true;    // no snapshot kept: ask the next frame to make one

let runtimePromise = null;
let runtimeKept = Promise.resolve();
const codeCache = new Map();    // "name/version" -> Promise<ArrayBuffer> (verified)
const wheelCache = new Map();   // sha256 -> Promise<ArrayBuffer> (verified)
let container = null;

class HostError extends Error {
  constructor(message, kind) {
    super(message);
    this.kind = kind;
  }
}

// The big files go to the first frame as streams, so its worker compiles the wasm as it
// downloads (as bare Pyodide does with instantiateStreaming) instead of after the last
// byte; the page reads its own copy of the bytes alongside. The streams are made at once
// and fed once each response arrives, so the frame is handed the runtime as soon as the
// small files are in, not when the big ones start.
const STREAMED = new Set(["wasm", "stdlib", "stdlibRest"]);
let runtimeStreamed = null;   // Promise of the runtime with those two as streams; taken once

function canTransferStreams() {
  try {
    const stream = new ReadableStream();
    structuredClone(stream, { transfer: [stream] });
    return true;
  } catch {
    return false;
  }
}

/** A stream that exists now and gives the bytes of `body` (a promised stream) once they come. */
function laterStream(body) {
  let reader = null;
  return new ReadableStream({
    async pull(controller) {
      if (!reader) reader = (await body).getReader();
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      body.then((stream) => stream.cancel(reason)).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** The runtime's files, fetched once per page through the service worker (its cache). */
export function runtimeBytes(config) {
  if (!runtimePromise) {
    const streams = canTransferStreams();
    const answered = [];   // the responses of the files before the late ones
    const get = (key, file) => {
      const url = `${config.pyodideBase}${file}`;
      const late = LATE_FILES.has(key);
      const asked = late
        ? Promise.allSettled(answered).then(() => fetch(url, { credentials: "same-origin", priority: "low" }))
        : fetch(url, { credentials: "same-origin" });
      if (!late) answered.push(asked);
      return asked.then((got) => {
        if (!got.ok || !got.body) throw new Error(`could not download ${file}: HTTP ${got.status}`);
        return got;
      });
    };
    const parts = Object.entries(RUNTIME_FILES).map(([key, file]) => {
      const response = get(key, file);
      if (streams && STREAMED.has(key)) {
        const split = response.then((got) => got.body.tee());
        split.catch(() => {});
        return { key, early: Promise.resolve(laterStream(split.then(([forFrame]) => forFrame))),
                 full: split.then(([, forPage]) => new Response(forPage).arrayBuffer()) };
      }
      const full = response.then((got) => got.arrayBuffer());
      return { key, early: full, full };
    });
    const gather = (which) => Promise.all(parts.map((part) => part[which].then((v) => [part.key, v])))
      .then(Object.fromEntries);
    // Each file is stored as soon as it is in, not after the last one (the rest of the
    // stdlib comes last): less left to write when the first result waits for it.
    runtimeKept = keepRuntime(config, Object.fromEntries(parts.map((part) => [part.key, part.full])));
    runtimePromise = gather("full");
    runtimePromise.catch(() => { runtimePromise = null; });
    runtimeStreamed = streams ? gather("early") : null;
    if (runtimeStreamed) runtimeStreamed.catch(() => {});
  }
  return runtimePromise;
}

/**
 * Before Start: read the runtime and the snapshot into memory, but only when both are on
 * this device already (Cache Storage, read through the service worker that controls the
 * page), so preparing never spends a byte of the network, whatever the volunteer's data
 * settings. Nothing is started: Start then hands them to the frame without waiting for
 * the disk. Resolves to whether it prepared anything.
 */
export async function prepareRuntime(config) {
  try {
    if (runtimePromise || !snapshotsUsable(config) || !navigator.serviceWorker?.controller) return false;
    const cache = await caches.open(config.runtimeCache);
    const kept = await Promise.all([...Object.values(RUNTIME_FILES).map((file) =>
      cache.match(new URL(`${config.pyodideBase}${file}`, window.location.href).href)),
    cache.match(snapshotUrl(config))]);
    if (!kept.every(Boolean) || runtimePromise) return false;
    mark("prepare");
    await Promise.all([runtimeBytes(config), keptSnapshot(config)]);
    mark("prepared");
    return true;
  } catch {
    return false;
  }
}

/** For a frame's init: the streamed runtime for the first frame of the page, else the bytes. */
function runtimeForFrame(config) {
  const bytes = runtimeBytes(config);
  const streamed = runtimeStreamed;
  runtimeStreamed = null;   // a stream is read once
  return streamed || bytes;
}

function streamsIn(runtime) {
  return Object.values(runtime).filter((value) => value instanceof ReadableStream);
}

/**
 * Store the runtime for the next visit, from the bytes as they come (no second download), every
 * file or it does not count: the service worker serves the runtime from this cache, and
 * the page holds its first result until this is done, so a visit that closes right after
 * that result still leaves the whole runtime behind (issue 18). Each entry is written whole
 * or not at all by Cache Storage itself.
 */
async function keepRuntime(config, runtime) {
  if (!config.runtimeCache || typeof caches === "undefined") return;
  try {
    const cache = await caches.open(config.runtimeCache);
    await Promise.all(Object.entries(RUNTIME_FILES).map(async ([key, file]) => {
      const url = new URL(`${config.pyodideBase}${file}`, window.location.href).href;
      const bytes = await runtime[key];   // each file's bytes, promised
      if (await cache.match(url)) return;
      // A Response copies the bytes: the page keeps its own for restarts.
      await cache.put(url, new Response(bytes, {
        status: 200, headers: { "Content-Type": RUNTIME_TYPES[key] } }));
    }));
  } catch (error) {
    console.warn("Spare Cycles: the runtime could not be kept for the next visit:", error);
  }
}

/** Resolves once `kept` (the runtime or a snapshot being stored) is done, or after a few seconds. */
function stored(kept) {
  return Promise.race([kept || Promise.resolve(),
                       new Promise((resolve) => setTimeout(resolve, KEEP_RUNTIME_WAIT_MS))]);
}


function snapshotsUsable(config) {
  return Boolean(config.runtimeCache && config.computeFrameUrl) && typeof caches !== "undefined" &&
    canHash();
}

/** Where this frame version's snapshot is kept (in the runtime's cache). */
function snapshotUrl(config) {
  const frame = new URL(config.computeFrameUrl, window.location.href);
  const version = (frame.searchParams.get("v") || "unversioned").replace(/[^0-9A-Za-z_-]/g, "");
  return new URL(`${config.pyodideBase}${SNAPSHOT_PATH}${version}`, window.location.href).href;
}

function mark(name, detail = null) {
  try {
    performance.mark(`sparecycles:${name}`, { detail });
  } catch {
    /* marks are for profiling only */
  }
}

/** The kept snapshot, read and checked once per page; null when there is none (or bad). */
export function keptSnapshot(config) {
  if (!snapshotPromise) {
    snapshotPromise = (async () => {
      if (!snapshotsUsable(config)) return null;
      const cache = await caches.open(config.runtimeCache);
      const response = await cache.match(snapshotUrl(config));
      if (!response) return null;
      const expected = response.headers.get(SNAPSHOT_HASH_HEADER) || "";
      const bytes = await response.arrayBuffer();
      if (!/^[0-9a-f]{64}$/.test(expected) || (await sha256Hex(bytes)) !== expected) {
        console.warn("Spare Cycles: the kept runtime snapshot is damaged; starting without it.");
        await forgetSnapshot(config);
        return null;
      }
      snapshotWanted = false;
      mark("snapshot-read", { bytes: bytes.byteLength });
      return bytes;
    })().catch(() => null);
  }
  return snapshotPromise;
}

async function forgetSnapshot(config) {
  snapshotPromise = Promise.resolve(null);
  snapshotWanted = true;
  try {
    const cache = await caches.open(config.runtimeCache);
    await cache.delete(snapshotUrl(config));
  } catch {
    /* nothing kept, or no storage */
  }
}

/** Keep a fresh snapshot for the next start; snapshots of other frame versions go. */
async function keepSnapshot(config, bytes) {
  try {
    const digest = await sha256Hex(bytes);
    const cache = await caches.open(config.runtimeCache);
    const url = snapshotUrl(config);
    for (const request of await cache.keys()) {
      if (request.url.includes(`/${SNAPSHOT_PATH}`) && request.url !== url) await cache.delete(request);
    }
    await cache.put(url, new Response(bytes, { status: 200, headers: {
      "Content-Type": "application/octet-stream", [SNAPSHOT_HASH_HEADER]: digest } }));
    snapshotPromise = Promise.resolve(bytes);
    mark("snapshot-kept", { bytes: bytes.byteLength });
  } catch (error) {
    console.warn("Spare Cycles: the runtime snapshot could not be kept:", error);
  }
}

function canHash() {
  return Boolean(self.crypto && self.crypto.subtle);
}

async function sha256Hex(buffer) {
  const digest = await self.crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The same bytes, once verified, for a task that can go to its frame at once (taskNow).
const verified = new WeakMap();   // promise from verifiedBytes -> its ArrayBuffer

/** Download and (where the browser can hash) verify; a failure is not cached. */
function verifiedBytes(cache, key, url, expected, what) {
  let promise = cache.get(key);
  if (!promise) {
    promise = (async () => {
      let response;
      try {
        response = await fetch(url, { credentials: "same-origin" });
      } catch (error) {
        throw new HostError(`could not download ${what}: ${error.message}`, "fetch");
      }
      if (!response.ok) throw new HostError(`could not download ${what}: HTTP ${response.status}`, "fetch");
      const bytes = await response.arrayBuffer();
      if (canHash() && (await sha256Hex(bytes)) !== String(expected).toLowerCase()) {
        throw new HostError(what === "the app code" ? "code hash mismatch" : `${what}: hash mismatch`,
                            "hash_mismatch");
      }
      return bytes;
    })();
    cache.set(key, promise);
    promise.then((bytes) => verified.set(promise, bytes), () => cache.delete(key));
    while (cache.size > CODE_CACHE_LIMIT) cache.delete(cache.keys().next().value);
  }
  return promise;
}

/** The code and wheels a task needs, as promises (each downloaded and verified once). */
function taskFiles(task) {
  const app = task.app || {};
  const code = verifiedBytes(codeCache, `${app.name}/${app.version}`, app.code_url,
                             app.sha256, "the app code");
  const wheels = splitPackages(app.packages || []).wheels.map((wheel) => ({
    sha256: wheel.sha256,
    bytes: verifiedBytes(wheelCache, wheel.sha256, wheel.url, wheel.sha256, wheel.filename),
  }));
  return { code, wheels };
}

function frameTask(task, code, wheels) {
  const app = task.app || {};
  return {
    task_id: task.task_id,
    app: { name: app.name, version: app.version, runtime: app.runtime, entry: app.entry,
           sha256: app.sha256, packages: app.packages || [] },
    input: task.input === undefined ? null : task.input,
    code,
    wheels,
  };
}

/** The task for its frame now, when its code and wheels were verified before; else null. */
function taskNow(task) {
  const { code, wheels } = taskFiles(task);
  if (!verified.has(code) || !wheels.every((wheel) => verified.has(wheel.bytes))) return null;
  return frameTask(task, verified.get(code),
                   wheels.map((wheel) => ({ sha256: wheel.sha256, bytes: verified.get(wheel.bytes) })));
}

async function taskForFrame(task) {
  const { code, wheels } = taskFiles(task);
  return frameTask(task, await code, await Promise.all(wheels.map(async (wheel) => ({
    sha256: wheel.sha256, bytes: await wheel.bytes }))));
}

function frameContainer() {
  if (!container || !container.isConnected) {
    container = document.createElement("div");
    container.hidden = true;
    container.id = "compute-frames";
    document.body.append(container);
  }
  return container;
}

/** The worker's start-up steps (ms): numbers only, for the profile. */
function numbers(value) {
  const out = {};
  if (!value || typeof value !== "object") return out;
  for (const [key, ms] of Object.entries(value).slice(0, 16)) {
    if (/^[a-zA-Z]{1,20}$/.test(key) && Number.isFinite(ms)) out[key] = Math.round(ms);
  }
  return out;
}

function text(value, limit) {
  return typeof value === "string" ? value.slice(0, limit) : "";
}

/** Whether lists/objects in `value` nest deeper than `limit` (walked without recursion). */
function nestedDeeperThan(value, limit) {
  const stack = [[value, 1]];
  while (stack.length) {
    const [item, depth] = stack.pop();
    if (item === null || typeof item !== "object") continue;
    if (depth > limit) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The only checks between the frame and a result frame on the socket: a result for the
 * task we handed in, status ok with outputJson valid JSON within the size limit, or an
 * error with a message.
 */
export function checkedResult(message, { taskId, maxOutputBytes, elapsedMs, pageHashed }) {
  const base = { type: "result", task_id: taskId, elapsed_ms: elapsedMs };
  if (message.status === "ok") {
    if (typeof message.outputJson !== "string") {
      return { ...base, status: "error", error: "the app's output is missing", kind: "app" };
    }
    const bytes = new TextEncoder().encode(message.outputJson).length;
    if (bytes > maxOutputBytes) {
      return { ...base, status: "error", kind: "app",
               error: `output too large (${bytes} bytes; the limit is ${maxOutputBytes})` };
    }
    let output;
    try {
      output = JSON.parse(message.outputJson);
    } catch {
      return { ...base, status: "error", error: "the app's output is not valid JSON", kind: "app" };
    }
    if (nestedDeeperThan(output, MAX_OUTPUT_DEPTH)) {
      return { ...base, status: "error", kind: "app",
               error: `output nested deeper than ${MAX_OUTPUT_DEPTH} levels` };
    }
    return { ...base, status: "ok", outputJson: message.outputJson };
  }
  let kind = FRAME_KINDS.has(message.kind) ? message.kind : "app";
  // Only when the page could not check the hash itself is the frame's word taken for it.
  if (message.kind === "hash_mismatch" && !pageHashed) kind = "hash_mismatch";
  return { ...base, status: "error", kind,
           error: text(message.error, MAX_ERROR_CHARS) || "unknown error" };
}

export class ComputeFrame {
  constructor(config, name) {
    this.config = config;
    this.onmessage = null;
    this.onerror = null;
    this.ready = false;        // the frame's document listens
    this.loaded = false;       // the worker said "ready"
    this.outbox = [];          // messages posted before the frame was ready
    this.current = null;       // {taskId, started}: the one result we wait for
    this.closed = false;
    this.iframe = document.createElement("iframe");
    this.iframe.setAttribute("sandbox", "allow-scripts");
    this.iframe.setAttribute("title", `Compute sandbox ${name}`);
    this.iframe.setAttribute("aria-hidden", "true");
    this.iframe.tabIndex = -1;
    this.iframe.referrerPolicy = "no-referrer";
    this.iframe.src = config.computeFrameUrl;
    this.listener = (event) => this.receive(event);
    window.addEventListener("message", this.listener);
    frameContainer().append(this.iframe);
  }

  postMessage(message) {
    if (this.closed) return;
    if (message.type === "init") this.init();
    else if (message.type === "run") this.run(message.task);
  }

  send(message, transfer = []) {
    if (this.closed) return;
    if (!this.ready) {
      this.outbox.push([message, transfer]);
      return;
    }
    // "*": the frame's origin is opaque and has no name; it holds nothing secret of ours.
    this.iframe.contentWindow.postMessage(message, "*", transfer);
  }

  emit(message) {
    if (!this.closed && this.onmessage) this.onmessage({ data: message });
  }

  /** A prepared frame that failed before Start is dropped: Start makes a fresh one. */
  dropIfPrepared() {
    if (preparedFrame !== this) return false;
    preparedFrame = null;
    this.terminate();
    return true;
  }

  fail(message) {
    if (this.dropIfPrepared()) return;
    if (this.closed || !this.onerror) return;
    this.onerror({ message, preventDefault() {} });
  }

  init() {
    mark("init");
    Promise.all([runtimeForFrame(this.config), keptSnapshot(this.config)]).then(
      ([runtime, snapshot]) => this.startWorker(runtime, snapshot),
      (error) => this.emit({ type: "init-error", message: error.message }));
  }

  startWorker(runtime, snapshot) {
    const pyodideBase = new URL(this.config.pyodideBase, window.location.href).href;
    const message = { type: "init", pyodideBase, runtime };
    this.snapshotGiven = snapshot instanceof ArrayBuffer;
    this.snapshotAsked = false;
    if (this.snapshotGiven) {
      message.snapshot = snapshot;   // copied: the page keeps it for the next frame
    } else if (snapshotWanted && snapshotsUsable(this.config)) {
      snapshotWanted = false;   // one frame per page makes it
      this.snapshotAsked = true;
      message.makeSnapshot = true;
    }
    mark("init-sent", { fromSnapshot: this.snapshotGiven, makeSnapshot: this.snapshotAsked });
    this.send(message, streamsIn(runtime));
  }

  /** A snapshot that did not load: drop it, start this frame's worker again without it. */
  startWithoutSnapshot() {
    this.snapshotGiven = false;
    this.retried = true;
    console.warn("Spare Cycles: the runtime snapshot did not load; starting without it.");
    forgetSnapshot(this.config).then(() => runtimeBytes(this.config)).then(
      (runtime) => this.startWorker(runtime, null),
      (error) => this.emit({ type: "init-error", message: error.message }));
  }

  run(task) {
    this.ranTask = true;
    const taskId = task.task_id;
    this.current = { taskId, started: performance.now(), pageHashed: canHash() };
    // The app's code is in hand after its first task: the task leaves now, not after the
    // page has finished what it is doing (rendering, the result it just reported).
    const now = taskNow(task);
    if (now) {
      this.sendTask(now);
      return;
    }
    taskForFrame(task).then((given) => {
      if (this.current && this.current.taskId === taskId) this.sendTask(given);
    }, (error) => {
      if (!this.current || this.current.taskId !== taskId) return;
      this.current = null;
      this.emit({ type: "result", task_id: taskId, status: "error", error: error.message,
                  kind: error.kind || "fetch", elapsed_ms: 0 });
    });
  }

  /**
   * Tasks go to the worker on a MessageChannel of their own, given with the first task: from
   * then on a task and its result cross straight between the page and the worker, without
   * waking the frame's document twice per task. The port's other end is in the frame, as
   * untrusted as the frame's own messages: only results and progress are taken from it, and
   * checked exactly as those (receive).
   */
  sendTask(task) {
    if (this.port) {
      this.port.postMessage({ type: "run", task });
      return;
    }
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.port.onmessage = (event) => {
      const message = event.data;
      if (message && (message.type === "result" || message.type === "progress")) {
        this.handle(message);
      }
    };
    this.send({ type: "run", task, port: channel.port2 }, [channel.port2]);
  }

  receive(event) {
    if (this.closed || event.source !== this.iframe.contentWindow) return;
    this.handle(event.data);
  }

  handle(message) {
    if (this.closed || !message || typeof message !== "object") return;
    switch (message.type) {
      case "frame-ready":
        if (this.ready) {
          this.fail("the compute frame reloaded");   // not something our frame does
          return;
        }
        this.ready = true;
        for (const [queued, transfer] of this.outbox.splice(0)) this.send(queued, transfer);
        return;
      case "stage":
        if (!this.loaded) this.emit({ type: "stage", stage: text(message.stage, MAX_STAGE_CHARS) });
        return;
      case "snapshot":
        // Only a snapshot this frame was asked for, before its "ready" and before it was
        // given any task (one sent later could come from app code). Stored while the worker
        // mounts the rest of the stdlib and starts its runner, not during the first task;
        // the first result waits until it is stored, so the next visit starts from it.
        if (this.snapshotAsked && !this.loaded && !this.ranTask &&
            message.snapshot instanceof ArrayBuffer) {
          this.snapshotAsked = false;
          this.snapshotKept = keepSnapshot(this.config, message.snapshot);
        }
        return;
      case "ready":
        if (this.loaded) return;
        this.loaded = true;
        this.startup = { fromSnapshot: this.snapshotGiven, timings: numbers(message.timings) };
        mark("ready", this.startup);
        if (this.snapshotAsked) snapshotWanted = true;   // asked, but none came
        this.snapshotAsked = false;
        this.readyMessage = { type: "ready",
                    loadMs: Number.isFinite(message.loadMs) ? Math.max(0, Math.round(message.loadMs)) : null,
                    python: /^[0-9A-Za-z.+-]{1,20}$/.test(message.python) ? message.python : "3" };
        this.emit(this.readyMessage);
        return;
      case "init-error":
        if (this.loaded) return;
        if (this.snapshotGiven && !this.retried) {
          this.startWithoutSnapshot();
          return;
        }
        if (this.snapshotAsked) snapshotWanted = true;
        if (this.dropIfPrepared()) return;
        this.emit({ type: "init-error", message: text(message.message, MAX_STAGE_CHARS) });
        return;
      case "worker-error":
        this.fail(text(message.message, MAX_STAGE_CHARS) || "the compute worker failed");
        return;
      case "progress": {
        // Only for the task we handed in, only a number in [0, 1]: the frame is not trusted.
        const current = this.current;
        const fraction = message.fraction;
        if (!current || message.task_id !== current.taskId || typeof fraction !== "number" ||
            !(fraction >= 0 && fraction <= 1)) return;
        this.emit({ type: "progress", task_id: current.taskId, fraction });
        return;
      }
      case "result": {
        const current = this.current;
        if (!current || message.task_id !== current.taskId) return;   // not a task we gave it
        this.current = null;
        const result = checkedResult(message, {
          taskId: current.taskId, maxOutputBytes: this.config.maxOutputBytes,
          elapsedMs: Math.round(performance.now() - current.started),
          pageHashed: current.pageHashed,
        });
        Promise.all([stored(runtimeKept), stored(this.snapshotKept)]).then(() => this.emit(result));
        return;
      }
      default:
        return;
    }
  }

  /** Remove the frame: its document and worker go with it, mid-task or not. */
  terminate() {
    this.closed = true;
    this.current = null;
    if (this.port) this.port.close();
    window.removeEventListener("message", this.listener);
    this.iframe.remove();
  }
}
