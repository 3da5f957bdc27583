"""web/error_pages.py: 404 and 500 pages in the site's look; JSON paths keep the JSON shape."""

import json

import pytest
from django.test import RequestFactory

from sparecycles.web.error_pages import server_error


@pytest.mark.django_db
def test_a_missing_page_is_a_styled_404(client):
    response = client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "This page isn't here" in html and 'class="site-header"' in html
    assert 'href="/projects/"' in html and "css/site.css" in html


@pytest.mark.django_db
@pytest.mark.parametrize("path, headers", [
    ("/api/v1/no/such/thing/", {}),
    ("/leaderboards/api/nothing", {}),
    ("/no/such/page/", {"HTTP_ACCEPT": "application/json"}),
    ("/no/such/page/?format=json", {}),
])
def test_json_paths_keep_the_json_error_shape(client, path, headers):
    response = client.get(path, **headers)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


def test_the_500_page_needs_no_database_and_no_context_processors():
    # No django_db mark: any query would fail this test.
    response = server_error(RequestFactory().get("/somewhere/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html and "css/site.css" in html
    assert "Spare Cycles" in html


def test_a_json_path_gets_a_json_500():
    response = server_error(RequestFactory().get("/api/v1/batches/"))
    assert response.status_code == 500
    assert json.loads(response.content)["code"] == "server_error"
