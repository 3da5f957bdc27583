"""Volunteers fetch app code and wheels here; anyone reads public project pages."""

import time

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sparecycles.credit.selectors import project_top_contributors  # a credit read
from sparecycles.errors import error_response, json_errors
from sparecycles.projects.selectors import (
    MAX_PK,
    app_version_get,
    app_wheel_get,
    project_progress_series,
    project_public_get,
    project_public_list,
    project_summary,
    project_tile_apps,
    project_tiles,
)

from .project_charts import progress_chart

IMMUTABLE = "public, max-age=31536000, immutable"


@require_GET
def app_code(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """The bytes volunteers run; immutable, so cached forever and checked by sha256."""
    version = app_version_get(app_name=name, number=number)
    if version is None:
        raise Http404("No such app version.")
    content_type = ("application/wasm" if version.runtime == "wasm"
                    else "text/x-python; charset=utf-8")
    response = HttpResponse(bytes(version.code), content_type=content_type)
    response["Cache-Control"] = IMMUTABLE
    response["ETag"] = f'"{version.sha256}"'
    response["X-Content-SHA256"] = version.sha256
    return response


@require_GET
def app_wheel(request: HttpRequest, name: str, number: int, filename: str) -> HttpResponse:
    """A pure-Python wheel an app version needs; the worker checks it against the task's hash."""
    wheel = app_wheel_get(app_name=name, number=number, filename=filename)
    if wheel is None:
        raise Http404("No such wheel.")
    response = HttpResponse(bytes(wheel.content), content_type="application/zip")
    response["Cache-Control"] = IMMUTABLE
    response["ETag"] = f'"{wheel.sha256}"'
    response["X-Content-SHA256"] = wheel.sha256
    response["Content-Disposition"] = f'attachment; filename="{wheel.filename}"'
    return response


@require_GET
def project_list_page(request: HttpRequest) -> HttpResponse:
    projects = [(p, project_summary(project=p)) for p in project_public_list()]
    return render(request, "projects/project_list.html", {"projects": projects})


def _progress(project) -> dict:
    """What projects/_progress.html shows: the counts, the share validated, the chart."""
    summary = project_summary(project=project)
    return {
        "summary": summary,
        "percent": round(100 * summary["completed"] / summary["total"], 1) if summary["total"]
        else 0,
        "chart": progress_chart(project_progress_series(project=project), total=summary["total"]),
    }


@require_GET
def project_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Description, progress over time, top contributors and, where it fits, the output."""
    project = project_public_get(slug=slug)
    if project is None:
        raise Http404("No such public project.")
    return render(request, "projects/project_detail.html", {
        "project": project,
        **_progress(project),
        "contributors": project_top_contributors(project=project),
        "apps": project.apps.order_by("name"),
        "tile_apps": project_tile_apps(project=project),
    })


# Every open project page refetches its live parts when the socket says "changed" (at most
# once a second, to all of them at once), and each part counts the project's work units or
# grants: computed at most once per LIVE_FRESH_S for all viewers and processes. While one
# request computes, the others get the value before it; live.js asks once more after the
# changes stop, so no page is left with it.
LIVE_FRESH_S = 1.0
LIVE_KEEP_S = 300
LIVE_BUSY_S = 30


def _shared(project, part: str, compute):
    key = f"web:project-live:{project.pk}:{part}"
    cached = cache.get(key)
    started = time.time()
    if cached is not None:
        if started - cached[0] < LIVE_FRESH_S or not cache.add(f"{key}:busy", 1, LIVE_BUSY_S):
            return cached[1]
    try:
        value = compute()
        cache.set(key, (started, value), LIVE_KEEP_S)
    finally:
        if cached is not None:
            cache.delete(f"{key}:busy")
    return value


@require_GET
def project_progress(request: HttpRequest, slug: str) -> HttpResponse:
    """The page's progress part alone (counts and chart), which live.js swaps in when the
    project's socket says its work units changed."""
    project = project_public_get(slug=slug)
    if project is None:
        raise Http404("No such public project.")
    response = render(request, "projects/_progress.html",
                      _shared(project, "progress", lambda: _progress(project)))
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def project_contributors(request: HttpRequest, slug: str) -> HttpResponse:
    """The page's top contributors alone, for live.js (as project_progress)."""
    project = project_public_get(slug=slug)
    if project is None:
        raise Http404("No such public project.")
    response = render(request, "projects/_contributors.html", {"contributors": _shared(
        project, "contributors", lambda: project_top_contributors(project=project))})
    response["Cache-Control"] = "no-store"
    return response


def _int_param(request: HttpRequest, name: str, default: int | None) -> int | None:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number.") from None
    if not 0 <= value <= MAX_PK:
        raise ValueError(f"{name} is out of range.")
    return value


@json_errors(methods=("GET",))
def project_tiles_json(request: HttpRequest, slug: str, app: str) -> JsonResponse:
    """Validated image tiles for the mosaic; poll with ?after=<last id> for new ones."""
    project = project_public_get(slug=slug)
    tile_app = next((a for a in project_tile_apps(project=project) if a.name == app),
                    None) if project else None
    if tile_app is None:
        return error_response(404, "No such project or app with image tiles.")
    try:
        after = _int_param(request, "after", 0)
        level = _int_param(request, "level", 0)
    except ValueError as exc:
        return error_response(400, str(exc))
    tiles, last = project_tiles(app=tile_app, after=after, level=level)
    return JsonResponse({"app": tile_app.name, "level": level, "tiles": tiles, "last": last})
