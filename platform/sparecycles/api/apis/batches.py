"""batches/: submit a batch, follow its progress; pause, resume, abort, retire."""

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from sparecycles.projects import selectors
from sparecycles.projects.inputs import MAX_BATCH_UNITS, format_for
from sparecycles.projects.models import Batch
from sparecycles.projects.services import (
    MAX_DELAY_BOUND_S,
    MAX_REPLICAS,
    QuorumParams,
    batch_create,
    batch_create_from_file,
    batch_pause,
    batch_resume,
)
from sparecycles.scheduler.batches import batch_abort, batch_retire
from sparecycles.scheduler.selectors import WAITING, batch_status

from .base import (
    ERRORS,
    ErrorSerializer,
    OwnerApi,
    OwnerListApi,
    app_or_404,
    batch_or_404,
    validated,
)


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


class ExplanationSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["completed", "all_failed", "aborted", "retired",
                                            "paused", "empty", "failed", *WAITING])
    count = serializers.IntegerField(allow_null=True, help_text="Work units it concerns.")
    text = serializers.CharField()


class WarningSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["default_workload"])
    text = serializers.CharField()


class BatchStatusSerializer(CountsSerializer):
    state = serializers.ChoiceField(
        choices=["completed", *Batch.State.values],
        help_text="As owners read it: an open or paused batch with no open work unit left "
                  "is completed.")
    replicas = ReplicaCountsSerializer()
    revalidated = serializers.IntegerField(
        help_text="Work units sent back to validation because a device that helped settle "
                  "them was caught later; their canonical result was derived again.")
    failure_reasons = ReasonSerializer(many=True)
    replica_errors = ReplicaErrorSerializer(many=True)
    waiting = inline_serializer("BatchWaiting", {
        code: serializers.IntegerField() for code in WAITING},
        help_text="Open work units by what they wait for.")
    explanations = ExplanationSerializer(
        many=True, help_text="Why the batch is where it is, in sentences, most important "
                             "first: every stall is named.")
    warnings = WarningSerializer(many=True, help_text="What to fix in the app version.")


class BatchDetailOutputSerializer(BatchOutputSerializer):
    status = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta(BatchOutputSerializer.Meta):
        fields = [*BatchOutputSerializer.Meta.fields, "status", "links"]

    @extend_schema_field(BatchStatusSerializer)
    def get_status(self, obj):
        return batch_status(batch=obj)

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
        app = app_or_404(request, data["app"])
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
            batch = batch_create(app_version=version, name=data["name"], inputs=data["inputs"],
                                 quorum=quorum, created_by=request.user)
        return Response(BatchDetailOutputSerializer(batch).data, status=status.HTTP_201_CREATED)


class BatchDetailApi(OwnerApi):
    @extend_schema(responses={200: BatchDetailOutputSerializer, **ERRORS},
                   summary="A batch: progress, failures with reasons, links to results")
    def get(self, request, pk):
        return Response(BatchDetailOutputSerializer(batch_or_404(request, pk)).data)


class _BatchLifecycleApi(OwnerApi):
    service = None

    def post(self, request, pk):
        batch = type(self).service(batch=batch_or_404(request, pk))
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
