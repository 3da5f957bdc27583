from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sparecycles.sandbox"
    verbose_name = "Custom-validator sandbox"
