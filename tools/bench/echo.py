"""The bare-echo baseline: a Channels consumer that answers every frame, no database.

Served by daphne exactly like the real app (`daphne tools.bench.echo:application`),
it measures what the transport alone costs on this machine: the most round trips
per second the live server could ever do.
"""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparecycles.settings")

from django.core.asgi import get_asgi_application  # noqa: E402  (sets Django up first)

django_http = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .live import ECHO_PATH  # noqa: E402


class EchoConsumer(AsyncWebsocketConsumer):
    """Parse each frame and answer it, as the volunteer consumer does before any service.

    No channel layer either (an alias that is not configured): the transport alone.
    """

    channel_layer_alias = "bench-echo-has-no-channel-layer"

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data or "{}")
        await self.send(text_data=json.dumps({"type": "pong", "n": frame.get("n")},
                                             separators=(",", ":")))


application = ProtocolTypeRouter({
    "http": django_http,  # /healthz, so the same readiness check works
    "websocket": URLRouter([path(ECHO_PATH.strip("/") + "/", EchoConsumer.as_asgi())]),
})

