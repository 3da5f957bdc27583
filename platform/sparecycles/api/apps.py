from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "sparecycles.api"
    label = "api"
    verbose_name = "Owners' REST API"
