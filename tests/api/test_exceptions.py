"""The owners' API answers every error in the site's one shape (api/exceptions.py):
{"detail", "code", "errors"?, "fields"?}, and the OpenAPI schema says so."""


import pytest
import yaml
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.json_errors import KEYS
from tests.json_errors import assert_error_shape as shape

from .conftest import token_client

pytestmark = pytest.mark.django_db



def test_field_errors_keep_detail_and_list_each_field(api):
    body = shape(api.post("/api/v1/batches/", {}, format="json"), 400, "invalid")
    assert body["detail"] == "The request was refused; nothing was created or changed."
    assert "app: This field is required." in body["errors"]
    assert body["fields"]["name"] == ["This field is required."]


def test_a_single_field_error_is_the_detail(api, app):
    body = shape(api.patch(f"/api/v1/apps/{app.name}/", {"spot_check_rate": 2},
                           format="json"), 400, "invalid")
    assert body["detail"].startswith("spot_check_rate: ")
    assert list(body["fields"]) == ["spot_check_rate"]


def test_a_service_refusal_is_a_400_with_its_message(api, app):
    body = shape(api.patch(f"/api/v1/apps/{app.name}/", {"validator": "custom",
                                                         "validate_code": ""},
                           format="json"), 400, "invalid")
    assert "needs Python code" in body["detail"]


def test_malformed_json_is_a_parse_error(api):
    response = api.generic("POST", "/api/v1/batches/", "{not json",
                           content_type="application/json")
    shape(response, 400, "parse_error")


def test_no_token_wrong_token_and_not_an_owner(db):
    shape(APIClient().get("/api/v1/projects/"), 401, "not_authenticated")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token nope")
    shape(bad.get("/api/v1/projects/"), 401, "authentication_failed")
    volunteer = get_user_model().objects.create_user("vol", password="pw-vol-12345")
    shape(token_client(volunteer).get("/api/v1/projects/"), 403, "permission_denied")


def test_unknown_objects_and_paths_are_json_404s(api):
    assert "No such batch" in shape(api.get("/api/v1/batches/999/"), 404, "not_found")["detail"]
    body = shape(api.get("/api/v1/no/such/thing/"), 404, "not_found")
    assert "/api/v1/schema/" in body["detail"]


def test_wrong_method_is_a_405(api):
    shape(api.put("/api/v1/projects/", {}, format="json"), 405, "method_not_allowed")


def test_a_state_conflict_is_a_409(api, make_batch):
    batch = make_batch(count=1)
    assert api.post(f"/api/v1/batches/{batch.pk}/retire/").status_code == 200
    assert "retired" in shape(api.post(f"/api/v1/batches/{batch.pk}/abort/"), 409,
                              "conflict")["detail"]


def test_throttled_is_a_429(owner, project, settings):
    settings.SPARECYCLES = {**settings.SPARECYCLES, "API_LOGIN_RATE": "2/min"}
    client = APIClient()
    answers = [client.post("/api/v1/auth/token/", {"username": "owner", "password": "x"},
                           format="json") for _ in range(3)]
    shape(answers[0], 400, "authentication_failed")
    shape(answers[-1], 429, "throttled")


def test_the_schema_documents_the_shape(client):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}
    assert set(error["properties"]) == KEYS
    operation = schema["paths"]["/api/v1/batches/"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "405", "429"):
        assert operation[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
