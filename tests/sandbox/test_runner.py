"""runner.mjs, the inside of the sandbox, against owner code that attacks it.

Found by the red team (tests/redteam/README.md, issue 14): owner code reached Node's real
global object and `process` through a getter planted on Object.prototype, and wrote
protocol lines of its own through the runner's nonce-adding reply function. Now the
built-in prototypes are frozen and globalThis has its own `navigator` before owner code
loads, `js`/`pyodide_js` are unregistered, and Python returns its verdicts: JavaScript
writes exactly one line per request, which the parent checks (id, one verdict per pair).
"""

from sparecycles.sandbox.errors import ValidatorError
from sparecycles.sandbox.judging import pairs_judge
from sparecycles.sandbox.pool import pool

# Owner code reaching Node's real global object (and `process`) from Python, without eval:
# a getter on Object.prototype for a name Node 20's global lacks, then a Pyodide runtime
# function that reads globalThis.navigator (hasBatteryAPI). capture_this hands the getter
# its receiver: the global object.
NODE_GLOBAL = '''
def node_global():
    import pyodide_js
    from pyodide.ffi import create_proxy, to_js
    Obj = pyodide_js.constructor
    got = []
    getter = create_proxy(lambda this: got.append(this), capture_this=True)
    Obj.defineProperty(Obj.prototype, "navigator",
                       to_js({"get": getter, "configurable": True},
                             dict_converter=Obj.fromEntries))
    pyodide_js._module.hasBatteryAPI()
    return got[0] if got else None

def equivalent(a, b):
    try:
        g = node_global()
        return g is not None and str(g.process.version).startswith("v")
    except Exception:
        return False
'''

# The runner passes its nonce-adding `reply` function into Judge.batch as `emit`; owner code
# finds it on the stack and writes protocol lines of its own, with the right nonce.
EXTRA_VERDICTS = '''
import sys

def _emit():
    frame = sys._getframe(1)
    while frame is not None:
        if "emit" in frame.f_locals:
            return frame.f_locals["emit"]
        frame = frame.f_back

def equivalent(a, b):
    if a == {"arm": True}:
        emit = _emit()
        for _ in range(3):   # verdicts for pairs it has not been shown yet
            emit('{"verdict": true}')
    return a == b
'''


def judge_once(code, a=None, b=None):
    try:
        return pairs_judge(code=code, pairs=[(a, b)])[0]
    except ValidatorError as exc:
        return exc.reason


def test_owner_code_can_not_reach_nodes_global_object():
    """docs/sandbox.md: "`js` is an empty object ... so process, require, dynamic import and
    fetch are out of reach". The red team reached them (a getter on Object.prototype, then
    pyodide_js._module.hasBatteryAPI() reading globalThis.navigator); the layers under it
    (permission model, bwrap, no network) held."""
    assert judge_once(NODE_GLOBAL) is False


def test_a_validator_can_not_answer_for_pairs_it_was_not_shown():
    """The nonce stops print() junk; the red team then called the runner's own `reply`
    (found on the Python stack) so extra lines stayed in the parent's buffer and became
    the verdicts of the NEXT batch. Python no longer gets a writer: the arming pair's
    equivalent raises (not equivalent), and the next batch's verdicts are its own."""
    with pool.lend(EXTRA_VERDICTS, breaker=False) as process:
        process.judge([{"arm": True}, {"arm": True}], [(0, 1)])
        # A later batch: these outputs differ, equivalent would say False to each.
        replies = process.judge([{"x": 1}, {"x": 2}], [(0, 1), (1, 0)])
    assert replies == [{"verdict": False}, {"verdict": False}]


