from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "sparecycles.scheduler"
    verbose_name = "Scheduling and validation"
