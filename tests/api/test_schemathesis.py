"""Property-based fuzzing of the whole API from its own OpenAPI schema: no input makes a 500.

Schemathesis reads /api/v1/schema/ and calls every operation in-process (WSGI) with
generated valid and invalid requests, as an authenticated owner who has a project, an
app with a version and a batch with results, so the deep paths are reached too.
Bounded: a few examples per operation, well under a minute.
"""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from sparecycles.projects.services import project_owner_add

from .conftest import compute

MAX_EXAMPLES = 10


@pytest.fixture
def keep_test_connection():
    """As Django's test client does: the WSGI handler must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, owner, project, app_version, make_batch, settings, keep_test_connection):
    # Rate limits would answer 429 long before the fuzzer is done; they have their own test.
    settings.SPARECYCLES = {**settings.SPARECYCLES, "API_RATE": "100000/min",
                            "API_LOGIN_RATE": "100000/min"}
    cache.clear()
    project_owner_add(project=project, user=owner)
    batch = make_batch(count=3)
    compute(batch)
    return batch


@pytest.fixture
def owner_token(owner):
    return Token.objects.get_or_create(user=owner)[0].key


# Loaded when pytest collects this file (pytest-django has set Django up by then); the
# schema request itself touches no database. (schemathesis.pytest.from_fixture would be
# lazier, but its loader breaks on pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case, seeded, owner_token):
    # Point paths and references at things that exist, so requests get past the 404s
    # into validation and the services (random slugs and ids would only test lookups).
    real = {"slug": "squares", "name": "square", "number": 1, "pk": seeded.pk}
    for key in list(case.path_parameters or {}):
        if key in real:
            case.path_parameters[key] = real[key]
    if isinstance(case.body, dict):
        for key, value in (("app", "square"), ("project", "squares")):
            if key in case.body:
                case.body[key] = value
    case.call_and_validate(headers={"Authorization": f"Token {owner_token}"},
                           checks=[not_a_server_error])
