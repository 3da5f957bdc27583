"""apps/<name>/versions/: upload an app version, read one, approve its FLOPs estimate."""

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from sparecycles.projects import selectors
from sparecycles.projects.models import AppVersion, Runtime
from sparecycles.projects.services import MAX_CODE_BYTES, app_version_create

from .base import ERRORS, IDENTIFIER, OwnerApi, OwnerListApi, app_or_404, finite, validated


class WheelOutputSerializer(serializers.Serializer):
    filename = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return obj.app_version.wheel_url(obj.filename)


class FlopsApprovalSerializer(serializers.Serializer):
    flops_per_unit = serializers.FloatField()
    approved_by = serializers.CharField(source="approved_by.username")
    approved_at = serializers.DateTimeField()


class AppVersionOutputSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="app.name")
    code_url = serializers.CharField()
    wheels = WheelOutputSerializer(many=True)
    warnings = serializers.SerializerMethodField(
        help_text="What to fix, e.g. a workload left at the default (1e9 operations).")
    flops_approval = serializers.SerializerMethodField(
        help_text="A superuser's approval of flops_per_unit, or null: then the estimate can "
                  "only lower the credit measured (it never raises it).")

    class Meta:
        model = AppVersion
        fields = ["app", "number", "runtime", "entry", "sha256", "code_url", "packages",
                  "wheels", "flops_per_unit", "flops_approval", "warnings", "created_at"]

    @extend_schema_field(inline_serializer("AppVersionWarning", {
        "code": serializers.CharField(), "text": serializers.CharField()}, many=True))
    def get_warnings(self, obj) -> list[dict]:
        return selectors.app_version_warnings(app_version=obj)

    @extend_schema_field(FlopsApprovalSerializer(allow_null=True))
    def get_flops_approval(self, obj) -> dict | None:
        from sparecycles.credit.selectors import flops_approval_in_force

        approval = flops_approval_in_force(app_version=obj)
        return FlopsApprovalSerializer(approval).data if approval else None


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
        return selectors.app_version_list(app=app_or_404(self.request, self.kwargs["name"]))

    @extend_schema(request={"multipart/form-data": InputSerializer},
                   responses={201: AppVersionOutputSerializer, **ERRORS},
                   summary="Upload a new app version")
    def post(self, request, name):
        app = app_or_404(request, name)
        data = validated(self.InputSerializer, request.data)
        upload = data["code"]
        if upload.size > MAX_CODE_BYTES:
            raise serializers.ValidationError(
                {"code": [f"The code file is larger than {MAX_CODE_BYTES // 2**20} MiB."]})
        code = upload.read()  # app_version_create checks it (code, ABI, wheels)
        wheels = [(w.name, w.read()) for w in data.get("wheels") or []]
        version = app_version_create(app=app, code=code, runtime=data["runtime"],
                                     entry=data["entry"], flops_per_unit=data["flops_per_unit"],
                                     wheels=wheels)
        return Response(AppVersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class AppVersionDetailApi(OwnerApi):
    @extend_schema(responses={200: AppVersionOutputSerializer, **ERRORS},
                   summary="One app version")
    def get(self, request, name, number):
        app = app_or_404(request, name)
        version = selectors.app_version_list(app=app).filter(number=number).first() if (
            0 < number <= selectors.MAX_PK) else None
        if version is None:
            raise NotFound("No such version of this app.")
        return Response(AppVersionOutputSerializer(version).data)


class AppVersionApproveFlopsApi(OwnerApi):
    """POST: a superuser approves the version's declared FLOPs estimate (recorded)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "FlopsApprove"

        flops_per_unit = serializers.FloatField(min_value=1, max_value=1e24, required=False,
                                                validators=[finite])
        note = serializers.CharField(max_length=200, required=False, default="")

    @extend_schema(request=InputSerializer, responses={200: AppVersionOutputSerializer, **ERRORS},
                   summary="Approve the declared FLOPs estimate (superusers only)")
    def post(self, request, name, number):
        from sparecycles.credit.services import ApprovalRefused, flops_approve

        if not request.user.is_superuser:
            raise PermissionDenied("Only a site superuser may approve a declared FLOPs "
                                   "estimate; owners cannot raise their own credit.")
        app = app_or_404(request, name)
        version = selectors.app_version_list(app=app).filter(number=number).first() if (
            0 < number <= selectors.MAX_PK) else None
        if version is None:
            raise NotFound("No such version of this app.")
        data = validated(self.InputSerializer, request.data)
        try:
            flops_approve(app_version=version, by=request.user,
                          flops_per_unit=data.get("flops_per_unit"), note=data["note"])
        except ApprovalRefused as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(AppVersionOutputSerializer(version).data)
