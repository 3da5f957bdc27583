from django.apps import AppConfig


class OwnersConfig(AppConfig):
    name = "sparecycles.owners"
    verbose_name = "Project owners' console"
