// The inside of the custom-validator sandbox: Pyodide under Node, JSON lines on stdio.
//
// sandbox/isolation.py starts this in namespaces without a network, with an empty
// environment, rlimits and Node's permission model (reads of the runtime and this file
// only; no writes, child processes or workers; no eval). The protocol (one JSON object
// a line):
//   in  {"nonce": "..."}                         out {"booted": true}
//   in  {"code": "<validate.py>"}                out {"ready": true} | {"error": "..."}
//   in  {"outputs": [...], "pairs": [[i, j]...]} out one line per pair, in order:
//       {"verdict": true|false} | {"raised": "..."} | {"bad": "..."} | {"limit": "..."}
// Every reply carries the nonce, which lives only in this module's scope: owner code
// that writes to the real stdout can't forge a verdict (the parent kills a sandbox that
// sends a line without it). One process serves one validator's code.
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
const judge = py.runPython(`
import json

def _describe(exc):
    if isinstance(exc, SyntaxError):
        return f"syntax error on line {exc.lineno}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}"[:300]

class Judge:
    equivalent = None

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

    def batch(self, line, emit):
        message = json.loads(line)
        outputs = message["outputs"]
        for i, j in message["pairs"]:
            emit(self.pair(outputs[i], outputs[j]))

    def pair(self, a, b):
        try:
            verdict = self.equivalent(a, b)
        except MemoryError:
            return json.dumps({"limit": "memory"})
        except RecursionError:
            return json.dumps({"limit": "recursion"})
        except BaseException as exc:
            return json.dumps({"raised": _describe(exc)})
        if not isinstance(verdict, bool):
            return json.dumps({"bad": f"returned {type(verdict).__name__}, not a bool"})
        return json.dumps({"verdict": verdict})

Judge()
`);
reply('{"booted":true}');
const loaded = judge.load(JSON.parse(await next()).code);
reply(loaded);
if (JSON.parse(loaded).ready !== true) exit(0);
for (;;) judge.batch(await next(), reply);
