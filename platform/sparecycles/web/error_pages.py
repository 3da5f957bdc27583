"""The site's 404 and 500 pages (urls.py's handler404 and handler500).

A person gets a page in the site's look; a program asking a JSON path (the API, the
boards' and ledger's JSON) gets the one JSON error shape (errors.py). The 500 page is
rendered without a request context: no context processor, no session, no database, so
it still shows when the database is what failed; if even that fails, plain text.
"""

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader

from sparecycles.errors import error_response

logger = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/leaderboards/api/", "/ledger/api/")


def wants_json(request: HttpRequest) -> bool:
    if request.path.startswith(JSON_PREFIXES) or request.GET.get("format") == "json":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return error_response(404, "Not found: no such page or object here.")
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    try:
        if wants_json(request):
            return error_response(500, "Something went wrong on our side; it was logged. "
                                       "Try again in a moment.")
        body = loader.get_template("500.html").render({"site_name": settings.SITE_NAME})
    except Exception:  # the error page must not fail: the plainest answer there is
        logger.exception("rendering the 500 page failed")
        return HttpResponseServerError("Server error: something went wrong on our side.",
                                       content_type="text/plain; charset=utf-8")
    return HttpResponseServerError(body)
