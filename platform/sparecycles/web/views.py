from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from sparecycles.wire import PROTOCOL_VERSION

from . import compute, pwa
from .middleware import policy


@require_GET
def volunteer_page(request: HttpRequest) -> HttpResponse:
    """The page a volunteer opens and presses Start on."""
    response = render(request, "web/volunteer.html", {
        "client_config": {
            "wsPath": "/ws/volunteer/",
            "protocol": PROTOCOL_VERSION,
            "pyodideBase": settings.PYODIDE_URL,
            # App code runs in sandboxed frames of this document (web/compute.py).
            "computeFrameUrl": compute.frame_url(),
            "runtimeFiles": list(pwa.PYODIDE_RUNTIME_FILES),
            # The page stores the runtime there itself, complete, before its first result.
            "runtimeCache": pwa.runtime_cache_name(),
            # The page checks outputs against the server's limit before sending them.
            "maxOutputBytes": settings.SPARECYCLES["MAX_OUTPUT_BYTES"],
            "runtimeTimeoutMs": 60_000,
            # The page asks for this prefix's cache when code fails its hash check.
            "appsCachePrefix": f"{pwa.CACHE_PREFIX}apps-",
            # The "All time" column (by device token) and the settings an account keeps
            # (401 when logged out: the page, cached for offline use, asks each time).
            "earningsUrl": "/devices/earnings/",
            "settingsUrl": "/me/compute-settings/",
            "policyUrl": "/ledger/#policy-title",
        },
    })
    # The one page that may frame anything, and only the compute frame.
    response["Content-Security-Policy"] = policy(frame_src=compute.frame_src())
    return response


@require_GET
@xframe_options_exempt   # its own CSP says who may frame it: the volunteer page only
def compute_frame(request: HttpRequest) -> HttpResponse:
    """The sandboxed document that runs owners' code; see web/compute.py."""
    response = HttpResponse(compute.frame_document(request),
                            content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = compute.frame_policy(request)
    if request.GET.get("v") == compute.frame_parts().version:
        # Versioned: kept for good, which is what lets an offline start load it (a sandboxed
        # frame is never served by the service worker).
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response["Cache-Control"] = "no-cache"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def offline_page(request: HttpRequest) -> HttpResponse:
    """Shown by the service worker for pages it cannot fetch while offline."""
    return render(request, "web/offline.html")


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """/sw.js: served from the site root so its scope is the whole site."""
    response = HttpResponse(pwa.service_worker_script(),
                            content_type="text/javascript; charset=utf-8")
    # The browser checks for a new worker on navigation; never let a cache answer for it.
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response


@require_GET
def web_manifest(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(pwa.web_manifest(), content_type="application/manifest+json")
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
