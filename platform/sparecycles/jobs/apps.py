from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "sparecycles.jobs"
    verbose_name = "Background jobs"
