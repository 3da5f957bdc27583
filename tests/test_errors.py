"""One JSON error shape for every JSON endpoint family (sparecycles/errors.py):
{"detail": str, "code": str, "errors"?: [str], "fields"?: {name: [str]}}."""


import pytest
from django.test import RequestFactory

from sparecycles.errors import error_body, error_response, json_errors
from tests.json_errors import assert_error_shape as assert_shape

pytestmark = pytest.mark.django_db



def test_the_body_has_detail_and_a_code_from_the_status():
    assert error_body(404, "Gone.") == {"detail": "Gone.", "code": "not_found"}
    assert error_body(400, "Two problems.", errors=["a", "b"]) == {
        "detail": "Two problems.", "code": "invalid", "errors": ["a", "b"]}
    assert error_body(400, "x", code="parse_error")["code"] == "parse_error"


def test_json_errors_answers_405_and_404_in_the_shape_only_when_json_is_wanted():
    from django.http import Http404, HttpResponse

    @json_errors(methods=("GET",), wants_json=lambda request, **kw: "json" in request.GET)
    def view(request):
        raise Http404("No such thing.")

    factory = RequestFactory()
    body = assert_shape(view(factory.get("/?json")), 404, "not_found")
    assert body["detail"] == "No such thing."
    response = view(factory.post("/?json"))
    assert_shape(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"
    assert view(factory.post("/")).status_code == 405  # HTML callers: Django's own answer
    with pytest.raises(Http404):
        view(factory.get("/"))
    assert isinstance(error_response(409, "x"), HttpResponse)


# --- every family ---------------------------------------------------------------------------

@pytest.mark.parametrize("method, url, status, code", [
    ("get", "/ledger/api/entries/0", 404, "not_found"),
    ("get", "/ledger/api/epochs?limit=0", 400, "invalid"),
    ("get", "/ledger/api/no/such/thing", 404, "not_found"),
    ("post", "/ledger/api/supply", 405, "method_not_allowed"),
    ("delete", "/ledger/api/journal.jsonl", 405, "method_not_allowed"),
])
def test_ledger_api(client, method, url, status, code):
    assert_shape(getattr(client, method)(url), status, code)


@pytest.mark.parametrize("method, url, status, code", [
    ("get", "/leaderboards/api/projects/no-such-project", 404, "not_found"),
    ("get", "/leaderboards/projects/no-such-project/?format=json", 404, "not_found"),
    ("post", "/leaderboards/api/volunteers", 405, "method_not_allowed"),
    ("post", "/leaderboards/teams/?format=json", 405, "method_not_allowed"),
])
def test_leaderboard_json(client, method, url, status, code):
    assert_shape(getattr(client, method)(url), status, code)


def test_leaderboard_html_pages_keep_html_errors(client):
    response = client.get("/leaderboards/projects/no-such-project/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_project_tiles_json(client, project):
    assert_shape(client.get(f"/projects/{project.slug}/tiles/nothing.json"), 404, "not_found")
    assert_shape(client.post(f"/projects/{project.slug}/tiles/nothing.json"), 405,
                 "method_not_allowed")


def test_admin_upload_status_json(client, owner):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    from django.urls import reverse

    url = reverse("admin:projects_batch_upload_status", args=["no-such-job"])
    assert_shape(client.get(url), 404, "not_found")
