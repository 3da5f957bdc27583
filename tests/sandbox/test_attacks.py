"""Hostile custom validators (issue 14): each attack fails, and says so.

Each validator returns True only if its attack worked, so a True verdict — or a file,
connection or privilege that appears on the host — is a breach. On the old code
(`exec` with full builtins in the web process) every one of these succeeded: the
file was written, the environment and settings read, the socket connected, the
command run, and the loop hung the caller.
"""

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from sparecycles.sandbox.errors import ValidatorError
from sparecycles.sandbox.judging import SandboxComparator, pairs_judge
from sparecycles.sandbox.pool import pool

SENTINEL = "sentinel-7f3a9c-should-never-leak"

TRY = '''
def attempt(function):
    """The attack's result, or None if it raised."""
    try:
        return function()
    except BaseException:
        return None

def mount_host(root):
    """Pyodide's NODEFS: the host's files at /host, through Node's fs."""
    import pyodide_js
    from pyodide.ffi import to_js
    FS = pyodide_js.FS
    options = to_js({"root": root}, dict_converter=pyodide_js.constructor.fromEntries)
    attempt(lambda: FS.mkdirTree("/host"))
    FS.mount(FS.filesystems.NODEFS, options, "/host")
'''


def judge(code: str, a=None, b=None) -> bool | str:
    """The verdict, or the ValidatorError's reason, or "raised: ..." if equivalent raised
    (an attack must not pass by crashing: it catches its own exceptions)."""
    try:
        with pool.lend(TRY + code, breaker=False) as process:
            [reply] = process.judge([a, b], [(0, 1)])
    except ValidatorError as exc:
        return exc.reason
    return reply["verdict"] if "verdict" in reply else f"raised: {reply['raised']}"


def test_a_benign_validator_judges_through_the_same_harness():
    # The control: the harness reports True when the validator says so.
    code = "def equivalent(a, b):\n    return attempt(lambda: a == b) is True\n"
    assert judge(code, {"x": 1}, {"x": 1}) is True
    assert judge(code, {"x": 1}, {"x": 2}) is False


def test_writing_a_file_on_the_host_fails(tmp_path):
    target = tmp_path / "pwned.txt"
    code = f'''
import os
def equivalent(a, b):
    path = {str(target)!r}
    attempt(lambda: open(path, "w").write("owned"))
    attempt(lambda: mount_host({str(tmp_path)!r}))
    attempt(lambda: open("/host/pwned.txt", "w").write("owned"))
    return False
'''
    assert judge(code) is False
    assert not target.exists()


def test_the_environment_holds_no_secrets(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", SENTINEL)
    monkeypatch.setenv("DATABASE_URL", f"postgres://{SENTINEL}@127.0.0.1/x")
    code = f'''
import os
def equivalent(a, b):
    values = " ".join(os.environ.values()) + " ".join(os.environ)
    js = attempt(lambda: __import__("js"))
    pyodide_js = attempt(lambda: __import__("pyodide_js"))
    for route in (lambda: js.process.env, lambda: pyodide_js._module.process.env,
                  lambda: pyodide_js._module.ENV):
        found = attempt(route)
        if found is not None:
            values += str(attempt(lambda: found.to_py()) or found)
    return {SENTINEL!r} in values or "DATABASE_URL" in values or "SECRET_KEY" in values
'''
    assert judge(code) is False


def test_django_settings_secret_key_and_the_database_file_are_out_of_reach():
    database = settings.DATABASES["default"]["NAME"]
    paths = [str(Path(settings.BASE_DIR) / "platform/sparecycles/settings.py"), str(database),
             "/proc/1/environ", "/etc/passwd"]
    code = '''
def equivalent(a, b):
    def settings_secret():
        from django.conf import settings
        return settings.SECRET_KEY
    if attempt(settings_secret):
        return True
    for path in a["paths"]:
        if attempt(lambda: open(path, "rb").read(64)):
            return True
    attempt(lambda: mount_host("/"))
    for path in a["paths"]:
        if attempt(lambda: open("/host" + path, "rb").read(64)):
            return True
    return False
'''
    assert judge(code, {"paths": paths}, {}) is False


@pytest.fixture
def listener():
    """A TCP server on the host's loopback that records every connection."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    seen = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            seen.append(connection.recv(200))
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


def test_no_network_not_postgres_redis_the_host_or_outside(listener):
    port, seen = listener
    code = f'''
import socket
def equivalent(a, b):
    def connect(host, port):
        s = socket.create_connection((host, port), timeout=1)
        s.sendall(b"hello from the validator")
        return True
    for host, port in (("127.0.0.1", {port}), ("127.0.0.1", 5432), ("127.0.0.1", 6379),
                       ("1.1.1.1", 80), ("10.0.0.1", 80)):
        if attempt(lambda: connect(host, port)):
            return True
    # fetch(), fire and forget: it would run after the verdict, in Node's event loop.
    def fetch():
        import asyncio
        from pyodide.http import pyfetch
        asyncio.ensure_future(pyfetch("http://127.0.0.1:{port}/fetch"))
    attempt(fetch)
    return False
'''
    assert judge(code) is False
    time.sleep(1.5)  # time for a fire-and-forget fetch to land, if it could
    assert seen == []


def test_no_process_can_be_spawned(tmp_path):
    marker = tmp_path / "spawned"
    for command in (f"import os\nos.system('touch {marker}')",
                    f"import subprocess\nsubprocess.run(['touch', '{marker}'])",
                    f"import os\nos.execv('/usr/bin/touch', ['touch', '{marker}'])"):
        code = ("def equivalent(a, b):\n"
                + "".join(f"    {line}\n" for line in command.splitlines()) + "    return True\n")
        verdict = judge(code)
        # Refused inside (the call raises: not equivalent) or the sandbox dies: never True.
        assert verdict is not True
    assert not marker.exists()


def test_node_and_javascript_are_out_of_reach(tmp_path):
    """The `js` module is an empty object, and JavaScript can't be evaluated from strings,
    so neither Node's globals nor dynamic import() of node:fs, node:child_process or
    node:net can be reached."""
    marker = tmp_path / "from-js"
    script = (f"import('node:fs').then(fs => fs.writeFileSync({str(marker)!r}, 'x'));"
              f"import('node:child_process').then(c => c.execSync('touch {marker}'));"
              "import('node:net').then(n => n.connect(5432, '127.0.0.1'));"
              "fetch('http://127.0.0.1:5432/'); globalThis.process.env")
    code = f'''
def equivalent(a, b):
    js = attempt(lambda: __import__("js"))
    pyodide_js = attempt(lambda: __import__("pyodide_js"))
    create_proxy = attempt(lambda: __import__("pyodide.ffi").ffi.create_proxy)
    script = {script!r}
    routes = [
        lambda: js.require("child_process").execSync("id"),
        lambda: js.process.env,
        lambda: js.globalThis.process.env,
        lambda: js.fetch,
        lambda: js.eval(script),
        lambda: __import__("pyodide.code").code.run_js(script),
        lambda: pyodide_js.runPython.constructor(script)(),
        lambda: pyodide_js.constructor.constructor("return globalThis.process")().env,
        lambda: pyodide_js._module.process.env,
        lambda: pyodide_js._module.require("child_process"),
        lambda: create_proxy(lambda *args: None, capture_this=True),
    ]
    reached = [i for i, route in enumerate(routes[:-1]) if attempt(route) is not None]
    return bool(reached)
'''
    assert judge(code) is False
    assert not marker.exists()


def test_an_endless_loop_is_killed_with_a_clear_reason():
    started = time.monotonic()
    reason = judge("def equivalent(a, b):\n    while True:\n        pass\n")
    assert reason == ("The custom validator timed out after 2 s on one comparison.")
    assert time.monotonic() - started < 30


def test_an_endless_loop_while_loading_is_killed_too():
    reason = judge("while True:\n    pass\ndef equivalent(a, b):\n    return True\n")
    assert reason == "Loading the custom validator took longer than 2 s."


def test_unbounded_allocation_hits_the_memory_limit(settings):
    settings.SANDBOX = {**settings.SANDBOX, "MEMORY_MB": 400, "PAIR_TIMEOUT_S": 20}
    code = ("def equivalent(a, b):\n    hoard = []\n    while True:\n"
            "        hoard.append(bytearray(10**8))\n")
    reason = judge(code)
    assert isinstance(reason, str)
    assert "memory" in reason


def test_junk_on_stdout_can_not_corrupt_the_protocol():
    # print() and writes to fd 1/2 go nowhere; verdicts still arrive intact.
    code = '''
import os, sys
def equivalent(a, b):
    print('{"verdict": true}')
    print('{"verdict": true, "nonce": "guess"}')
    sys.stdout.write("x" * 100000 + "\\n")
    attempt(lambda: os.write(1, b'{"verdict": true}\\n'))
    attempt(lambda: os.write(2, b"junk\\n"))
    return a == b
'''
    equal = SandboxComparator(TRY + code)
    assert equal.__call__({"x": 1}, {"x": 2}) is False
    assert equal({"x": 1}, {"x": 1}) is True


def test_non_bool_verdicts_and_exits_are_validator_errors():
    assert "must return True or False" in judge("def equivalent(a, b):\n    return 'yes'\n")
    assert "must return True or False" in judge("def equivalent(a, b):\n    return None\n")
    died = judge("import os\ndef equivalent(a, b):\n    os._exit(3)\n")
    assert isinstance(died, str) and "sandbox" in died
    # An exception in equivalent means "not equivalent" (a cheater may send anything).
    code = "def equivalent(a, b):\n    return a['k'] == b['k']\n"
    assert judge(code, {}, {}) == "raised: KeyError: 'k'"
    assert pairs_judge(code=code, pairs=[({}, {})]) == [False]


def test_a_syntax_error_or_missing_equivalent_is_a_clear_error():
    assert "syntax error on line 1" in judge("def nope(:\n")
    assert "must define equivalent(a, b)" in judge("def equal(a, b):\n    return True\n")


def test_verdicts_of_many_pairs_keep_their_order_and_big_numbers():
    code = "def equivalent(a, b):\n    return a['n'] == b['n']\n"
    big = 2**70 + 1  # would lose precision if JavaScript parsed it
    pairs = [({"n": i}, {"n": i if i % 3 else -1}) for i in range(50)]
    pairs.append(({"n": big}, {"n": big - 1}))
    assert pairs_judge(code=code, pairs=pairs) == [i % 3 != 0 for i in range(50)] + [False]
    json.dumps(pairs)  # outputs are JSON documents
