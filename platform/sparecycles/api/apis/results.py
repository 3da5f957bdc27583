"""batches/<pk>/workunits/ and results: work units with their state, validated outputs,
and the streamed JSONL/CSV export (projects/exports.py)."""

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from sparecycles.projects import selectors
from sparecycles.projects.exports import export_async, export_sync
from sparecycles.projects.models import WorkUnit

from .base import ERRORS, OwnerApi, OwnerListApi, batch_or_404


class WorkUnitOutputSerializer(serializers.ModelSerializer):
    output = serializers.JSONField(source="canonical_output")

    class Meta:
        model = WorkUnit
        fields = ["seq", "state", "input", "output", "error_reason", "completed_at",
                  "revalidated_at"]


class BatchWorkUnitListApi(OwnerListApi):
    """Every work unit of a batch with its state (BOINC's query_job), ?state= to filter."""

    serializer_class = WorkUnitOutputSerializer

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=WorkUnit.State.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        batch = batch_or_404(self.request, self.kwargs["pk"])
        state = self.request.query_params.get("state") or None
        if state is not None and state not in WorkUnit.State.values:
            return WorkUnit.objects.none()
        return selectors.batch_workunits(batch=batch, state=state)


class ResultOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    input = serializers.JSONField()
    output = serializers.JSONField(source="canonical_output")
    completed_at = serializers.DateTimeField()
    revalidated = serializers.SerializerMethodField(
        help_text="True if validation derived this result again after catching a device "
                  "that had helped settle it (see revalidated_at).")
    revalidated_at = serializers.DateTimeField(allow_null=True)

    def get_revalidated(self, row) -> bool:
        return row["revalidated_at"] is not None


class BatchResultListApi(OwnerListApi):
    """The validated (canonical) outputs of a batch, in input order, paginated."""

    serializer_class = ResultOutputSerializer

    def get_queryset(self):
        return selectors.batch_results(batch=batch_or_404(self.request, self.kwargs["pk"]))


class BatchResultExportApi(OwnerApi):
    """All validated results of a batch in one streamed file (see projects/exports.py)."""

    fmt = "jsonl"

    def get(self, request, pk):
        batch = batch_or_404(request, pk)
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
            OpenApiTypes.STR, description="seq, input.<key> per input key, output.<key> per "
            "output key, revalidated."),
        **ERRORS})
    def get(self, request, pk):
        return super().get(request, pk)
