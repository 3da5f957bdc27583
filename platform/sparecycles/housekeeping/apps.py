from django.apps import AppConfig


class HousekeepingConfig(AppConfig):
    name = "sparecycles.housekeeping"
    verbose_name = "Housekeeping (periodic jobs)"
