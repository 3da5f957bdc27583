"""Origin checks for the volunteer socket.

Browsers always send Origin, so a browser connection must come from one of
ALLOWED_HOSTS (no cross-site page can drive a visitor's device). Clients that
are not browsers (the swarm, third-party clients) send no Origin and are let in.
"""

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application):
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)
