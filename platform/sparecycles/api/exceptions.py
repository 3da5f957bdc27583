"""Errors as 4xx JSON with a message that says what to do, never a 500.

Every error of the owners' API has the site's one shape (sparecycles/errors.py):
{"detail": "...", "code": "...", "errors": ["Line 2: ...", ...], "fields": {...}} —
`errors` only when there are several (e.g. the bad lines of an upload, each naming its
line), `fields` only for a request's per-field problems. `ErrorSerializer` is that shape
in the OpenAPI schema (the `Error` component).
"""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from sparecycles.errors import CODES, SEVERAL, error_body, error_response
from sparecycles.projects.services import BatchStateError

logger = logging.getLogger(__name__)


class ErrorSerializer(serializers.Serializer):
    """Every error answer of this API (and of the site's other JSON endpoints)."""

    class Meta:
        ref_name = "Error"

    detail = serializers.CharField(help_text="What went wrong and what to do, in a sentence.")
    code = serializers.ChoiceField(
        choices=sorted({*CODES.values(), "authentication_failed", "parse_error"}),
        help_text="A stable machine-readable word for the kind of error.")
    errors = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Every problem, when there are several (each names its line or field).")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="A request's problems by field name.")


def _flatten(data, prefix: str = "") -> list[tuple[str, str]]:
    """DRF's nested {"field": ["message"]} as (field path, message) pairs; "" for the whole
    request (non_field_errors)."""
    if isinstance(data, dict):
        pairs = []
        for name, value in data.items():
            path = "" if name == "non_field_errors" and not prefix else f"{prefix}{name}"
            pairs += _flatten(value, f"{path}." if path else "")
        return pairs
    if isinstance(data, list):
        pairs = []
        for position, value in enumerate(data):
            pairs += _flatten(value, f"{prefix}{position}." if isinstance(value, dict)
                              else prefix)
        return pairs
    return [(prefix.rstrip("."), str(data))]


def body_for(exc: exceptions.APIException, default_status: int) -> dict:
    """The one shape for a DRF exception."""
    if isinstance(exc, exceptions.ValidationError):
        pairs = _flatten(exc.detail) or [("", "The request was refused.")]
        lines = [f"{field}: {message}" if field else message for field, message in pairs]
        fields: dict[str, list[str]] = {}
        for field, message in pairs:
            if field:
                fields.setdefault(field, []).append(message)
        return error_body(400, lines[0] if len(lines) == 1 else SEVERAL, code="invalid",
                          errors=lines, fields=fields or None)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else CODES.get(default_status)
    detail = exc.detail if isinstance(exc.detail, str) else _flatten(exc.detail)[0][1]
    return error_body(default_status, str(detail), code=code)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        messages = exc.messages
        return Response(error_body(400, messages[0] if len(messages) == 1 else SEVERAL,
                                   errors=messages),
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BatchStateError):
        return Response(error_body(409, str(exc)), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, IntegrityError):
        logger.info("integrity error answered 409: %s", exc)
        return Response(error_body(409, "That conflicts with existing data (another request "
                                        "may have just created the same thing). Reload and "
                                        "try again."), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DataError):
        logger.info("data error answered 400: %s", exc)
        return Response(error_body(400, "A value is out of range or can't be stored."),
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = body_for(exc, response.status_code)
    return response


def api_not_found(request, rest: str = ""):
    """Any other path under /api/v1/: a JSON 404 in the same shape, not the HTML page."""
    return error_response(404, f"No API at /api/v1/{rest[:60]}: see /api/v1/ and the OpenAPI "
                               "schema at /api/v1/schema/.")
