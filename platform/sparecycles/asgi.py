"""ASGI entry point: HTTP through Django, WebSockets through Channels. Served by daphne."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparecycles.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

from sparecycles.secret_key import refuse_to_serve_without_key  # noqa: E402

# One line and exit 1 instead of serving on the development key (secret_key.py).
refuse_to_serve_without_key(debug=settings.DEBUG)

from sparecycles.housekeeping.runner import housekeeping_start_embedded  # noqa: E402

# The embedded mode (`make run`: one daphne) runs the periodic jobs in this process from
# start-up; under `manage.py serve` (EMBEDDED_HOUSEKEEPING off) its housekeeping process does.
housekeeping_start_embedded()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from sparecycles.gateway.routing import websocket_urlpatterns  # noqa: E402
from sparecycles.gateway.security import BrowserOriginValidator  # noqa: E402
from sparecycles.leaderboards.routing import (  # noqa: E402
    websocket_urlpatterns as leaderboard_websocket_urlpatterns,
)
from sparecycles.owners.routing import (  # noqa: E402
    websocket_urlpatterns as owners_websocket_urlpatterns,
)
from sparecycles.web.forwarded import ForwardedHeadersMiddleware  # noqa: E402
from sparecycles.web.routing import websocket_urlpatterns as web_websocket_urlpatterns  # noqa: E402

# The client's address is resolved once, here, for both protocols: forwarded headers count
# only from settings.TRUSTED_PROXIES (web/forwarded.py). Run daphne WITHOUT --proxy-headers.
application = ForwardedHeadersMiddleware(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(AuthMiddlewareStack(URLRouter(
            websocket_urlpatterns + leaderboard_websocket_urlpatterns
            + web_websocket_urlpatterns + owners_websocket_urlpatterns))),
    }
))
