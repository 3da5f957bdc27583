"""The compute frame: where owners' code runs in the browser (issue 14).

The volunteer page embeds
`<iframe sandbox="allow-scripts" src="{COMPUTE_ORIGIN}/compute/frame/?v=…">`.
Without allow-same-origin the frame has an opaque origin: no cookies, no storage, no
caches, cross-origin to every page of the site. Its document's own CSP repeats the sandbox
and allows no network at all (connect-src 'none'), which its blob: workers inherit, so app
code that escapes Pyodide's `js` module still reaches only its input and its output. The
page fetches runtime, code and wheels (through its service worker), hands them in by
postMessage, and checks every message that comes back.

The document is self-contained: its script is inlined (allowed by hash) and the worker's
modules ride along as JSON, because a sandboxed frame is never controlled by the service
worker and its subresources are not kept in the HTTP cache. The document itself is: its URL
carries a version (a hash of everything in it) and it is served as immutable, which is how
it loads on an offline start.

In production COMPUTE_ORIGIN puts the frame on a registrable domain of its own (like
githubusercontent.com for GitHub), so a sandbox escape in the browser would still land on
an origin that holds nothing; SITE_ORIGIN names the page allowed to embed it.
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import reverse

FRAME_SCRIPT = "volunteer/compute-frame.js"
WORKER_SOURCES = {"worker": "volunteer/compute-worker.js",
                  "wasmRuntime": "volunteer/wasm-runtime.js",
                  "wheels": "volunteer/wheels.js"}


def _static_text(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise FileNotFoundError(f"static/{path} is missing")
    return Path(found).read_text(encoding="utf-8")


def _json_for_html(value) -> str:
    """JSON safe inside <script type="application/json"> (no "</script", no "<!--")."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise ImproperlyConfigured(f"{url!r} is not an origin like https://compute.example.org")
    return f"{parts.scheme}://{parts.netloc}"


def compute_origin() -> str:
    """COMPUTE_ORIGIN without a trailing slash, or "" (the frame is served by this site)."""
    value = getattr(settings, "COMPUTE_ORIGIN", "")
    return _origin(value) if value else ""


def site_origin(request: HttpRequest) -> str:
    """The origin of the page allowed to embed the frame."""
    value = getattr(settings, "SITE_ORIGIN", "")
    if value:
        return _origin(value)
    if compute_origin():
        raise ImproperlyConfigured(
            "COMPUTE_ORIGIN needs SITE_ORIGIN (the volunteer page's origin).")
    return f"{request.scheme}://{request.get_host()}"


@dataclass(frozen=True)
class FrameParts:
    script: str
    script_hash: str   # CSP source expression for the inline script
    sources: dict
    version: str


def _frame_parts() -> FrameParts:
    script = _static_text(FRAME_SCRIPT)
    sources = {name: _static_text(path) for name, path in WORKER_SOURCES.items()}
    digest = hashlib.sha256(script.encode()).digest()
    script_hash = f"'sha256-{base64.b64encode(digest).decode()}'"
    h = hashlib.sha256(script.encode())
    for name in sorted(sources):
        h.update(f"\n{name}\n".encode() + sources[name].encode())
    h.update(FRAME_TEMPLATE.encode())
    return FrameParts(script=script, script_hash=script_hash, sources=sources,
                      version=h.hexdigest()[:12])


@lru_cache(maxsize=1)
def _frame_parts_cached() -> FrameParts:
    return _frame_parts()


def frame_parts() -> FrameParts:
    """Computed once per process; with DEBUG on, at every request, so edits show up."""
    return _frame_parts() if settings.DEBUG else _frame_parts_cached()


def frame_url() -> str:
    """Where the volunteer page points its compute frames."""
    return f"{compute_origin()}{reverse('compute-frame')}?v={frame_parts().version}"


def frame_src() -> str:
    """The page's CSP frame-src: the compute origin, or this site."""
    return compute_origin() or "'self'"


FRAME_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Spare Cycles compute frame</title>
<script type="application/json" id="compute-config">{config}</script>
<script type="module">{script}</script>
</head><body></body></html>
"""


def frame_document(request: HttpRequest) -> str:
    parts = frame_parts()
    config = {"parentOrigin": site_origin(request), "sources": parts.sources}
    if "</script" in parts.script.lower():
        raise ImproperlyConfigured(f"{FRAME_SCRIPT} must not contain '</script'")
    return FRAME_TEMPLATE.format(config=_json_for_html(config), script=parts.script)


def frame_policy(request: HttpRequest) -> str:
    """The frame's CSP: sandboxed, its one inline script, blob: workers, no network."""
    return "; ".join([
        "sandbox allow-scripts",
        "default-src 'none'",
        f"script-src {frame_parts().script_hash} blob: 'wasm-unsafe-eval'",
        "worker-src blob:",
        "connect-src 'none'",
        "img-src 'none'",
        "style-src 'none'",
        "font-src 'none'",
        "media-src 'none'",
        "object-src 'none'",
        "frame-src 'none'",
        "child-src 'none'",
        "manifest-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        f"frame-ancestors {site_origin(request)}",
    ])
