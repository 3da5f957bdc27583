from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sparecycles.gateway.protocol import PROTOCOL_VERSION

from . import pwa


@require_GET
def volunteer_page(request: HttpRequest) -> HttpResponse:
    """The page a volunteer opens and presses Start on."""
    return render(request, "web/volunteer.html", {
        "client_config": {
            "wsPath": "/ws/volunteer/",
            "protocol": PROTOCOL_VERSION,
            "pyodideBase": settings.PYODIDE_URL,
            "workerUrl": f"{settings.STATIC_URL}volunteer/compute-worker.js",
            "runtimeTimeoutMs": 60_000,
            # The page asks for this prefix's cache when code fails its hash check.
            "appsCachePrefix": f"{pwa.CACHE_PREFIX}apps-",
        },
    })


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
