"""The client's code handling: fetched once, hash-checked, run in a fresh namespace."""

import asyncio
import hashlib

import pytest

from tools.swarm import client as swarm_client
from tools.swarm.client import CodeCache, CodeError, run_entry

CODE = (b"STATE = []\n\n"
        b"def main(input):\n"
        b"    STATE.append(1)\n"
        b"    return {'n': input['n'], 'calls': len(STATE), 't': (1, 2)}\n")
APP = {"name": "sq", "version": 1, "code_url": "/apps/sq/1/code",
       "sha256": hashlib.sha256(CODE).hexdigest(), "entry": "main", "runtime": "pyodide"}


@pytest.fixture
def served(monkeypatch):
    fetched = []

    def fake_get(url, *, timeout=0):
        fetched.append(url)
        return 200, CODE

    monkeypatch.setattr(swarm_client, "http_get", fake_get)
    return fetched


def test_code_is_fetched_once_and_checked(served):
    cache = CodeCache("http://127.0.0.1:8000")

    async def twice():
        return await asyncio.gather(cache.get(APP), cache.get(APP))

    first, second = asyncio.run(twice())
    assert first is second and first.source == CODE.decode() and first.label == "sq v1"
    assert served == ["http://127.0.0.1:8000/apps/sq/1/code"]


def test_code_with_the_wrong_hash_is_never_run(served):
    cache = CodeCache("http://127.0.0.1:8000")
    with pytest.raises(CodeError, match="refusing to run it"):
        asyncio.run(cache.get({**APP, "sha256": "0" * 64}))


def test_code_elsewhere_is_not_fetched(served):
    cache = CodeCache("http://127.0.0.1:8000")
    with pytest.raises(CodeError, match="points away from the server"):
        asyncio.run(cache.get({**APP, "code_url": "http://example.org/evil.py"}))
    assert served == []


def test_each_run_gets_a_fresh_namespace_and_json_shaped_output():
    source = CODE.decode()
    assert run_entry(source, "sq v1", "main", {"n": 3}) == {"n": 3, "calls": 1, "t": [1, 2]}
    assert run_entry(source, "sq v1", "main", {"n": 4})["calls"] == 1
    with pytest.raises(NameError, match="no function 'nope'"):
        run_entry(source, "sq v1", "nope", {})


def test_code_that_does_not_compile_is_reported(monkeypatch):
    monkeypatch.setattr(swarm_client, "http_get", lambda url, timeout=0: (200, b"def (:\n"))
    broken = {**APP, "sha256": hashlib.sha256(b"def (:\n").hexdigest()}
    with pytest.raises(CodeError, match="sq v1 does not compile"):
        asyncio.run(CodeCache("http://127.0.0.1:8000").get(broken))
