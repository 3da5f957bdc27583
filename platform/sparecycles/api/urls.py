"""/api/v1/…: the owners' REST API. The OpenAPI 3 schema is at /api/v1/schema/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from . import apis

app_name = "api"

urlpatterns = [
    path("", apis.ApiRootApi.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(
        urlconf="sparecycles.api.schema_urls", permission_classes=[AllowAny],
        authentication_classes=[]), name="schema"),
    path("auth/token/", apis.TokenApi.as_view(), name="token"),
    path("projects/", apis.ProjectListApi.as_view(), name="projects"),
    path("projects/<slug:slug>/", apis.ProjectDetailApi.as_view(), name="project"),
    path("apps/", apis.AppListApi.as_view(), name="apps"),
    path("apps/<slug:name>/", apis.AppDetailApi.as_view(), name="app"),
    path("apps/<slug:name>/versions/", apis.AppVersionListApi.as_view(), name="app-versions"),
    path("apps/<slug:name>/versions/<int:number>/", apis.AppVersionDetailApi.as_view(),
         name="app-version"),
    path("apps/<slug:name>/versions/<int:number>/approve-flops/",
         apis.AppVersionApproveFlopsApi.as_view(), name="app-version-approve-flops"),
    path("batches/", apis.BatchListApi.as_view(), name="batches"),
    path("batches/<int:pk>/", apis.BatchDetailApi.as_view(), name="batch"),
    path("batches/<int:pk>/pause/", apis.BatchPauseApi.as_view(), name="batch-pause"),
    path("batches/<int:pk>/resume/", apis.BatchResumeApi.as_view(), name="batch-resume"),
    path("batches/<int:pk>/abort/", apis.BatchAbortApi.as_view(), name="batch-abort"),
    path("batches/<int:pk>/retire/", apis.BatchRetireApi.as_view(), name="batch-retire"),
    path("batches/<int:pk>/workunits/", apis.BatchWorkUnitListApi.as_view(),
         name="batch-workunits"),
    path("batches/<int:pk>/results/", apis.BatchResultListApi.as_view(), name="batch-results"),
    path("batches/<int:pk>/results.jsonl", apis.BatchResultJsonlApi.as_view(),
         name="batch-results-jsonl"),
    path("batches/<int:pk>/results.csv", apis.BatchResultCsvApi.as_view(),
         name="batch-results-csv"),
]
