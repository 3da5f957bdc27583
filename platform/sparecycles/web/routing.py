from django.urls import path

from .consumers import ProjectProgressConsumer

websocket_urlpatterns = [
    path("ws/projects/<slug:slug>/", ProjectProgressConsumer.as_asgi()),
]
