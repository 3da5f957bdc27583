"""The owners' API ignores the session cookie: only `Authorization: Token <key>` counts.

Code running in a volunteer's (or an owner's) browser rides on that browser's cookies; with
session authentication, any page of the site, or app code that escaped its sandbox, could
read and change a logged-in owner's projects (issue 14). A browser never sends a token
by itself.
"""

import json

import pytest
from django.test import Client

from sparecycles.projects.models import App

from .conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(owner, project):
    """The owner logged in through the login form, as in a browser."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


@pytest.mark.parametrize("url", ["/api/v1/projects/", "/api/v1/apps/", "/api/v1/batches/",
                                 "/api/v1/projects/squares/", "/api/v1/apps/square/"])
def test_a_logged_in_owners_session_reads_nothing(session, app, url):
    response = session.get(url)
    assert response.status_code == 401, response.content
    assert "square" not in response.content.decode()


def test_a_logged_in_owners_session_changes_nothing(session, app):
    created = session.post("/api/v1/apps/", data=json.dumps(
        {"project": "squares", "name": "evil", "title": "Evil", "validator": "exact"}),
        content_type="application/json")
    assert created.status_code == 401
    patched = session.patch("/api/v1/apps/square/", data=json.dumps({"title": "Owned"}),
                            content_type="application/json")
    assert patched.status_code == 401
    assert not App.objects.filter(name="evil").exists()
    app.refresh_from_db()
    assert app.title != "Owned"


def test_a_session_cannot_revoke_the_token(session, owner):
    client = token_client(owner)
    assert session.delete("/api/v1/auth/token/").status_code == 401
    assert client.get("/api/v1/apps/").status_code == 200


def test_the_same_owner_with_a_token_is_served(owner, project, app):
    response = token_client(owner).get("/api/v1/apps/")
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["results"]] == ["square"]
