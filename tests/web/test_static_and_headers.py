"""Pyodide is served by us, with the types loadPyodide needs, under a strict CSP."""

import pytest
from django.conf import settings

PYODIDE = settings.PYODIDE_URL

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path, content_type", [
    (f"{PYODIDE}pyodide.mjs", "text/javascript"),
    (f"{PYODIDE}pyodide.asm.mjs", "text/javascript"),
    (f"{PYODIDE}pyodide.asm.wasm", "application/wasm"),
    (f"{PYODIDE}python_stdlib.zip", "application/zip"),
    (f"{PYODIDE}pyodide-lock.json", "application/json"),
])
def test_pyodide_is_served_with_the_right_type(client, path, content_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    # Versioned URL: cached for good.
    assert "immutable" in response["Cache-Control"]


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
