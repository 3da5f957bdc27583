"""The installable app: service worker, web manifest, icons, offline page, and the
head of every page."""

import json
import re
import struct

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from sparecycles.web import pwa

pytestmark = pytest.mark.django_db


def service_worker_config(body: bytes) -> dict:
    match = re.match(rb"// [^\n]*\nself\.SPARECYCLES_SW = (\{.*?\});\n", body)
    assert match, body[:200]
    return json.loads(match.group(1))


def test_service_worker_is_served_from_the_root_with_its_configuration(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    body = response.content
    config = service_worker_config(body)
    assert body.endswith(pwa.service_worker_source())

    build = config["build"]
    assert re.fullmatch(r"[0-9a-f]{12}", build)
    assert config["shellCache"] == f"sparecycles-shell-{build}"
    assert config["runtimeCache"] == f"sparecycles-runtime-pyodide-{settings.PYODIDE_VERSION}"
    assert config["runtimeBase"] == settings.PYODIDE_URL
    assert f"{settings.PYODIDE_URL}pyodide.asm.wasm" in config["runtimeFiles"]
    shell = set(config["shell"])
    assert {"/", "/offline/", "/manifest.webmanifest", "/static/css/site.css",
            "/static/volunteer/volunteer.js", "/static/volunteer/compute-worker.js",
            "/static/volunteer/outbox.js", "/static/pwa/register.js",
            "/static/pwa/icon-192.png"} <= shell
    # Not the worker's own source, nor the icon script.
    assert not any(url.endswith((".py", "/sw.js")) for url in shell)


def test_every_shell_and_runtime_url_is_served(client):
    config = service_worker_config(client.get("/sw.js").content)
    for url in config["shell"] + config["runtimeFiles"]:
        response = client.get(url)
        assert response.status_code == 200, url


def test_build_version_changes_with_any_shell_file():
    files = pwa.shell_files()
    source = pwa.service_worker_source()
    build = pwa.build_version(files, source)
    assert build == pwa.build_version(list(files), source)
    changed = [pwa.ShellFile(path=f.path, url=f.url, digest="0" * 64) if i == 0 else f
               for i, f in enumerate(files)]
    assert pwa.build_version(changed, source) != build
    assert pwa.build_version(files, source + b"\n// edited") != build


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_manifest_meets_the_installability_criteria(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["name"] == settings.SITE_NAME
    assert manifest["short_name"]
    assert manifest["start_url"] == "/"
    assert manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["id"] == "/"
    sizes = {}
    for icon in manifest["icons"]:
        if icon["type"] != "image/png":
            continue
        data = client.get(icon["src"]).getvalue()
        width, height = png_size(data)
        assert icon["sizes"] == f"{width}x{height}", icon["src"]
        sizes.setdefault(icon["purpose"], set()).add(width)
    assert {192, 512} <= sizes["any"]
    assert {192, 512} <= sizes["maskable"]


def test_apple_touch_icon_is_180_px_and_opaque():
    path = finders.find("pwa/apple-touch-icon.png")
    data = open(path, "rb").read()
    assert png_size(data) == (180, 180)
    assert data[25] == 2   # colour type 2: RGB, no alpha (iOS shows alpha as black)


def test_offline_page(client):
    response = client.get("/offline/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "You are offline" in html
    assert 'href="/"' in html


@pytest.mark.parametrize("path", ["/", "/offline/"])
def test_pages_link_the_manifest_and_register_the_worker_without_inline_script(client, path):
    html = client.get(path).content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    assert '<meta name="sparecycles-service-worker" content="/sw.js">' in html
    assert 'rel="apple-touch-icon"' in html
    assert 'src="/static/pwa/register.js"' in html
    # CSP: every script is a file of ours (the JSON config block is data, not script).
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag
    assert "style=" not in html


def test_volunteer_page_labels_every_setting(client):
    html = client.get("/").content.decode()
    for control in ("set-workers", "set-duty", "set-background", "set-charging", "set-battery",
                    "set-metered", "set-wakelock"):
        assert f'id="{control}"' in html
        assert f'<label for="{control}">' in html, control
    assert 'id="count-unsent"' in html
