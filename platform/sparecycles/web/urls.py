"""The installable app: service worker (at the root, so its scope is the whole site),
web manifest and the page shown offline."""

from django.urls import path

from . import views

urlpatterns = [
    path("sw.js", views.service_worker, name="service-worker"),
    path("manifest.webmanifest", views.web_manifest, name="web-manifest"),
    path("offline/", views.offline_page, name="offline"),
    path("compute/frame/", views.compute_frame, name="compute-frame"),
]
