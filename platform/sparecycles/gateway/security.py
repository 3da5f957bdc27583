"""Origin checks for the volunteer socket.

Browsers always send Origin, so a browser connection must come from one of
ALLOWED_HOSTS (no cross-site page can drive a visitor's device). Clients that
are not browsers (the swarm, third-party clients) send no Origin and are let in.
The compute frame (web/compute.py) is a sandboxed, opaque origin: its "null" Origin does
not match, and neither does COMPUTE_ORIGIN, so app code can never open a socket of its own.
"""

from urllib.parse import urlsplit

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application):
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        compute = getattr(settings, "COMPUTE_ORIGIN", "")
        if compute and (parsed_origin.netloc or "").lower() == urlsplit(compute).netloc.lower():
            return False
        return self.validate_origin(parsed_origin)
