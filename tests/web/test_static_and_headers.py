"""Pyodide is served by us, with the types loadPyodide needs, under a strict CSP."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path, content_type", [
    ("/static/pyodide/pyodide.mjs", "text/javascript"),
    ("/static/pyodide/pyodide.asm.mjs", "text/javascript"),
    ("/static/pyodide/pyodide.asm.wasm", "application/wasm"),
    ("/static/pyodide/python_stdlib.zip", "application/zip"),
    ("/static/pyodide/pyodide-lock.json", "application/json"),
])
def test_pyodide_is_served_with_the_right_type(client, path, content_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


def test_volunteer_page_has_a_strict_csp(client):
    response = client.get("/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "unsafe-eval'" not in csp.replace("wasm-unsafe-eval'", "")
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
