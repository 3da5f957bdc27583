"""projects/: your projects; create one, change its title, description or visibility."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from sparecycles.projects import selectors
from sparecycles.projects.models import Project
from sparecycles.projects.services import project_create, project_update

from ..permissions import CanCreateProjects, IsProjectOwner
from .base import ERRORS, ErrorSerializer, OwnerApi, OwnerListApi, validated


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
