"""What every owners' API view shares: token auth, owner permission, throttle, the
error handler, the 404 lookups, and input validation."""

import math

from rest_framework import generics, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.views import APIView

from sparecycles.projects import selectors
from sparecycles.projects.models import App, Batch

from ..exceptions import ErrorSerializer, exception_handler
from ..pagination import Pagination
from ..permissions import IsProjectOwner
from ..throttling import OwnerRateThrottle

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


def finite(value: float) -> None:
    if not math.isfinite(value):
        raise serializers.ValidationError("Must be a finite number.")


class OwnerApiMixin:
    # Tokens only, never the session cookie: a page of this site (or code that got hold of
    # one) could otherwise act as a logged-in owner. Browsers never send a token by themselves.
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsProjectOwner]
    throttle_classes = [OwnerRateThrottle]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_exception_handler(self):
        return exception_handler


class OwnerApi(OwnerApiMixin, APIView):
    pass


class OwnerListApi(OwnerApiMixin, generics.ListAPIView):
    pagination_class = Pagination


def batch_or_404(request, pk: int) -> Batch:
    batch = selectors.batch_get(user=request.user, pk=pk)
    if batch is None:
        raise NotFound("No such batch among your projects.")
    return batch


def app_or_404(request, name: str) -> App:
    app = selectors.app_get(user=request.user, name=name)
    if app is None:
        raise NotFound("No such app among your projects.")
    return app


# Every operation may answer these, in the one error shape (sparecycles/errors.py).
ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 405, 429)}


def validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
