from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sparecycles.gateway.protocol import PROTOCOL_VERSION


@require_GET
def volunteer_page(request: HttpRequest) -> HttpResponse:
    """The page a volunteer opens and presses Start on."""
    return render(request, "web/volunteer.html", {
        "client_config": {
            "wsPath": "/ws/volunteer/",
            "protocol": PROTOCOL_VERSION,
            "pyodideBase": settings.PYODIDE_URL,
            "workers": 1,
            "workerUrl": f"{settings.STATIC_URL}volunteer/compute-worker.js",
            "runtimeTimeoutMs": 60_000,
        },
    })


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
