// The inside of the custom-validator sandbox: Pyodide under Node, JSON lines on stdio.
//
// sandbox/isolation.py starts this in namespaces without a network, with an empty
// environment, rlimits and Node's permission model (reads of the runtime and this file
// only; no writes, child processes or workers; no eval). The protocol (one JSON object
// a line):
//   in  {"nonce": "..."}                         out {"booted": true}
//   in  {"code": "<validate.py>"}                out {"ready": true} | {"error": "..."}
//   in  {"id": n, "outputs"?: [...], "pairs": [[i, j]...]}
//       out exactly ONE line: {"id": n, "verdicts": [one per pair, in order]}, each
//       {"verdict": true|false} | {"raised": "..."} | {"bad": "..."} | {"limit": "..."}
//       ("outputs", when present, replaces the outputs the pairs index into).
// Every reply carries the nonce, which lives only in this module's scope. Python never
// gets a function that writes to stdout: it RETURNS its verdicts and this module writes
// the one line, so owner code can't add lines of its own (the parent also checks the id
// and that there is one verdict per pair asked). Before owner code loads, the built-in
// prototypes are frozen, globalThis gets its own `navigator`, and the `js` and
// `pyodide_js` modules are unregistered: Python can't reach Node's global object or
// `process` through Pyodide. One process serves one validator's code.
import { constants } from "node:fs";
import { createInterface } from "node:readline";

// The permission model refuses process.binding, which Pyodide's NODEFS asks only for the
// file-open flags at start-up: hand it those and nothing else.
const deny = process.binding;
process.binding = (name) => (name === "constants" ? { fs: constants } : deny(name));

const write = process.stdout.write.bind(process.stdout);
const exit = process.exit.bind(process);
let nonce = null;
const reply = (text) => write(`{"nonce":${JSON.stringify(nonce)},${text.slice(1)}\n`);

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
async function next() {
  const { value, done } = await lines.next();
  if (done) exit(0);
  return value;
}

nonce = JSON.parse(await next()).nonce;
const indexURL = process.argv[2].replace(/\/?$/, "/");
const { loadPyodide } = await import(indexURL + "pyodide.mjs");
// Python's own stdout/stderr go nowhere: print() must not touch the protocol. `js` is an
// empty object, not Node's global scope.
const py = await loadPyodide({
  indexURL, stdout: () => {}, stderr: () => {}, jsglobals: Object.create(null),
});
// Lock JavaScript down before owner code runs. Owner code could otherwise plant a getter
// on Object.prototype for a name the global object lacks and get the global object handed
// to it as `this` by any runtime function that reads that global (e.g. navigator).
Object.defineProperty(globalThis, "navigator", {
  value: undefined, writable: false, enumerable: false, configurable: false,
});
for (const name of Object.getOwnPropertyNames(globalThis)) {
  const value = Object.getOwnPropertyDescriptor(globalThis, name)?.value;
  if (typeof value === "function" && /^[A-Z]/.test(name)) {
    if (value.prototype) Object.freeze(value.prototype);
    Object.freeze(value);
  } else if (name === "Reflect" || name === "JSON" || name === "Math" || name === "Atomics") {
    Object.freeze(value);
  }
}
Object.freeze(Object.getPrototypeOf(async function () {}));
Object.freeze(Object.getPrototypeOf(function* () {}));
Object.freeze(Object.getPrototypeOf(Uint8Array));
Object.freeze(Object.getPrototypeOf(Uint8Array.prototype));
Object.freeze(Object.getPrototypeOf([][Symbol.iterator]()));
// No way from Python to JavaScript objects of the runtime: `pyodide_js` is the runtime's
// own API (its _module reaches everything), `js` the global scope (already empty).
for (const name of ["pyodide_js", "js"]) py.unregisterJsModule(name);

const judge = py.runPython(`
import json
import sys

for _name in [m for m in sys.modules if m.split(".")[0] in ("pyodide_js", "js")]:
    del sys.modules[_name]

def _describe(exc):
    if isinstance(exc, SyntaxError):
        return f"syntax error on line {exc.lineno}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}"[:300]

class Judge:
    equivalent = None
    outputs = ()

    def load(self, source):
        namespace = {"__name__": "validate"}
        try:
            exec(compile(source, "validate.py", "exec"), namespace)
        except MemoryError:
            return json.dumps({"limit": "memory"})
        except BaseException as exc:
            return json.dumps({"error": _describe(exc)})
        function = namespace.get("equivalent")
        if not callable(function):
            return json.dumps({"error": "validate.py must define equivalent(a, b)"})
        self.equivalent = function
        return json.dumps({"ready": True})

    def batch(self, line):
        message = json.loads(line)
        if "outputs" in message:
            self.outputs = message["outputs"]
        verdicts = []
        for i, j in message["pairs"]:
            verdict = self.pair(self.outputs[i], self.outputs[j])
            verdicts.append(verdict)
            if "limit" in verdict:
                break   # the process is done for; the parent kills it
        return json.dumps({"id": message["id"], "verdicts": verdicts})

    def pair(self, a, b):
        # An exception on one pair (RecursionError on a deep output included) is that
        # pair's verdict, "not equivalent": a volunteer's output must not break the
        # validator. Only running out of memory is the process's failure.
        try:
            verdict = self.equivalent(a, b)
        except MemoryError:
            return {"limit": "memory"}
        except BaseException as exc:
            return {"raised": _describe(exc)}
        if not isinstance(verdict, bool):
            return {"bad": f"returned {type(verdict).__name__}, not a bool"}
        return {"verdict": verdict}

Judge()
`);
reply('{"booted":true}');
const loaded = judge.load(JSON.parse(await next()).code);
reply(loaded);
if (JSON.parse(loaded).ready !== true) exit(0);
for (;;) {
  const line = await next();
  let answer;
  try {
    answer = judge.batch(line);
  } catch {
    exit(70);   // a broken request or a runtime fault: the parent sees the exit
  }
  reply(answer);
}
