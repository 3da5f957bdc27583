"""The API root and tokens: POST auth/token/ trades a username and password for a token."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from sparecycles.errors import error_body
from sparecycles.projects import selectors

from ..exceptions import exception_handler
from ..permissions import IsProjectOwner
from ..throttling import LoginRateThrottle
from .base import ERRORS, ErrorSerializer


class ApiRootApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Where things are")
    def get(self, request):
        def url(name, *args):
            return reverse(f"api:{name}", args=args, request=request)

        return Response({
            "schema": url("schema"), "token": url("token"), "projects": url("projects"),
            "apps": url("apps"), "batches": url("batches"),
            "docs": "Authorization: Token <key>. See the OpenAPI schema for every operation.",
        })


class TokenApi(APIView):
    """Trade a username and password for an API token (the CLI's `login`), or revoke it."""

    authentication_classes = [TokenAuthentication]   # no session: see OwnerApiMixin
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_exception_handler(self):
        return exception_handler

    def get_throttles(self):
        return [LoginRateThrottle()] if self.request.method == "POST" else []

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TokenRequest"

        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=200, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        username = serializers.CharField()

    @extend_schema(request=InputSerializer,
                   responses={200: OutputSerializer, **ERRORS},
                   auth=[], summary="Get an API token")
    def post(self, request):
        from django.contrib.auth import authenticate

        data = self._validated(self.InputSerializer, request.data)
        user = authenticate(request._request, username=data["username"],
                            password=data["password"])
        if user is None:
            refusal = getattr(request._request, "login_refusal", None)
            if refusal is not None:  # volunteers/login_throttle.py: per username and address
                return Response(error_body(429, refusal.message),
                                status=status.HTTP_429_TOO_MANY_REQUESTS,
                                headers={"Retry-After": str(refusal.retry_after_s)})
            return Response(error_body(400, "Wrong username or password.",
                                       code="authentication_failed"),
                            status=status.HTTP_400_BAD_REQUEST)
        if not selectors.user_is_owner(user):
            raise PermissionDenied(IsProjectOwner.message)
        token, _ = Token.objects.get_or_create(user=user)
        return Response(self.OutputSerializer({"token": token.key,
                                               "username": user.get_username()}).data)

    @extend_schema(request=None, responses={204: None, 401: ErrorSerializer},
                   summary="Revoke your API token")
    def delete(self, request):
        if not request.user.is_authenticated:
            return Response(error_body(401, "Authentication credentials were not provided."),
                            status=status.HTTP_401_UNAUTHORIZED)
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _validated(serializer_class, data):
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
