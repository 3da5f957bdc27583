from django.urls import path

from .consumers import BatchProgressConsumer

websocket_urlpatterns = [
    path("ws/batches/<int:pk>/", BatchProgressConsumer.as_asgi()),
]
