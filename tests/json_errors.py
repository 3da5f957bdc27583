"""The one JSON error shape (sparecycles/errors.py), asserted the same way everywhere."""

import json

KEYS = {"detail", "code", "errors", "fields"}


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) <= KEYS and isinstance(body["detail"], str) and body["detail"]
    assert body["code"] == code
    return body
