from django.apps import AppConfig


class SwarmAppConfig(AppConfig):
    name = "sparecycles.swarm"
    label = "swarm"
    verbose_name = "Simulated-volunteer swarm"
