"""/api/v1/…: the owners' REST API. The OpenAPI 3 schema is at /api/v1/schema/."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from .apis import apps, auth, batches, projects, results, versions
from .exceptions import api_not_found

app_name = "api"

urlpatterns = [
    path("", auth.ApiRootApi.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(
        urlconf="sparecycles.api.schema_urls", permission_classes=[AllowAny],
        authentication_classes=[]), name="schema"),
    path("auth/token/", auth.TokenApi.as_view(), name="token"),
    path("projects/", projects.ProjectListApi.as_view(), name="projects"),
    path("projects/<slug:slug>/", projects.ProjectDetailApi.as_view(), name="project"),
    path("apps/", apps.AppListApi.as_view(), name="apps"),
    path("apps/<slug:name>/", apps.AppDetailApi.as_view(), name="app"),
    path("apps/<slug:name>/versions/", versions.AppVersionListApi.as_view(), name="app-versions"),
    path("apps/<slug:name>/versions/<int:number>/", versions.AppVersionDetailApi.as_view(),
         name="app-version"),
    path("apps/<slug:name>/versions/<int:number>/approve-flops/",
         versions.AppVersionApproveFlopsApi.as_view(), name="app-version-approve-flops"),
    path("batches/", batches.BatchListApi.as_view(), name="batches"),
    path("batches/<int:pk>/", batches.BatchDetailApi.as_view(), name="batch"),
    path("batches/<int:pk>/pause/", batches.BatchPauseApi.as_view(), name="batch-pause"),
    path("batches/<int:pk>/resume/", batches.BatchResumeApi.as_view(), name="batch-resume"),
    path("batches/<int:pk>/abort/", batches.BatchAbortApi.as_view(), name="batch-abort"),
    path("batches/<int:pk>/retire/", batches.BatchRetireApi.as_view(), name="batch-retire"),
    path("batches/<int:pk>/workunits/", results.BatchWorkUnitListApi.as_view(),
         name="batch-workunits"),
    path("batches/<int:pk>/results/", results.BatchResultListApi.as_view(), name="batch-results"),
    path("batches/<int:pk>/results.jsonl", results.BatchResultJsonlApi.as_view(),
         name="batch-results-jsonl"),
    path("batches/<int:pk>/results.csv", results.BatchResultCsvApi.as_view(),
         name="batch-results-csv"),
    # Last: any other path under /api/v1/ is a JSON 404 in the one error shape.
    re_path(r"^(?P<rest>.*)$", api_not_found),
]
