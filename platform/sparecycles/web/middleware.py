"""Content-Security-Policy: only our own origin; wasm may compile, eval may not.

No page may be framed (frame-ancestors 'none', and X-Frame-Options DENY), and no page
frames anything (frame-src 'none') — except the volunteer page, which frames the compute
frame (web/compute.py), and that frame, whose own policy lets only the volunteer page
embed it.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponseNotFound

POLICY_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self' 'wasm-unsafe-eval'",
    "worker-src": "'self'",
    "connect-src": "'self'",
    "img-src": "'self' data: blob:",
    "style-src": "'self'",
    "frame-src": "'none'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def policy(**overrides: str) -> str:
    """The site's policy, with some directives replaced (keys with _ for -)."""
    directives = dict(POLICY_DIRECTIVES)
    directives.update({key.replace("_", "-"): value for key, value in overrides.items()})
    return "; ".join(f"{name} {value}" for name, value in directives.items())


POLICY = policy()


class ContentSecurityPolicyMiddleware:
    """Sets the site's policy on every response that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response


class ComputeOriginMiddleware:
    """On COMPUTE_ORIGIN's host, serve the compute frame and nothing else.

    That host is in ALLOWED_HOSTS only so the frame can be served from it; no page, API,
    socket or static file of the site is reachable there (cookies of the site's own host
    are never sent to it anyway).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        origin = getattr(settings, "COMPUTE_ORIGIN", "")
        self.host = urlsplit(origin).netloc.lower() if origin else ""

    def __call__(self, request):
        if self.host and request.get_host().lower() == self.host and \
                request.path != "/compute/frame/":
            return HttpResponseNotFound("Only the compute frame is served on this origin.",
                                        content_type="text/plain")
        return self.get_response(request)
