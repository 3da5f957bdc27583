"""Owners see and change only their own projects through the API; volunteers get nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from sparecycles.projects.models import App, AppVersion, Batch, Project, WorkUnit

from .conftest import token_client

pytestmark = pytest.mark.django_db


def test_anonymous_requests_are_401(rival):
    client = APIClient()
    for url in ["/api/v1/projects/", "/api/v1/apps/", "/api/v1/batches/",
                f"/api/v1/batches/{rival['batch'].pk}/"]:
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/batches/").status_code == 401


def test_a_volunteer_account_gets_no_token_and_no_access(volunteer_user, rival):
    response = APIClient().post("/api/v1/auth/token/",
                                {"username": "vera", "password": "pw-vera-12345"}, format="json")
    assert response.status_code == 403
    assert "project owners" in response.json()["detail"]
    client = token_client(volunteer_user)   # even with a token made some other way
    for url in ["/api/v1/projects/", "/api/v1/batches/", f"/api/v1/batches/{rival['batch'].pk}/"]:
        assert client.get(url).status_code == 403, url


def test_lists_hold_only_my_things(api, app_version, rival, make_batch):
    make_batch(count=2)
    assert [p["slug"] for p in api.get("/api/v1/projects/").json()["results"]] == ["squares"]
    assert [a["name"] for a in api.get("/api/v1/apps/").json()["results"]] == ["square"]
    batches = api.get("/api/v1/batches/").json()["results"]
    assert [b["name"] for b in batches] == ["test batch"]
    assert api.get("/api/v1/apps/?project=rival").json()["results"] == []


@pytest.mark.parametrize("url", [
    "/api/v1/projects/rival/",
    "/api/v1/apps/rivalapp/",
    "/api/v1/apps/rivalapp/versions/",
    "/api/v1/apps/rivalapp/versions/1/",
    "/api/v1/batches/{batch}/",
    "/api/v1/batches/{batch}/workunits/",
    "/api/v1/batches/{batch}/results/",
    "/api/v1/batches/{batch}/results.jsonl",
    "/api/v1/batches/{batch}/results.csv",
])
def test_reading_another_owners_things_is_404(api, rival, url):
    response = api.get(url.format(batch=rival["batch"].pk))
    assert response.status_code == 404
    assert "secret" not in response.content.decode()


def test_changing_another_owners_things_is_404_and_changes_nothing(api, rival):
    batch = rival["batch"]
    assert api.patch("/api/v1/projects/rival/", {"title": "Mine now"},
                     format="json").status_code == 404
    assert api.patch("/api/v1/apps/rivalapp/", {"validator": "tolerance"},
                     format="json").status_code == 404
    code = SimpleUploadedFile("main.py", b"def main(input):\n    return 1\n")
    assert api.post("/api/v1/apps/rivalapp/versions/", {"code": code},
                    format="multipart").status_code == 404
    assert api.post("/api/v1/batches/", {"app": "rivalapp", "name": "steal",
                                         "inputs": [{"n": 1}]}, format="json").status_code == 404
    assert api.post("/api/v1/apps/", {"project": "rival", "name": "intruder", "title": "x"},
                    format="json").status_code == 404
    for action in ["pause", "resume", "abort", "retire"]:
        assert api.post(f"/api/v1/batches/{batch.pk}/{action}/").status_code == 404
    assert Project.objects.get(slug="rival").title == "Rival project"
    assert App.objects.get(name="rivalapp").validator == "exact"
    assert AppVersion.objects.filter(app__name="rivalapp").count() == 1
    assert Batch.objects.filter(app_version__app__name="rivalapp").count() == 1
    assert not App.objects.filter(name="intruder").exists()
    batch.refresh_from_db()
    assert batch.state == Batch.State.OPEN
    assert not WorkUnit.objects.filter(batch=batch).exclude(state="open").exists()


def test_owners_without_the_permission_cannot_create_projects(api):
    response = api.post("/api/v1/projects/", {"slug": "new", "title": "New"}, format="json")
    assert response.status_code == 403
    assert not Project.objects.filter(slug="new").exists()


def test_a_superuser_sees_everything(django_user_model, rival, make_batch):
    make_batch(count=1)
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-123")
    names = {b["name"] for b in token_client(root).get("/api/v1/batches/").json()["results"]}
    assert names == {"test batch", "rival batch"}


def test_huge_ids_are_404_not_500(api):
    assert api.get("/api/v1/batches/99999999999999999999999/").status_code == 404
    assert api.get("/api/v1/apps/square/versions/99999999999999999999/").status_code == 404
