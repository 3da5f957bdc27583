"""apps/: your apps and their settings (validator, scheduling)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from sparecycles.projects import selectors
from sparecycles.projects.models import App, OutputView, Validator
from sparecycles.projects.services import app_create, app_update

from .base import ERRORS, ErrorSerializer, OwnerApi, OwnerListApi, app_or_404, finite, validated


class AppOutputSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = App
        fields = ["name", "project", "title", "description", "validator", "validator_options",
                  "validate_code", "adaptive_replication", "adaptive_threshold",
                  "spot_check_rate", "credibility_threshold", "min_memory_mb", "allow_mobile",
                  "output_view", "latest_version", "created_at"]

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
    credibility_threshold = serializers.FloatField(min_value=0.5, max_value=0.999999,
                                                   required=False, validators=[finite])
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
        return Response(AppOutputSerializer(app_or_404(request, name)).data)

    @extend_schema(request=InputSerializer, responses={200: AppOutputSerializer, **ERRORS},
                   summary="Change an app's description, validator or scheduling")
    def patch(self, request, name):
        app = app_or_404(request, name)
        data = validated(self.InputSerializer, request.data)
        return Response(AppOutputSerializer(app_update(app=app, **data)).data)
