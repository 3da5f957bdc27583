// Spare Cycles WebAssembly runtime: runs tasks of runtime "wasm" without Pyodide.
//
// The ABI (docs/wasm-abi.md), JSON in and JSON out:
//   exports  memory            the module's linear memory
//            alloc(len) -> ptr room for `len` bytes (0: out of memory)
//            <entry>(ptr, len) -> ptr   usually "run": reads the input JSON (UTF-8) at ptr,
//                                returns a result record at ptr:
//                                  u32 status (0 ok, else error), u32 length n (little-endian),
//                                  then n bytes of UTF-8: output JSON, or an error message
//   imports  none
//
// The module's bytes come from the task's code_url (fetched by the page and handed in as
// task.code, or fetched here) and must hash to its sha256 (as for
// Python code). Each compiled module is cached per app version; every task gets a fresh
// instance, so a module's allocator never needs to free and one task can't leave state
// behind for the next.
//
// Imported by compute-worker.js; plain ES module with no dependencies, so tests can also
// load it in Node.

const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
const modules = new Map();   // "name/version" -> Promise<WebAssembly.Module>

export class WasmTaskError extends Error {
  constructor(message, kind = "wasm") {
    super(message);
    this.kind = kind;
  }
}

/** Run one input through a compiled module; returns the output as JSON text. */
export async function runModule(module, entry, inputJson) {
  let instance;
  try {
    instance = await WebAssembly.instantiate(module, {});
  } catch (error) {
    throw new WasmTaskError(`the module could not be instantiated: ${error.message}`);
  }
  const { memory, alloc } = instance.exports;
  const run = instance.exports[entry || "run"];
  if (!(memory instanceof WebAssembly.Memory) || typeof alloc !== "function" ||
      typeof run !== "function") {
    throw new WasmTaskError(
      `the module must export memory, alloc and ${entry || "run"} (see docs/wasm-abi.md)`);
  }
  const input = new TextEncoder().encode(inputJson);
  let resultPtr;
  try {
    const ptr = alloc(input.length) >>> 0;
    if (ptr === 0 && input.length > 0) throw new WasmTaskError("alloc returned 0 (out of memory)");
    new Uint8Array(memory.buffer, ptr, input.length).set(input);
    resultPtr = run(ptr, input.length) >>> 0;
  } catch (error) {
    if (error instanceof WasmTaskError) throw error;
    // A trap (unreachable, out-of-bounds access, stack overflow) is the app's error.
    throw new WasmTaskError(`the module trapped: ${error.message}`, "app");
  }
  if (resultPtr === 0) throw new WasmTaskError("the module returned no result (null pointer)", "app");
  const view = new DataView(memory.buffer);
  if (resultPtr + 8 > view.byteLength) {
    throw new WasmTaskError("the module's result pointer is outside its memory", "app");
  }
  const status = view.getUint32(resultPtr, true);
  const length = view.getUint32(resultPtr + 4, true);
  if (length > MAX_OUTPUT_BYTES || resultPtr + 8 + length > view.byteLength) {
    throw new WasmTaskError(`the module's result length (${length}) is out of bounds`, "app");
  }
  const bytes = new Uint8Array(memory.buffer, resultPtr + 8, length);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new WasmTaskError("the module's result is not UTF-8", "app");
  }
  if (status !== 0) throw new WasmTaskError(text || `error status ${status}`, "app");
  let output;
  try {
    output = JSON.parse(text);
  } catch (error) {
    throw new WasmTaskError(`the module's output is not JSON: ${error.message}`, "app");
  }
  // Re-encode: the frame carries canonical JSON whatever spacing the module used.
  return JSON.stringify(output);
}

async function fetchModule(app, sha256Hex, code) {
  if (code) return compileVerified(app, new Uint8Array(code), sha256Hex);
  let response;
  try {
    response = await fetch(app.code_url, { credentials: "same-origin" });
  } catch (error) {
    throw new WasmTaskError(`could not download the module: ${error.message}`, "fetch");
  }
  if (!response.ok) {
    throw new WasmTaskError(`could not download the module: HTTP ${response.status}`, "fetch");
  }
  return compileVerified(app, new Uint8Array(await response.arrayBuffer()), sha256Hex);
}

async function compileVerified(app, bytes, sha256Hex) {
  const actual = await sha256Hex(bytes);
  if (actual !== String(app.sha256).toLowerCase()) {
    const error = new WasmTaskError("code hash mismatch", "hash_mismatch");
    error.expected = app.sha256;
    error.actual = actual;
    throw error;
  }
  try {
    return await WebAssembly.compile(bytes);
  } catch (error) {
    throw new WasmTaskError(`the module does not compile: ${error.message}`);
  }
}

/** The verified, compiled module of a task's app; a failure is not cached. */
export function appModule(app, sha256Hex, code = null) {
  const key = `${app.name}/${app.version}`;
  let promise = modules.get(key);
  if (!promise) {
    promise = fetchModule(app, sha256Hex, code);
    modules.set(key, promise);
    promise.catch(() => modules.delete(key));
  }
  return promise;
}

/**
 * Run a wasm task; resolves with the worker's result message (compute-worker.js format):
 * {type: "result", task_id, status: "ok", outputJson, elapsed_ms} or status "error".
 */
export async function runWasmTask(task, { sha256Hex }) {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const app = task.app || {};
  try {
    const module = await appModule(app, sha256Hex, task.code);
    const inputJson = JSON.stringify(task.input === undefined ? null : task.input);
    const outputJson = await runModule(module, app.entry || "run", inputJson);
    return { type: "result", task_id: task.task_id, status: "ok", outputJson,
             elapsed_ms: elapsed() };
  } catch (error) {
    const kind = error instanceof WasmTaskError ? error.kind : "internal";
    return { type: "result", task_id: task.task_id, status: "error",
             error: String(error.message || error), elapsed_ms: elapsed(), kind,
             expected: error.expected, actual: error.actual };
  }
}
