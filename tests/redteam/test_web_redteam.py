"""Red team, web edge (no sandbox start, no browser): framing, CSP, session-driven JSON
views, and failing closed. These held; they are here so they keep holding."""

import shutil

import pytest
from django.test import Client

from sparecycles.projects.services import app_validator_check
from sparecycles.sandbox import isolation
from sparecycles.sandbox.errors import SandboxUnavailable

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    parts = [part.split() for part in policy.split(";") if part.strip()]
    return {words[0]: " ".join(words[1:]) for words in parts}


def test_the_compute_frame_is_sandboxed_offline_and_framable_only_by_the_site(client):
    response = Client().get("/compute/frame/", HTTP_HOST="localhost")
    csp = directives(response)
    assert csp["sandbox"] == "allow-scripts"          # opaque origin even when top-level
    assert csp["connect-src"] == "'none'" and csp["default-src"] == "'none'"
    assert csp["form-action"] == "'none'" and csp["frame-src"] == "'none'"
    assert csp["frame-ancestors"] == "http://localhost"
    assert "'self'" not in csp["script-src"] and "unsafe" not in csp["script-src"].replace(
        "'wasm-unsafe-eval'", "")


def test_a_foreign_host_header_does_not_become_a_frame_ancestor():
    response = Client().get("/compute/frame/", HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_no_page_of_the_site_may_be_framed(client):
    for url in ("/", "/me/account/", "/accounts/login/", "/ledger/"):
        response = Client().get(url, HTTP_HOST="localhost")
        if response.status_code == 404:
            continue
        csp = directives(response)
        assert csp["frame-ancestors"] == "'none'", url
        assert response.get("X-Frame-Options") == "DENY", url
    home = directives(Client().get("/", HTTP_HOST="localhost"))
    assert home["frame-src"] == "'self'"              # only the compute frame
    assert directives(Client().get("/accounts/login/"))["frame-src"] == "'none'"


@pytest.mark.parametrize("url", ["/me/devices/claim/", "/devices/identify/",
                                 "/devices/claim-code/", "/me/devices/claim-code/"])
def test_json_views_that_change_state_need_csrf_with_a_session(owner, url):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    response = browser.post(url, {"token": "x" * 40, "code": "ABCD2345"})
    assert response.status_code == 403, (url, response.status_code)


def test_a_token_revocation_with_only_a_session_is_refused(owner):
    from rest_framework.authtoken.models import Token
    token = Token.objects.create(user=owner)
    browser = Client()
    browser.force_login(owner)
    response = browser.delete("/api/v1/auth/token/")
    assert response.status_code in (401, 403)
    assert Token.objects.filter(key=token.key).exists()


@pytest.mark.parametrize("mechanism", ["bwrap-missing", "nonsense"])
def test_no_sandbox_means_no_custom_validator(settings, monkeypatch, tmp_path, mechanism):
    """Fail closed: bwrap asked for but absent (PATH has node only), or an unknown mechanism."""
    isolation.isolation.cache_clear()
    if mechanism == "bwrap-missing":
        (tmp_path / "node").symlink_to(shutil.which("node"))
        monkeypatch.setenv("PATH", str(tmp_path))
        settings.SANDBOX = {**settings.SANDBOX, "ISOLATION": "bwrap"}
    else:
        settings.SANDBOX = {**settings.SANDBOX, "ISOLATION": "none"}
    try:
        with pytest.raises(SandboxUnavailable):
            isolation.isolation()
        from django.core.exceptions import ValidationError
        with pytest.raises(ValidationError, match="no sandbox"):
            app_validator_check(validator="custom", options={},
                                code="def equivalent(a, b):\n    return True\n")
    finally:
        isolation.isolation.cache_clear()


def test_an_owner_can_not_read_or_change_another_owners_validator(owner, project):
    """Owner A (a token, not a superuser) against owner B's app: no read of its validator
    code, no change of it, through the API."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from sparecycles.projects.models import App, Project
    b_user = get_user_model().objects.create_user("owner-b", password="pw-b-123456")
    b_project = Project.objects.create(slug="b-project", title="B")
    b_project.owners.add(b_user)
    App.objects.create(project=b_project, name="bapp", title="B", validator="exact",
                       validate_code="SECRET_B = 1\n")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    assert api.get("/api/v1/apps/bapp/").status_code == 404
    assert "SECRET_B" not in api.get("/api/v1/apps/").content.decode()
    response = api.patch("/api/v1/apps/bapp/", {"validator": "custom",
                                                "validate_code": "def equivalent(a, b): ..."},
                         format="json")
    assert response.status_code == 404
    assert App.objects.get(name="bapp").validator == "exact"
    # Taking B's name for an app of A's own project must not reach B's app either.
    api.post("/api/v1/apps/", {"project": project.slug, "name": "bapp", "title": "A"},
             format="json")
    assert App.objects.get(project=b_project, name="bapp").title == "B"
