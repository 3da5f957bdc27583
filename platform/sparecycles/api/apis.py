"""The owners' REST API (v1): projects, apps and versions, batches, progress and results.

The set follows BOINC's remote job submission: create apps and versions, submit
a batch, query batches and jobs, abort and retire, fetch output. Every view is
thin: a nested InputSerializer checks the request, one service or selector does
the work, a nested OutputSerializer shapes the answer. Auth: `Authorization:
Token <key>` (POST auth/token/ with username and password gives one) or the
admin's session. Owners see only their own projects; anything else is a 404.
"""

import math

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from sparecycles.projects import selectors
from sparecycles.projects.inputs import MAX_BATCH_UNITS, format_for, inputs_check
from sparecycles.projects.models import (
    App,
    AppVersion,
    Batch,
    OutputView,
    Project,
    Runtime,
    Validator,
    WorkUnit,
)
from sparecycles.projects.services import (
    MAX_DELAY_BOUND_S,
    MAX_REPLICAS,
    QuorumParams,
    app_code_check,
    app_create,
    app_update,
    app_version_create,
    batch_abort,
    batch_create,
    batch_create_from_file,
    batch_pause,
    batch_resume,
    batch_retire,
    project_create,
    project_update,
)

from .exceptions import exception_handler
from .exports import export_async, export_sync
from .pagination import Pagination
from .permissions import CanCreateProjects, IsProjectOwner
from .throttling import LoginRateThrottle, OwnerRateThrottle

MAX_CODE_BYTES = 5 * 1024 * 1024
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


def _batch_or_404(request, pk: int) -> Batch:
    batch = selectors.batch_get(user=request.user, pk=pk)
    if batch is None:
        raise NotFound("No such batch among your projects.")
    return batch


def _app_or_404(request, name: str) -> App:
    app = selectors.app_get(user=request.user, name=name)
    if app is None:
        raise NotFound("No such app among your projects.")
    return app


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.ListField(child=serializers.CharField(), required=False)


ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


# --- root and auth -----------------------------------------------------------------------

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

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **ERRORS},
                   auth=[], summary="Get an API token")
    def post(self, request):
        from django.contrib.auth import authenticate

        data = self._validated(self.InputSerializer, request.data)
        user = authenticate(request._request, username=data["username"],
                            password=data["password"])
        if user is None:
            return Response({"detail": "Wrong username or password."},
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
            return Response({"detail": "Authentication credentials were not provided."},
                            status=status.HTTP_401_UNAUTHORIZED)
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _validated(serializer_class, data):
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- projects ----------------------------------------------------------------------------

class ProjectOutputSerializer(serializers.ModelSerializer):
    owners = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["slug", "title", "description", "is_public", "owners", "page_url",
                  "created_at"]

    def get_page_url(self, obj) -> str:
        return f"/projects/{obj.slug}/"


class ProjectListApi(OwnerListApi):
    """Your projects; POST creates one (you become its owner)."""

    serializer_class = ProjectOutputSerializer
    permission_classes = [IsProjectOwner, CanCreateProjects]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectCreate"

        slug = serializers.SlugField(max_length=50)
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(max_length=20_000, allow_blank=True, default="")
        is_public = serializers.BooleanField(default=True)

    def get_queryset(self):
        return selectors.project_list(user=self.request.user).prefetch_related("owners")

    @extend_schema(request=InputSerializer,
                   responses={201: ProjectOutputSerializer, 409: ErrorSerializer, **ERRORS},
                   summary="Create a project")
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        project = project_create(owner=request.user, **data)
        return Response(ProjectOutputSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(OwnerApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectUpdate"

        title = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(max_length=20_000, allow_blank=True, required=False)
        is_public = serializers.BooleanField(required=False)

    def _project(self, request, slug) -> Project:
        project = selectors.project_get(user=request.user, slug=slug)
        if project is None:
            raise NotFound("No such project among yours.")
        return project

    @extend_schema(responses={200: ProjectOutputSerializer, **ERRORS}, summary="A project")
    def get(self, request, slug):
        return Response(ProjectOutputSerializer(self._project(request, slug)).data)

    @extend_schema(request=InputSerializer, responses={200: ProjectOutputSerializer, **ERRORS},
                   summary="Change a project's title, description or visibility")
    def patch(self, request, slug):
        project = self._project(request, slug)
        data = validated(self.InputSerializer, request.data)
        return Response(ProjectOutputSerializer(project_update(project=project, **data)).data)


# --- apps --------------------------------------------------------------------------------

class AppOutputSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = App
        fields = ["name", "project", "title", "description", "validator", "validator_options",
                  "validate_code", "adaptive_replication", "adaptive_threshold",
                  "spot_check_rate", "min_memory_mb", "allow_mobile", "output_view",
                  "latest_version", "created_at"]

    def get_latest_version(self, obj) -> int | None:
        version = obj.latest_version()
        return version.number if version else None


class AppSettingsSerializer(serializers.Serializer):
    """The fields an owner sets on an app, all but title optional."""

    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=20_000, allow_blank=True, required=False)
    validator = serializers.ChoiceField(choices=Validator.choices, required=False)
    validator_options = serializers.JSONField(required=False)
    validate_code = serializers.CharField(max_length=100_000, allow_blank=True, required=False,
                                          trim_whitespace=False)
    adaptive_replication = serializers.BooleanField(required=False)
    adaptive_threshold = serializers.IntegerField(min_value=1, max_value=1_000_000,
                                                  required=False)
    spot_check_rate = serializers.FloatField(min_value=0, max_value=1, required=False,
                                             validators=[finite])
    min_memory_mb = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False)
    allow_mobile = serializers.BooleanField(required=False)
    output_view = serializers.ChoiceField(choices=OutputView.choices, required=False,
                                          allow_blank=True)


class AppListApi(OwnerListApi):
    """Your apps (?project=<slug> to narrow); POST creates one, with its validator."""

    serializer_class = AppOutputSerializer

    class InputSerializer(AppSettingsSerializer):
        class Meta:
            ref_name = "AppCreate"

        project = serializers.SlugField(max_length=50)
        name = serializers.SlugField(max_length=50)

    @extend_schema(parameters=[OpenApiParameter("project", str, description="Project slug")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.app_list(user=self.request.user,
                                  project=self.request.query_params.get("project") or None)

    @extend_schema(request=InputSerializer,
                   responses={201: AppOutputSerializer, 409: ErrorSerializer, **ERRORS},
                   summary="Create an app")
    def post(self, request):
        data = dict(validated(self.InputSerializer, request.data))
        project = selectors.project_get(user=request.user, slug=data.pop("project"))
        if project is None:
            raise NotFound("No such project among yours.")
        app = app_create(project=project, name=data.pop("name"), title=data.pop("title"), **data)
        return Response(AppOutputSerializer(app).data, status=status.HTTP_201_CREATED)


class AppDetailApi(OwnerApi):
    class InputSerializer(AppSettingsSerializer):
        class Meta:
            ref_name = "AppUpdate"

        title = serializers.CharField(max_length=200, required=False)

    @extend_schema(responses={200: AppOutputSerializer, **ERRORS}, summary="An app")
    def get(self, request, name):
        return Response(AppOutputSerializer(_app_or_404(request, name)).data)

    @extend_schema(request=InputSerializer, responses={200: AppOutputSerializer, **ERRORS},
                   summary="Change an app's description, validator or scheduling")
    def patch(self, request, name):
        app = _app_or_404(request, name)
        data = validated(self.InputSerializer, request.data)
        return Response(AppOutputSerializer(app_update(app=app, **data)).data)


class WheelOutputSerializer(serializers.Serializer):
    filename = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return obj.app_version.wheel_url(obj.filename)


class AppVersionOutputSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="app.name")
    code_url = serializers.CharField()
    wheels = WheelOutputSerializer(many=True)

    class Meta:
        model = AppVersion
        fields = ["app", "number", "runtime", "entry", "sha256", "code_url", "packages",
                  "wheels", "flops_per_unit", "created_at"]


class AppVersionListApi(OwnerListApi):
    """An app's versions; POST uploads the next one (multipart: code, optional wheels)."""

    serializer_class = AppVersionOutputSerializer

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AppVersionCreate"

        code = serializers.FileField(help_text="main.py (runtime pyodide) or the .wasm module.")
        runtime = serializers.ChoiceField(choices=Runtime.choices, default=Runtime.PYODIDE)
        entry = serializers.RegexField(IDENTIFIER, max_length=100, default="main",
                                       help_text="Python: the function main.py defines. wasm: "
                                                 "the exported function (see docs/wasm-abi.md).")
        flops_per_unit = serializers.FloatField(min_value=0, max_value=1e24, default=1e9,
                                                validators=[finite])
        wheels = serializers.ListField(child=serializers.FileField(), required=False,
                                       max_length=20, help_text="Pure-Python wheels.")

    def get_queryset(self):
        return selectors.app_version_list(app=_app_or_404(self.request, self.kwargs["name"]))

    @extend_schema(request={"multipart/form-data": InputSerializer},
                   responses={201: AppVersionOutputSerializer, **ERRORS},
                   summary="Upload a new app version")
    def post(self, request, name):
        from sparecycles.projects.code_checks import wasm_abi_check

        app = _app_or_404(request, name)
        data = validated(self.InputSerializer, request.data)
        upload = data["code"]
        if upload.size > MAX_CODE_BYTES:
            raise serializers.ValidationError(
                {"code": [f"The code file is larger than {MAX_CODE_BYTES // 2**20} MiB."]})
        code = upload.read()
        app_code_check(code=code, runtime=data["runtime"], entry=data["entry"])
        if data["runtime"] == Runtime.WASM:
            wasm_abi_check(code=code, entry=data["entry"])
        wheels = [(w.name, w.read()) for w in data.get("wheels") or []]
        version = app_version_create(app=app, code=code, runtime=data["runtime"],
                                     entry=data["entry"], flops_per_unit=data["flops_per_unit"],
                                     wheels=wheels)
        return Response(AppVersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class AppVersionDetailApi(OwnerApi):
    @extend_schema(responses={200: AppVersionOutputSerializer, **ERRORS},
                   summary="One app version")
    def get(self, request, name, number):
        app = _app_or_404(request, name)
        version = selectors.app_version_list(app=app).filter(number=number).first() if (
            0 < number <= selectors.MAX_PK) else None
        if version is None:
            raise NotFound("No such version of this app.")
        return Response(AppVersionOutputSerializer(version).data)


# --- batches -----------------------------------------------------------------------------

class CountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    open = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    fraction_done = serializers.FloatField()


class BatchOutputSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="app_version.app.name")
    version = serializers.IntegerField(source="app_version.number")
    runtime = serializers.CharField(source="app_version.runtime")
    created_by = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = ["id", "name", "app", "version", "runtime", "state", "created_by",
                  "created_at", "counts"]

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None

    @extend_schema_field(CountsSerializer)
    def get_counts(self, obj):
        if hasattr(obj, "n_total"):
            counts = {"total": obj.n_total, "open": obj.n_open, "completed": obj.n_completed,
                      "failed": obj.n_failed, "cancelled": obj.n_cancelled}
        else:
            counts = selectors.batch_progress(batch=obj)
        done = counts["completed"] + counts["failed"] + counts["cancelled"]
        counts["fraction_done"] = round(done / counts["total"], 4) if counts["total"] else 0.0
        return counts


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()
    count = serializers.IntegerField()


class ReplicaErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    count = serializers.IntegerField()


class ReplicaCountsSerializer(serializers.Serializer):
    in_progress = serializers.IntegerField()
    errors = serializers.IntegerField()
    timed_out = serializers.IntegerField()
    invalid = serializers.IntegerField()


class BatchStatusSerializer(CountsSerializer):
    replicas = ReplicaCountsSerializer()
    failure_reasons = ReasonSerializer(many=True)
    replica_errors = ReplicaErrorSerializer(many=True)


class BatchDetailOutputSerializer(BatchOutputSerializer):
    status = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta(BatchOutputSerializer.Meta):
        fields = [*BatchOutputSerializer.Meta.fields, "status", "links"]

    @extend_schema_field(BatchStatusSerializer)
    def get_status(self, obj):
        return selectors.batch_status(batch=obj)

    @extend_schema_field(inline_serializer("BatchLinks", {
        "workunits": serializers.CharField(), "results": serializers.CharField(),
        "results_jsonl": serializers.CharField(), "results_csv": serializers.CharField()}))
    def get_links(self, obj):
        base = f"/api/v1/batches/{obj.pk}"
        return {"workunits": f"{base}/workunits/", "results": f"{base}/results/",
                "results_jsonl": f"{base}/results.jsonl", "results_csv": f"{base}/results.csv"}


QUORUM_FIELDS = list(QuorumParams.__dataclass_fields__)


def _replicas(name: str) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_REPLICAS,
                                    default=getattr(QuorumParams, name))


class BatchListApi(OwnerListApi):
    """Your batches (?app=, ?state=); POST submits one from a JSONL/CSV file or a JSON list."""

    serializer_class = BatchOutputSerializer

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BatchCreate"

        app = serializers.SlugField(max_length=50)
        version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False,
                                           help_text="App version number; default the latest.")
        name = serializers.CharField(max_length=200)
        format = serializers.ChoiceField(choices=["jsonl", "csv"], required=False,
                                         help_text="Of `file`; default from its name.")
        file = serializers.FileField(required=False, help_text="JSONL or CSV, see the README.")
        inputs = serializers.ListField(child=serializers.DictField(), required=False,
                                       max_length=MAX_BATCH_UNITS,
                                       help_text="The inputs, instead of a file.")
        min_quorum = _replicas("min_quorum")
        target_nresults = _replicas("target_nresults")
        max_error_results = _replicas("max_error_results")
        max_total_results = _replicas("max_total_results")
        max_success_results = _replicas("max_success_results")
        delay_bound = serializers.IntegerField(min_value=1, max_value=MAX_DELAY_BOUND_S,
                                               default=QuorumParams.delay_bound,
                                               help_text="Seconds a volunteer has.")

        def validate(self, attrs):
            if ("file" in attrs) == ("inputs" in attrs):
                raise serializers.ValidationError("Send either a file or a list of inputs.")
            return attrs

    @extend_schema(parameters=[
        OpenApiParameter("app", str, description="App name"),
        OpenApiParameter("state", str, enum=Batch.State.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        state = params.get("state") or None
        if state is not None and state not in Batch.State.values:
            return Batch.objects.none()
        return selectors.batch_list_counted(user=self.request.user,
                                            app=params.get("app") or None, state=state)

    @extend_schema(request={"multipart/form-data": InputSerializer,
                            "application/json": InputSerializer},
                   responses={201: BatchDetailOutputSerializer, **ERRORS},
                   summary="Submit a batch of work units")
    def post(self, request):
        data = validated(self.InputSerializer, request.data)
        app = _app_or_404(request, data["app"])
        versions = selectors.app_version_list(app=app)
        version = (versions.filter(number=data["version"]).first() if "version" in data
                   else versions.last())
        if version is None:
            raise NotFound("No such version of this app; upload one first." if "version" in data
                           else "This app has no version yet; upload one first.")
        quorum = QuorumParams(**{name: data[name] for name in QUORUM_FIELDS})
        if "file" in data:
            upload = data["file"]
            batch = batch_create_from_file(
                app_version=version, name=data["name"], file=upload,
                fmt=format_for(upload.name, data.get("format")), quorum=quorum,
                created_by=request.user)
        else:
            inputs_check(data["inputs"])
            batch = batch_create(app_version=version, name=data["name"], inputs=data["inputs"],
                                 quorum=quorum, created_by=request.user)
        return Response(BatchDetailOutputSerializer(batch).data, status=status.HTTP_201_CREATED)


class BatchDetailApi(OwnerApi):
    @extend_schema(responses={200: BatchDetailOutputSerializer, **ERRORS},
                   summary="A batch: progress, failures with reasons, links to results")
    def get(self, request, pk):
        return Response(BatchDetailOutputSerializer(_batch_or_404(request, pk)).data)


class _BatchLifecycleApi(OwnerApi):
    service = None

    def post(self, request, pk):
        batch = type(self).service(batch=_batch_or_404(request, pk))
        return Response(BatchDetailOutputSerializer(batch).data)


def _lifecycle(name: str, service, summary: str):
    decorated = extend_schema(request=None, summary=summary, responses={
        200: BatchDetailOutputSerializer, 409: ErrorSerializer, **ERRORS})(
        _BatchLifecycleApi.post)
    return type(name, (_BatchLifecycleApi,), {"service": staticmethod(service),
                                              "post": decorated})


BatchPauseApi = _lifecycle("BatchPauseApi", batch_pause,
                           "Pause a batch: no new tasks go out until it is resumed")
BatchResumeApi = _lifecycle("BatchResumeApi", batch_resume, "Resume a paused batch")
BatchAbortApi = _lifecycle("BatchAbortApi", batch_abort,
                           "Abort a batch: cancel its unfinished work units")
BatchRetireApi = _lifecycle("BatchRetireApi", batch_retire,
                            "Retire a batch: cancel what is left and close it for good")


class WorkUnitOutputSerializer(serializers.ModelSerializer):
    output = serializers.JSONField(source="canonical_output")

    class Meta:
        model = WorkUnit
        fields = ["seq", "state", "input", "output", "error_reason", "completed_at"]


class BatchWorkUnitListApi(OwnerListApi):
    """Every work unit of a batch with its state (BOINC's query_job), ?state= to filter."""

    serializer_class = WorkUnitOutputSerializer

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=WorkUnit.State.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        batch = _batch_or_404(self.request, self.kwargs["pk"])
        state = self.request.query_params.get("state") or None
        if state is not None and state not in WorkUnit.State.values:
            return WorkUnit.objects.none()
        return selectors.batch_workunits(batch=batch, state=state)


class ResultOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    input = serializers.JSONField()
    output = serializers.JSONField(source="canonical_output")
    completed_at = serializers.DateTimeField()


class BatchResultListApi(OwnerListApi):
    """The validated (canonical) outputs of a batch, in input order, paginated."""

    serializer_class = ResultOutputSerializer

    def get_queryset(self):
        return selectors.batch_results(batch=_batch_or_404(self.request, self.kwargs["pk"]))


class BatchResultExportApi(OwnerApi):
    """All validated results of a batch in one streamed file (see api/exports.py)."""

    fmt = "jsonl"

    def get(self, request, pk):
        batch = _batch_or_404(request, pk)
        fmt = type(self).fmt
        stream = (export_async(batch, fmt) if isinstance(request._request, ASGIRequest)
                  else export_sync(batch, fmt))
        content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl"
        response = StreamingHttpResponse(stream, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}-results.{fmt}"'
        return response


class BatchResultJsonlApi(BatchResultExportApi):
    fmt = "jsonl"

    @extend_schema(summary="Download all validated results as JSON lines", responses={
        (200, "application/jsonl"): OpenApiResponse(
            OpenApiTypes.STR, description='One {"seq", "input", "output"} object per line.'),
        **ERRORS})
    def get(self, request, pk):
        return super().get(request, pk)


class BatchResultCsvApi(BatchResultExportApi):
    fmt = "csv"

    @extend_schema(summary="Download all validated results as CSV", responses={
        (200, "text/csv"): OpenApiResponse(
            OpenApiTypes.STR, description="seq plus one column per output key."),
        **ERRORS})
    def get(self, request, pk):
        return super().get(request, pk)

