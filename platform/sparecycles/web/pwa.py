"""What the service worker caches, and the version that names its caches.

The shell (page, styles, the volunteer client, icons) is cached under our build
version: a hash of the bytes of every shell file, so any change to one of them
changes /sw.js, the browser installs the new worker, and its activation deletes
the old cache. The Pyodide runtime sits at a versioned, immutable URL and gets
a cache of its own named after the Pyodide version, so a shell upgrade does not
make a phone download the ~13 MB runtime again.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse

CACHE_PREFIX = "sparecycles-"
# Folders under static/ whose files make up the client, taken whole so a file added
# there (a new module of the volunteer client) is cached without touching this list.
SHELL_STATIC_FOLDERS = ("volunteer/", "pwa/")
# The volunteer page also loads the device-claim module of the volunteers app, and every
# page the phone menu (site/nav.js).
SHELL_STATIC_FILES = ("css/site.css", "img/logo.svg", "volunteers/claim.js", "site/nav.js")
SHELL_SUFFIXES = (".js", ".mjs", ".css", ".png", ".svg", ".wasm")
SERVICE_WORKER_SOURCE = "pwa/sw.js"
NOT_SHELL = {SERVICE_WORKER_SOURCE, "pwa/icon-maskable.svg"}   # served elsewhere / icon source
# What the volunteer page fetches from PYODIDE_URL: the npm package's core runtime, its
# standard library split by `make install` into a start-up core and the rest
# (web/split_stdlib.mjs; compute-host.js RUNTIME_FILES).
PYODIDE_RUNTIME_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm",
                         "python_stdlib_core.zip", "python_stdlib_rest.zip", "pyodide-lock.json")


@dataclass(frozen=True)
class ShellFile:
    path: str    # relative to static/
    url: str
    digest: str  # sha256 of the bytes


def _static_files() -> dict[str, str]:
    """Every static file the finders know: URL path under STATIC_URL -> file (first wins)."""
    found: dict[str, str] = {}
    for finder in finders.get_finders():
        for path, storage in finder.list(["*.py", "__pycache__"]):
            prefix = getattr(storage, "prefix", None)
            url_path = (f"{prefix}/{path}" if prefix else path).replace(os.sep, "/")
            found.setdefault(url_path, storage.path(path))
    return found


def _is_shell(path: str) -> bool:
    if path in NOT_SHELL or not path.endswith(SHELL_SUFFIXES):
        return False
    return path in SHELL_STATIC_FILES or path.startswith(SHELL_STATIC_FOLDERS)


def shell_files() -> list[ShellFile]:
    files = []
    for path, absolute in sorted(_static_files().items()):
        if _is_shell(path):
            with open(absolute, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            files.append(ShellFile(path=path, url=static(path), digest=digest))
    return files


def build_version(files: list[ShellFile], worker_source: bytes) -> str:
    """12 hex digits that change whenever any shell file or the worker's code changes."""
    h = hashlib.sha256(worker_source)
    for f in files:
        h.update(f"\n{f.url} {f.digest}".encode())
    return h.hexdigest()[:12]


def service_worker_source() -> bytes:
    path = finders.find(SERVICE_WORKER_SOURCE)
    if not path:
        raise FileNotFoundError(f"static/{SERVICE_WORKER_SOURCE} is missing")
    with open(path, "rb") as handle:
        return handle.read()


def runtime_cache_name() -> str:
    """The Cache Storage cache that holds the runtime (the page fills it, sw.js serves it)."""
    return f"{CACHE_PREFIX}runtime-pyodide-{settings.PYODIDE_VERSION}"


def service_worker_config() -> dict:
    """What /sw.js is told: cache names and the URLs it caches."""
    files = shell_files()
    source = service_worker_source()
    build = build_version(files, source)
    pyodide = settings.PYODIDE_URL
    return {
        "build": build,
        "shellCache": f"{CACHE_PREFIX}shell-{build}",
        "runtimeCache": runtime_cache_name(),
        # App code is immutable per URL and checked against its sha256 before it runs.
        "appsCache": f"{CACHE_PREFIX}apps-v1",
        "cachePrefix": CACHE_PREFIX,
        "startUrl": reverse("volunteer"),
        "offlineUrl": reverse("offline"),
        "shell": [reverse("volunteer"), reverse("offline"), reverse("web-manifest"),
                  *(f.url for f in files)],
        "staticUrl": settings.STATIC_URL,
        "runtimeBase": pyodide,
        "runtimeFiles": [f"{pyodide}{name}" for name in PYODIDE_RUNTIME_FILES],
        "appsPrefix": "/apps/",
    }


@lru_cache(maxsize=1)
def _service_worker_script_cached() -> bytes:
    return _service_worker_script()


def _service_worker_script() -> bytes:
    config = json.dumps(service_worker_config(), separators=(",", ":"))
    header = (f"// Spare Cycles service worker, build {json.loads(config)['build']}.\n"
              f"self.SPARECYCLES_SW = {config};\n").encode()
    return header + service_worker_source()


def service_worker_script() -> bytes:
    """The script served at /sw.js: its configuration, then static/pwa/sw.js.

    Computed once per process; with DEBUG on, at every request, so edits show up.
    """
    if settings.DEBUG:
        return _service_worker_script()
    return _service_worker_script_cached()


def web_manifest() -> dict:
    name = settings.SITE_NAME
    return {
        "id": reverse("volunteer"),
        "name": name,
        "short_name": name,
        "description": f"{name} turns spare time on your phone or computer into computing "
                       "power for science.",
        "lang": "en",
        "dir": "ltr",
        "start_url": reverse("volunteer"),
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "background_color": "#f6f7f9",
        "theme_color": "#0f766e",
        "categories": ["science", "education", "utilities"],
        "icons": [
            {"src": static("pwa/icon-192.png"), "sizes": "192x192", "type": "image/png",
             "purpose": "any"},
            {"src": static("pwa/icon-512.png"), "sizes": "512x512", "type": "image/png",
             "purpose": "any"},
            {"src": static("pwa/icon-maskable-192.png"), "sizes": "192x192", "type": "image/png",
             "purpose": "maskable"},
            {"src": static("pwa/icon-maskable-512.png"), "sizes": "512x512", "type": "image/png",
             "purpose": "maskable"},
            {"src": static("img/logo.svg"), "sizes": "any", "type": "image/svg+xml",
             "purpose": "any"},
        ],
    }
