from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .selectors import app_version_get


@require_GET
def app_code(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """The bytes volunteers run; immutable, so cached forever and checked by sha256."""
    version = app_version_get(app_name=name, number=number)
    if version is None:
        raise Http404("No such app version.")
    content_type = "application/wasm" if version.runtime == "wasm" else "text/x-python; charset=utf-8"
    response = HttpResponse(bytes(version.code), content_type=content_type)
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["ETag"] = f'"{version.sha256}"'
    response["X-Content-SHA256"] = version.sha256
    return response
