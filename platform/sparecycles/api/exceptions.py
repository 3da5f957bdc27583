"""Errors as 4xx JSON with a message that says what to do, never a 500.

Shape: {"detail": "...", "errors": ["Line 2: ...", ...]} — `errors` only when there
are several, e.g. the bad lines of an upload (each names its line).
"""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from sparecycles.projects.services import BatchStateError

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        messages = exc.messages
        body = {"detail": messages[0] if len(messages) == 1 else
                "The request was refused; nothing was created or changed.",
                "errors": messages}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BatchStateError):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, IntegrityError):
        logger.info("integrity error answered 409: %s", exc)
        return Response({"detail": "That conflicts with existing data (another request may "
                                   "have just created the same thing). Reload and try again."},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DataError):
        logger.info("data error answered 400: %s", exc)
        return Response({"detail": "A value is out of range or can't be stored."},
                        status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
