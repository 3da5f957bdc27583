"""Leaderboard pages (HTML and the JSON the live page refetches) and the statistics files."""

import datetime as dt
import re
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import http_date
from django.views.decorators.http import require_GET, require_safe
from django.views.static import was_modified_since

from sparecycles.errors import json_errors
from sparecycles.projects.models import Project
from sparecycles.volunteers.selectors import viewer_volunteer_id

from . import selectors
from .selectors import BoardPage

TITLES = {"volunteers": "Volunteers", "teams": "Teams", "project": "Volunteers"}
ORDER_LABELS = {"credit": "total credit", "rac": "recent average credit"}


def _wants_json(request: HttpRequest, as_json: bool) -> bool:
    return as_json or request.GET.get("format") == "json"


def _json_wanted(request: HttpRequest, as_json: bool = False, **kwargs) -> bool:
    """JSON asked for: its errors (404, 405) come in the site's one shape too."""
    return _wants_json(request, as_json)


def _respond(request: HttpRequest, page: BoardPage, *, as_json: bool,
             viewer_id: int | None) -> HttpResponse:
    data = selectors.board_json(page)
    if _wants_json(request, as_json):
        response = JsonResponse(data)
        response["Cache-Control"] = "no-store"  # the viewer's own row differs per session
        return response
    board = page.board
    return render(request, "leaderboards/board.html", {
        "data": data, "board": board, "kind": page.kind, "project": page.project,
        "order_label": ORDER_LABELS[board.order], "viewer_known": viewer_id is not None,
        "title": page.project.title if page.project else TITLES[page.kind],
        "new_teams": selectors.teams_without_credit() if page.kind == "teams" else [],
        "live_config": {"ws_path": "/ws/leaderboards/",
                        "json_url": f"{request.path}?order={board.order}&page={board.page}"
                                    "&format=json",
                        "kind": page.kind},
    })


def _args(request: HttpRequest) -> dict:
    return {"order": selectors.parse_order(request.GET.get("order")),
            "page": selectors.parse_page(request.GET.get("page")),
            "viewer_id": viewer_volunteer_id(user=request.user, session=request.session)}


@json_errors(methods=("GET",), wants_json=_json_wanted)
def volunteers(request: HttpRequest, as_json: bool = False) -> HttpResponse:
    args = _args(request)
    return _respond(request, selectors.volunteers_page(**args), as_json=as_json,
                    viewer_id=args["viewer_id"])


@json_errors(methods=("GET",), wants_json=_json_wanted)
def teams(request: HttpRequest, as_json: bool = False) -> HttpResponse:
    args = _args(request)
    return _respond(request, selectors.teams_page(**args), as_json=as_json,
                    viewer_id=args["viewer_id"])


@json_errors(methods=("GET",), wants_json=_json_wanted)
def project(request: HttpRequest, slug: str, as_json: bool = False) -> HttpResponse:
    found = get_object_or_404(Project, slug=slug, is_public=True)
    args = _args(request)
    return _respond(request, selectors.project_page(project=found, **args), as_json=as_json,
                    viewer_id=args["viewer_id"])


@require_GET
def projects(request: HttpRequest) -> HttpResponse:
    """Every public project's total credit and RAC, each linking to its own board."""
    return render(request, "leaderboards/projects.html",
                  {"projects": list(selectors.public_projects())})


# --- statistics files (credit.stats_export writes them daily) -----------------------------------
STATS_FILES = re.compile(r"^(?:(?:user|team|host|user_deleted|host_deleted)(?:\.json)?\.gz"
                         r"|tables\.xml)$")
STATS_DESCRIPTIONS = {
    "user.gz": "Volunteers, BOINC XML",
    "team.gz": "Teams, BOINC XML",
    "host.gz": "Devices (hosts), BOINC XML",
    "user.json.gz": "Volunteers, JSON",
    "team.json.gz": "Teams, JSON",
    "host.json.gz": "Devices (hosts), JSON",
    "user_deleted.gz": "Deleted accounts (their cpid), BOINC XML",
    "host_deleted.gz": "Devices of deleted accounts (their host_cpid), BOINC XML",
    "tables.xml": "Counts and the time of the export",
}


def _stats_dir() -> Path:
    return Path(settings.SPARECYCLES["STATS_DIR"])


@require_safe
def stats_index(request: HttpRequest) -> HttpResponse:
    files = []
    for name, description in STATS_DESCRIPTIONS.items():
        path = _stats_dir() / name
        stat = path.stat() if path.is_file() else None
        files.append({"name": name, "description": description,
                      "size": stat.st_size if stat else None,
                      "modified": (dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC)
                                   if stat else None)})
    return render(request, "leaderboards/stats.html", {
        "files": files, "exported": any(f["size"] is not None for f in files)})


@require_safe  # HEAD too: stats sites check Last-Modified before downloading
def stats_file(request: HttpRequest, name: str) -> HttpResponse:
    """One export file, byte for byte: .gz stays compressed (no Content-Encoding), as the
    BOINC statistics sites that download it expect."""
    if not STATS_FILES.match(name):
        raise Http404("Not a statistics file.")
    path = _stats_dir() / name
    if not path.is_file():
        raise Http404("Statistics have not been exported yet; they are written daily.")
    stat = path.stat()
    if not was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), int(stat.st_mtime)):
        return HttpResponse(status=304)
    is_gzip = name.endswith(".gz")
    response = FileResponse(path.open("rb"), as_attachment=is_gzip, filename=name,
                            content_type="application/gzip" if is_gzip else
                            "application/xml; charset=utf-8")
    response["Last-Modified"] = http_date(stat.st_mtime)
    response["Cache-Control"] = "public, max-age=3600"
    return response
