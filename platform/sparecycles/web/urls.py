"""The installable app: service worker (at the root, so its scope is the whole site),
web manifest and the page shown offline."""

from django.urls import path

from . import discovery, views

urlpatterns = [
    path("sw.js", views.service_worker, name="service-worker"),
    path("manifest.webmanifest", views.web_manifest, name="web-manifest"),
    path("offline/", views.offline_page, name="offline"),
    path("compute/frame/", views.compute_frame, name="compute-frame"),
    # BOINC project discovery (web/discovery.py), at BOINC's own addresses too.
    path("get_project_config.php", discovery.project_config, name="project-config"),
    path("server_status.xml", discovery.server_status_xml, name="server-status-xml"),
    path("server_status.php", discovery.server_status_xml),
    path("server_status.json", discovery.server_status_json, name="server-status-json"),
]
