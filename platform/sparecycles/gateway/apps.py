from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "sparecycles.gateway"
    verbose_name = "Volunteer WebSocket gateway"
