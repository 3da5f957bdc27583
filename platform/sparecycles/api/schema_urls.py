"""The URL tree the OpenAPI schema describes: only the owners' API, under its real prefix."""

from django.urls import include, path

urlpatterns = [path("api/v1/", include("sparecycles.api.urls"))]
