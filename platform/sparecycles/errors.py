"""One JSON error shape for every JSON endpoint of the site.

    {"detail": "What went wrong and what to do, in a sentence.",
     "code": "not_found",
     "errors": ["Line 2: not valid JSON …", …],          (only when there are several)
     "fields": {"name": ["This field is required."]}}    (only for a form's field errors)

`detail` is always there (DRF's key: clients that read it keep working); `code` is a
stable machine-readable word (the table below, or DRF's own code such as
"authentication_failed"); `errors` lists every problem when there are several, each
naming what it is about; `fields` keeps a form's per-field messages. The owners' API
gets it from api.exceptions.exception_handler, the ledger and leaderboard JSON and
the other plain Django JSON views from `error_response` here, and the OpenAPI
schema describes it as the `Error` component (api.exceptions.ErrorSerializer).

This module imports nothing of the site, so any app may use it.
"""

from collections.abc import Callable, Iterable, Sequence
from functools import wraps

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse

CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}
SEVERAL = "The request was refused; nothing was created or changed."


def error_body(status: int, detail: str, *, code: str | None = None,
               errors: Sequence[str] | None = None,
               fields: dict[str, list[str]] | None = None) -> dict:
    """The one error shape (see the module's docstring)."""
    body: dict = {"detail": detail, "code": code or CODES.get(status, "error")}
    if errors:
        body["errors"] = [str(e) for e in errors]
    if fields:
        body["fields"] = fields
    return body


def error_response(status: int, detail: str, *, code: str | None = None,
                   errors: Sequence[str] | None = None,
                   headers: dict[str, str] | None = None) -> JsonResponse:
    """A JSON error in the one shape, for plain Django views."""
    response = JsonResponse(error_body(status, detail, code=code, errors=errors), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def method_not_allowed(request: HttpRequest, allowed: Iterable[str]) -> JsonResponse:
    allowed = list(allowed)
    return error_response(405, f'Method "{request.method}" not allowed.',
                          headers={"Allow": ", ".join(allowed)})


def json_errors(*, methods: Sequence[str] = ("GET", "HEAD"),
                wants_json: Callable[..., bool] = lambda request, **kwargs: True):
    """Decorate a plain Django view that answers JSON: a method it does not serve (405) and
    an Http404 it raises come back in the one shape. `wants_json(request, **kwargs)` says
    whether this request asked for JSON (a view that also renders HTML answers HTML
    errors then, as before)."""
    def decorate(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            as_json = wants_json(request, **kwargs)
            if request.method not in methods:
                return (method_not_allowed(request, methods) if as_json
                        else HttpResponseNotAllowed(methods))
            try:
                return view(request, *args, **kwargs)
            except Http404 as exc:
                if not as_json:
                    raise
                return error_response(404, str(exc) or "Not found.")
        return wrapped
    return decorate
