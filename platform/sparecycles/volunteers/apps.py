from django.apps import AppConfig


class VolunteersConfig(AppConfig):
    name = "sparecycles.volunteers"
    verbose_name = "Volunteers and devices"
