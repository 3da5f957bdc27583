"""The compute frame (web/compute.py): sandboxed, no network, framed only by the volunteer
page, and the only thing served on COMPUTE_ORIGIN."""

import base64
import hashlib
import json
import re

import pytest
from channels.testing import WebsocketCommunicator

from sparecycles.web import compute

pytestmark = pytest.mark.django_db

COMPUTE = "https://compute.example-usercontent.org"
SITE = "https://volunteer.example.org"


def frame_config(html: str) -> dict:
    text = re.search(r'<script type="application/json" id="compute-config">(.*?)</script>',
                     html, re.S).group(1)
    return json.loads(text)


def directives(csp: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
            for part in (p.strip() for p in csp.split(";")) if part}


def test_the_frame_is_sandboxed_offline_and_framed_only_by_the_page(client):
    url = compute.frame_url()
    response = client.get(url)
    assert response.status_code == 200
    csp = directives(response["Content-Security-Policy"])
    assert csp["sandbox"] == "allow-scripts"            # no allow-same-origin: opaque origin
    assert csp["connect-src"] == "'none'"               # no fetch, XHR, WebSocket, beacon
    assert csp["default-src"] == "'none'"
    assert csp["worker-src"] == "blob:"
    assert csp["form-action"] == "'none'"
    assert csp["frame-ancestors"] == "http://testserver"
    assert "'self'" not in csp["script-src"] and "unsafe-inline" not in csp["script-src"]
    assert "X-Frame-Options" not in response              # frame-ancestors says who may frame it
    assert "immutable" in response["Cache-Control"]       # versioned URL: how it loads offline
    html = response.content.decode()
    # The one inline script is the one the CSP's hash allows.
    [script] = re.findall(r'<script type="module">(.*?)</script>', html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp["script-src"]
    config = frame_config(html)
    assert config["parentOrigin"] == "http://testserver"
    assert set(config["sources"]) == {"worker", "wasmRuntime", "wheels"}


def test_an_old_version_of_the_frame_is_not_kept(client):
    response = client.get("/compute/frame/?v=000000000000")
    assert response["Cache-Control"] == "no-cache"


def test_the_frame_version_changes_with_its_sources(monkeypatch):
    before = compute._frame_parts().version
    real = compute._static_text
    monkeypatch.setattr(compute, "_static_text",
                        lambda path: real(path) + ("\n// changed" if "wheels" in path else ""))
    assert compute._frame_parts().version != before


def test_only_the_volunteer_page_may_frame_and_no_page_may_be_framed(client):
    page = directives(client.get("/")["Content-Security-Policy"])
    assert page["frame-src"] == "'self'"
    assert page["frame-ancestors"] == "'none'"
    assert client.get("/")["X-Frame-Options"] == "DENY"
    for url in ["/leaderboards/volunteers/", "/offline/", "/accounts/login/", "/healthz"]:
        response = client.get(url)
        csp = directives(response["Content-Security-Policy"])
        assert csp["frame-src"] == "'none'", url
        assert csp["frame-ancestors"] == "'none'", url
        assert response["X-Frame-Options"] == "DENY", url


def test_the_page_config_points_at_the_frame_and_carries_the_output_limit(client, settings):
    html = client.get("/").content.decode()
    config = json.loads(re.search(r'id="client-config" type="application/json">(.*?)</script>',
                                  html, re.S).group(1))
    assert config["computeFrameUrl"] == compute.frame_url()
    assert config["computeFrameUrl"].startswith("/compute/frame/?v=")
    assert config["maxOutputBytes"] == settings.SPARECYCLES["MAX_OUTPUT_BYTES"]
    assert "workerUrl" not in config


@pytest.fixture
def compute_origin(settings):
    settings.COMPUTE_ORIGIN = COMPUTE
    settings.SITE_ORIGIN = SITE
    settings.ALLOWED_HOSTS = ["volunteer.example.org", "compute.example-usercontent.org",
                              "testserver"]


def test_compute_origin_serves_the_frame_and_nothing_else(client, compute_origin):
    host = {"HTTP_HOST": "compute.example-usercontent.org"}
    frame = client.get(compute.frame_url().removeprefix(COMPUTE), **host)
    assert frame.status_code == 200
    assert directives(frame["Content-Security-Policy"])["frame-ancestors"] == SITE
    assert frame_config(frame.content.decode())["parentOrigin"] == SITE
    for url in ["/", "/me/account/", "/api/v1/apps/", "/admin/", "/sw.js",
                "/static/volunteer/volunteer.js", "/apps/x/1/code"]:
        assert client.get(url, **host).status_code == 404, url


def test_with_a_compute_origin_the_page_frames_only_it(client, compute_origin):
    response = client.get("/", HTTP_HOST="volunteer.example.org")
    assert directives(response["Content-Security-Policy"])["frame-src"] == COMPUTE
    assert compute.frame_url().startswith(f"{COMPUTE}/compute/frame/?v=")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", [b"null", COMPUTE.encode()])
async def test_the_compute_frame_cannot_open_a_volunteer_socket(settings, origin):
    """A sandboxed frame says Origin: null; the compute origin is never a volunteer page."""
    from sparecycles.asgi import application

    settings.COMPUTE_ORIGIN = COMPUTE
    settings.ALLOWED_HOSTS = ["localhost", "compute.example-usercontent.org"]
    communicator = WebsocketCommunicator(application, "/ws/volunteer/",
                                         headers=[(b"origin", origin)])
    connected, _ = await communicator.connect()
    assert not connected
