from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "sparecycles.gateway"
    verbose_name = "Volunteer WebSocket gateway"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
