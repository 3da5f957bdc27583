import pytest

pytestmark = pytest.mark.django_db


def test_app_code_is_served_with_its_hash(client, app_version):
    response = client.get(app_version.code_url)
    assert response.status_code == 200
    assert response.content == bytes(app_version.code)
    assert response["X-Content-SHA256"] == app_version.sha256
    assert "immutable" in response["Cache-Control"]


def test_unknown_app_version_is_404(client, app_version):
    assert client.get("/apps/square/99/code").status_code == 404
